"""Gaussian-moment (GM) descriptors of local atomic environments, in PyTorch.

The trainable, rotation-invariant representation of the Gaussian-moment neural networks
(GM-NN: Zaverkin & Kästner, J. Chem. Theory Comput. 2020, 16, 5410; Zaverkin, Holzmüller,
Steinwart & Kästner, ibid. 2021, 17, 6658) that Zaverkin et al. (2022) use for D tensors and
energies of single-molecule magnets, and that apax implements in JAX.

Definitions (r_ij = r_i - r_j, r_ij = |r_ij|, u_ij = r_ij / r_ij; sums over neighbours j != i
with r_ij < r_cut)::

    Phi_k(r)   = (2 alpha / pi)^(1/4) exp(-alpha (r - mu_k)^2),       k = 0 .. n_basis-1
                 mu_k = r_min + k (r_cut - r_min) / n_basis,  alpha = (n_basis / r_cut)^2
    f_cut(r)   = (cos(pi r / r_cut) + 1) / 2 for r < r_cut, 0 beyond
    R_s(r_ij)  = f_cut(r_ij) / sqrt(n_basis) * sum_k beta[Z_i, Z_j, s, k] Phi_k(r_ij)
    Psi_{i,L,s} = sum_j R_s(r_ij) u_ij^{(x)L},                         L = 0, 1, 2, 3

This is the radial function of Zaverkin et al. 2022, eq. 3 and the text after it (paper
lines 54-56: "a weighted sum of Gaussian functions, rescaled by the cosine cutoff"); the
Gaussian centres, width and normalisation follow apax's ``GaussianBasis`` (centres from r_min
in steps of (r_cut - r_min)/n_basis, so the last lies one step below r_cut; width set by the
spacing; ``Phi_k`` L2-normalised).  The coefficients beta (one (n_radial, n_basis) block per
ordered species pair: centre Z_i, neighbour Z_j) are trainable.  They start as standard-normal
draws (``init="normal"``; NTK-style like the network weights of the paper, lines 102-104) or,
as in apax, U(-1, 1) draws (``init="uniform"``); the 1/sqrt(n_basis) prefactor keeps the
radial functions O(1) whatever n_basis is.

The invariants are the full contractions of the moments (Psi^L_s written as a rank-L tensor,
v = Psi^1, A = Psi^2, T = Psi^3), in this order (the feature blocks of GM-NN and apax)::

    block  contraction                                   symmetry kept        size (R = n_radial)
    0      Psi^0_r                                       -                    R
    1      v_r . v_s                                     r <= s               R(R+1)/2
    2      A_r : A_s                                     r <= s               R(R+1)/2
    3      T_r ⋮ T_s                                     r <= s               R(R+1)/2
    4      tr(A_r A_s A_t)                               r <= s <= t          R(R+1)(R+2)/6
    5      v_r . A_t . v_s                               r <= s, all t        R^2(R+1)/2
    6      sum T_r[ijk] T_s[ijl] A_t[kl]                 r <= s, all t        R^2(R+1)/2
    7      sum T_r[ijk] A_s[ij] v_t[k]                   all r, s, t          R^3

Blocks 1-3, 5 and 6 are symmetric in (r, s) and block 4 in all three indices (A symmetric, the
trace cyclic and transpose-invariant), so only the index tuples above are kept: no feature is
a copy of another.  ``n_contractions`` keeps the first blocks only.  With the defaults
(R = 5, all 8 blocks) there are 5 + 3*15 + 35 + 2*75 + 125 = 360 features per atom: the input
dimension d_0 = 360 of Zaverkin et al. 2022 (paper lines 122 and 134).  The order of the
r <= s <= t triples of block 4 is lexicographic (apax lists the same triples in another order).

Every invariant has even total rank, so the sign convention of r_ij does not matter.

Functions and classes
---------------------
* :func:`neighbour_pairs` - all pairs (i, j), i != j, closer than r_cut, in one molecule or in
  several molecules concatenated (``batch``); vectorised in torch, or ``ase.neighborlist`` for
  large molecules;
* :func:`collate` - concatenate several molecules: positions, species indices, batch index;
* :func:`gaussian_moment_feature_count` - the feature count formula;
* :class:`GaussianMoments` - the module: ``forward(positions, species, pairs)`` -> (N, F);
  ``batch(...)`` for concatenated molecules; ``settings()``/``from_settings()`` for model files.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols
from torch import Tensor

__all__ = [
    "DEFAULT_N_RADIAL",
    "DEFAULT_N_BASIS",
    "DEFAULT_R_CUT",
    "DEFAULT_R_MIN",
    "ENERGY_R_CUT",
    "N_CONTRACTIONS",
    "NeighbourPairs",
    "GaussianMoments",
    "collate",
    "gaussian_moment_feature_count",
    "neighbour_pairs",
]

#: Radial functions per moment: d_0 = 360 features in Zaverkin et al. 2022 (lines 122, 134).
DEFAULT_N_RADIAL = 5
#: Gaussians per radial function: apax's default (the 2022 paper does not state it).
DEFAULT_N_BASIS = 7
#: Cutoff radius (Angstrom) of the D-tensor models of Zaverkin et al. 2022 (lines 191-193).
DEFAULT_R_CUT = 8.0
#: Cutoff radius (Angstrom) of the paper's interatomic potentials (line 223).
ENERGY_R_CUT = 6.5
#: Centre of the first Gaussian (Angstrom): apax's default (not stated in the 2022 paper).
DEFAULT_R_MIN = 0.5
#: Number of contraction blocks (numbered 0..7) of the full GM-NN representation.
N_CONTRACTIONS = 8

#: Above this many atoms in one molecule ``neighbour_pairs(method="auto")`` uses ASE's
#: O(N) cell list instead of the O(N^2) all-pairs search.
_ASE_THRESHOLD = 2000

_DTYPES = {"float32": torch.float32, "float64": torch.float64}

# --- symmetric-tensor index bookkeeping ----------------------------------------------------
# Per pair we accumulate only the unique components of u(x)u (6) and u(x)u(x)u (10); the full
# 3x3 and 3x3x3 moment tensors are rebuilt per atom with these gather indices.
_SYM2: list[tuple[int, ...]] = [c for c in itertools.combinations_with_replacement(range(3), 2)]
_SYM3: list[tuple[int, ...]] = [c for c in itertools.combinations_with_replacement(range(3), 3)]
_EXPAND2 = [_SYM2.index(tuple(sorted(c))) for c in itertools.product(range(3), repeat=2)]
_EXPAND3 = [_SYM3.index(tuple(sorted(c))) for c in itertools.product(range(3), repeat=3)]


def _segment_outer_sum(radial: Tensor, angular: Tensor, i: Tensor, n_atoms: int,
                       dense: bool | None = None) -> Tensor:
    """(N, R, A) sums over the pairs p of each atom i_p of radial[p] (x) angular[p].

    Two equivalent ways: ``index_add`` of the (P, R, A) outer products (a plain segment sum),
    or scattering each atom's pairs into padded (N, M, R) and (N, M, A) blocks (M = most
    pairs of any atom) and one batched matrix product, which never builds the (P, R, A)
    products (about twice as fast forward+backward for molecules).  ``dense=None`` takes
    the padded route unless the padding would more than double the pair count."""
    n_pairs, n_r = radial.shape
    n_a = angular.shape[1]
    counts = torch.bincount(i, minlength=n_atoms)
    most = int(counts.max()) if n_pairs else 0
    if dense is None:
        dense = n_atoms * most <= 2 * n_pairs + 64
    if not dense or n_pairs == 0:
        products = (radial[:, :, None] * angular[:, None, :]).reshape(n_pairs, n_r * n_a)
        summed = radial.new_zeros((n_atoms, n_r * n_a)).index_add_(0, i, products)
        return summed.reshape(n_atoms, n_r, n_a)
    order = torch.argsort(i, stable=True)
    first = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(i)
    slot[order] = torch.arange(n_pairs, device=i.device) - first.index_select(0, i[order])
    flat = i * most + slot
    r_pad = radial.new_zeros((n_atoms * most, n_r)).index_copy(0, flat, radial)
    a_pad = angular.new_zeros((n_atoms * most, n_a)).index_copy(0, flat, angular)
    return torch.bmm(r_pad.view(n_atoms, most, n_r).transpose(1, 2),
                     a_pad.view(n_atoms, most, n_a))


def _pairs_upper(n: int) -> list[tuple[int, int]]:
    return [(r, s) for r in range(n) for s in range(r, n)]


def _triples_upper(n: int) -> list[tuple[int, int, int]]:
    return [(r, s, t) for r in range(n) for s in range(r, n) for t in range(s, n)]


def _block_sizes(n_radial: int) -> list[int]:
    r = n_radial
    t2 = r * (r + 1) // 2
    t3 = r * (r + 1) * (r + 2) // 6
    return [r, t2, t2, t2, t3, r * t2, r * t2, r**3]


def gaussian_moment_feature_count(n_radial: int = DEFAULT_N_RADIAL,
                                  n_contractions: int = N_CONTRACTIONS) -> int:
    """Number of invariants per atom.

    With R = n_radial and all eight blocks::

        F = R + 3 R(R+1)/2 + R(R+1)(R+2)/6 + R^2(R+1) + R^3

    (R = 5: 360; R = 6: 602; R = 7: 931).  ``n_contractions`` < 8 keeps the first blocks.
    """
    if not 1 <= n_contractions <= N_CONTRACTIONS:
        raise ValueError(f"n_contractions must be 1..{N_CONTRACTIONS}, got {n_contractions}")
    return sum(_block_sizes(n_radial)[:n_contractions])


# --- neighbour list ---------------------------------------------------------------------------
class NeighbourPairs(NamedTuple):
    """Directed pairs: every unordered pair appears twice, (i, j) and (j, i).

    ``r_ij = positions[i] - positions[j]`` (Angstrom), differentiable in the positions.
    """

    i: Tensor
    j: Tensor
    r_ij: Tensor


def _check_batch(batch: Tensor | None, n_atoms: int, device) -> Tensor:
    if batch is None:
        return torch.zeros(n_atoms, dtype=torch.long, device=device)
    batch = torch.as_tensor(batch, device=device).long()
    if batch.shape != (n_atoms,):
        raise ValueError(f"batch must have shape ({n_atoms},), got {tuple(batch.shape)}")
    if n_atoms and (batch.min() < 0 or bool((batch[1:] < batch[:-1]).any())):
        raise ValueError("batch must be non-negative and non-decreasing: the atoms of each "
                         "molecule are contiguous (see collate())")
    return batch


def neighbour_pairs(positions: Tensor, r_cut: float, batch: Tensor | None = None,
                    method: str = "auto") -> NeighbourPairs:
    """All directed pairs (i, j), i != j, with |r_i - r_j| < r_cut (no periodic images).

    Parameters
    ----------
    positions : (N, 3) tensor, Angstrom (may require grad; the search itself is not
        differentiated, ``r_ij`` is).
    r_cut : cutoff radius (Angstrom).
    batch : optional (N,) molecule index of every atom, non-decreasing; pairs never join two
        molecules.
    method : ``"torch"`` (vectorised all-pairs search within each molecule, O(sum n_m^2)
        memory), ``"ase"`` (``ase.neighborlist.neighbor_list`` per molecule, linear scaling) or
        ``"auto"`` (ASE when a molecule has more than 2000 atoms).
    """
    positions = torch.as_tensor(positions)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {tuple(positions.shape)}")
    if not r_cut > 0:
        raise ValueError(f"r_cut must be positive, got {r_cut}")
    device = positions.device
    n_atoms = positions.shape[0]
    batch = _check_batch(batch, n_atoms, device)
    if method not in ("auto", "torch", "ase"):
        raise ValueError(f"method must be 'auto', 'torch' or 'ase', got {method!r}")
    empty = torch.zeros(0, dtype=torch.long, device=device)
    if n_atoms == 0:
        return NeighbourPairs(empty, empty, positions.new_zeros((0, 3)))

    counts = torch.bincount(batch)
    starts = torch.cumsum(counts, 0) - counts
    pos = positions.detach()
    if method == "auto":
        method = "ase" if int(counts.max()) > _ASE_THRESHOLD else "torch"

    if method == "torch":
        n_partners = counts[batch]  # atoms in the molecule of each atom
        i = torch.repeat_interleave(torch.arange(n_atoms, device=device), n_partners)
        block_start = torch.cumsum(n_partners, 0) - n_partners
        local = torch.arange(i.shape[0], device=device) - block_start[i]
        j = starts[batch[i]] + local
        keep = i != j
        i, j = i[keep], j[keep]
        d2 = ((pos[i] - pos[j]) ** 2).sum(-1)
        keep = d2 < r_cut * r_cut
        i, j = i[keep], j[keep]
    else:
        from ase import Atoms
        from ase.neighborlist import neighbor_list

        xyz = pos.cpu().double().numpy()
        ii, jj = [], []
        for m in np.flatnonzero(counts.cpu().numpy()):
            s, n = int(starts[m]), int(counts[m])
            atoms = Atoms(numbers=np.zeros(n, dtype=int), positions=xyz[s:s + n], pbc=False)
            a, b = neighbor_list("ij", atoms, float(r_cut), self_interaction=False)
            ii.append(a + s)
            jj.append(b + s)
        i = torch.as_tensor(np.concatenate(ii), dtype=torch.long, device=device)
        j = torch.as_tensor(np.concatenate(jj), dtype=torch.long, device=device)
        order = torch.argsort(i * n_atoms + j)  # same order as the torch search
        i, j = i[order], j[order]
        # ASE's boundary convention may differ from ours at d == r_cut exactly
        keep = ((pos[i] - pos[j]) ** 2).sum(-1) < r_cut * r_cut
        i, j = i[keep], j[keep]
    return NeighbourPairs(i, j, positions[i] - positions[j])


def collate(positions: Sequence[Any] | Tensor, species: Sequence[Any] | Tensor
            ) -> tuple[Tensor, Tensor, Tensor]:
    """Concatenate molecules: ``(positions (sum N, 3), species (sum N,), batch (sum N,))``.

    ``positions[m]`` is an (N_m, 3) array or tensor, ``species[m]`` an (N_m,) integer array or
    tensor of species indices (see :meth:`GaussianMoments.species_index`).
    """
    if len(positions) != len(species):
        raise ValueError(f"{len(positions)} position sets but {len(species)} species sets")
    pos = [torch.as_tensor(p) for p in positions]
    spc = [torch.as_tensor(s).long() for s in species]
    for m, (p, s) in enumerate(zip(pos, spc)):
        if p.ndim != 2 or p.shape[1] != 3 or s.shape != (p.shape[0],):
            raise ValueError(f"molecule {m}: positions {tuple(p.shape)} and species "
                             f"{tuple(s.shape)} do not match (N, 3) and (N,)")
    batch = torch.repeat_interleave(torch.arange(len(pos)),
                                    torch.tensor([p.shape[0] for p in pos], dtype=torch.long))
    return torch.cat(pos), torch.cat(spc), batch.to(pos[0].device if pos else "cpu")


# --- the descriptor --------------------------------------------------------------------------
def _to_atomic_number(x: Any) -> int:
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        z = int(x)
        if 1 <= z < len(chemical_symbols):
            return z
        raise ValueError(f"{x} is not an atomic number")
    if isinstance(x, str) and x in atomic_numbers and atomic_numbers[x] > 0:
        return atomic_numbers[x]
    raise ValueError(f"unknown element {x!r}")


#: the keys of :meth:`GaussianMoments.settings` (and of ``descriptor:`` in a train
#: configuration of a gmnn kind)
SETTINGS_KEYS = ("species", "n_radial", "n_basis", "r_cut", "r_min", "n_contractions", "init",
                 "dtype")


class GaussianMoments(torch.nn.Module):
    """Trainable Gaussian-moment descriptor (see the module docstring for the equations).

    Parameters
    ----------
    species : the elements the model knows, as symbols or atomic numbers, in a fixed order
        (species index k = position in this list); duplicates are refused.
    n_radial : radial functions per moment (R); 5 gives the paper's 360 features.
    n_basis : Gaussians per radial function.
    r_cut : cutoff radius (Angstrom); the paper used 8.0 for D tensors, 6.5 for energies.
    r_min : centre of the first Gaussian (Angstrom).
    n_contractions : number of contraction blocks kept (1..8; 8 = full GM-NN set).
    init : ``"normal"`` (GM-NN: beta ~ N(0, 1)) or ``"uniform"`` (apax: U(-1, 1)).
    dtype : ``torch.float32`` (default) or ``torch.float64`` (or their names).
    seed : seed of the initial coefficients (``None``: torch's global generator).
    """

    # buffers registered in __init__ (declared here for the type checker)
    shifts: Tensor
    _z_to_index: Tensor
    _expand2: Tensor
    _expand3: Tensor
    _unique2: Tensor
    _rank3_from2: Tensor
    _tri2: Tensor
    _tri3: Tensor

    def __init__(self, species: Sequence[str | int], n_radial: int = DEFAULT_N_RADIAL,
                 n_basis: int = DEFAULT_N_BASIS, r_cut: float = DEFAULT_R_CUT,
                 r_min: float = DEFAULT_R_MIN, n_contractions: int = N_CONTRACTIONS,
                 init: str = "normal", dtype: torch.dtype | str = torch.float32,
                 seed: int | None = None) -> None:
        super().__init__()
        numbers = [_to_atomic_number(s) for s in species]
        if not numbers:
            raise ValueError("species must name at least one element")
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"species has duplicates: {list(species)}")
        if n_radial < 1 or n_basis < 1:
            raise ValueError(f"n_radial and n_basis must be >= 1, got {n_radial}, {n_basis}")
        if not 0 <= r_min < r_cut:
            raise ValueError(f"need 0 <= r_min < r_cut, got r_min={r_min}, r_cut={r_cut}")
        gaussian_moment_feature_count(n_radial, n_contractions)  # validates n_contractions
        if init not in ("normal", "uniform"):
            raise ValueError(f"init must be 'normal' or 'uniform', got {init!r}")
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
            dtype = _DTYPES[dtype]
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")

        self.atomic_numbers = tuple(numbers)
        self.symbols = tuple(chemical_symbols[z] for z in numbers)
        self.n_radial = int(n_radial)
        self.n_basis = int(n_basis)
        self.r_cut = float(r_cut)
        self.r_min = float(r_min)
        self.n_contractions = int(n_contractions)
        self.init = init
        self.dtype = dtype

        n_species = len(numbers)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        shape = (n_species, n_species, self.n_radial, self.n_basis)
        if init == "normal":
            beta = torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            beta = 2.0 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1.0
        #: beta[Z_i, Z_j, s, k]: species index of the centre, of the neighbour, radial, Gaussian.
        self.coefficients = torch.nn.Parameter(beta.to(dtype))

        self.alpha = (self.n_basis / self.r_cut) ** 2
        self.gauss_norm = (2.0 * self.alpha / math.pi) ** 0.25
        shifts = self.r_min + (self.r_cut - self.r_min) / self.n_basis * np.arange(self.n_basis)
        self.register_buffer("shifts", torch.tensor(shifts, dtype=dtype), persistent=False)
        self.register_buffer("_z_to_index", self._lookup_table(numbers), persistent=False)
        self.register_buffer("_expand2", torch.tensor(_EXPAND2), persistent=False)
        self.register_buffer("_expand3", torch.tensor(_EXPAND3), persistent=False)
        # unique u(x)u components (flat 3x3 positions) and u(x)u(x)u = (u(x)u)[a<=b] * u[c]
        self.register_buffer("_unique2", torch.tensor([3 * a + b for a, b in _SYM2]),
                             persistent=False)
        self.register_buffer("_rank3_from2", torch.tensor(
            [[_SYM2.index((a, b)) for a, b, _ in _SYM3], [c for _, _, c in _SYM3]]),
            persistent=False)
        tri2 = torch.tensor(_pairs_upper(self.n_radial)).reshape(-1, 2)
        tri3 = torch.tensor(_triples_upper(self.n_radial)).reshape(-1, 3)
        self.register_buffer("_tri2", tri2, persistent=False)
        self.register_buffer("_tri3", tri3, persistent=False)

    @staticmethod
    def _lookup_table(numbers: Sequence[int]) -> Tensor:
        table = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
        table[torch.tensor(numbers)] = torch.arange(len(numbers))
        return table

    # --- bookkeeping ------------------------------------------------------------------------
    @property
    def n_species(self) -> int:
        return len(self.atomic_numbers)

    @property
    def n_features(self) -> int:
        """Invariants per atom; see :func:`gaussian_moment_feature_count`."""
        return gaussian_moment_feature_count(self.n_radial, self.n_contractions)

    @property
    def block_sizes(self) -> list[int]:
        """Sizes of the contraction blocks, in feature order."""
        return _block_sizes(self.n_radial)[: self.n_contractions]

    def species_index(self, species: Iterable[str | int] | Any) -> Tensor:
        """Species indices (long tensor) of element symbols or atomic numbers (or an
        ``ase.Atoms``); an element outside ``species`` raises ``ValueError`` naming it."""
        if hasattr(species, "numbers") and hasattr(species, "positions"):
            species = species.numbers
        numbers = []
        for s in (species.tolist() if hasattr(species, "tolist") else species):
            try:
                numbers.append(_to_atomic_number(s))
            except ValueError as err:
                raise ValueError(f"unknown species {s!r}: this descriptor knows "
                                 f"{', '.join(self.symbols)} ({err})") from None
        idx = self._z_to_index.cpu()[torch.tensor(numbers, dtype=torch.long)] if numbers else \
            torch.zeros(0, dtype=torch.long)
        if bool((idx < 0).any()):
            missing = sorted({chemical_symbols[z] for z, k in zip(numbers, idx.tolist()) if k < 0})
            raise ValueError(f"unknown species {', '.join(missing)}: this descriptor knows "
                             f"{', '.join(self.symbols)}")
        return idx.to(self._z_to_index.device)

    def settings(self) -> dict[str, Any]:
        """Hyperparameters as a JSON-serialisable dict (the coefficients are in
        ``state_dict()``): ``GaussianMoments.from_settings(gm.settings())`` rebuilds it."""
        return {
            "kind": "gaussian_moments",
            "species": list(self.symbols),
            "n_radial": self.n_radial,
            "n_basis": self.n_basis,
            "r_cut": self.r_cut,
            "r_min": self.r_min,
            "n_contractions": self.n_contractions,
            "init": self.init,
            "dtype": "float64" if self.dtype == torch.float64 else "float32",
        }

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any],
                      state_dict: Mapping[str, Tensor] | None = None) -> GaussianMoments:
        """Inverse of :meth:`settings`; unknown keys are refused.  ``state_dict`` (optional)
        restores trained coefficients."""
        s = dict(settings)
        kind = s.pop("kind", "gaussian_moments")
        if kind != "gaussian_moments":
            raise ValueError(f"settings are for {kind!r}, not 'gaussian_moments'")
        unknown = sorted(set(s) - set(SETTINGS_KEYS))
        if unknown:
            raise ValueError(f"unknown Gaussian-moment settings: {', '.join(unknown)}")
        if "species" not in s:
            raise ValueError("Gaussian-moment settings lack 'species'")
        module = cls(**s)
        if state_dict is not None:
            module.load_state_dict(dict(state_dict))
        return module

    def extra_repr(self) -> str:
        return (f"species={list(self.symbols)}, n_radial={self.n_radial}, "
                f"n_basis={self.n_basis}, r_cut={self.r_cut}, r_min={self.r_min}, "
                f"n_contractions={self.n_contractions}, n_features={self.n_features}, "
                f"dtype={self.dtype}")

    # --- the maths ----------------------------------------------------------------------------
    def cutoff(self, r: Tensor) -> Tensor:
        """Cosine cutoff: (cos(pi r / r_cut) + 1) / 2 below r_cut, 0 from r_cut on; value and
        slope vanish at r_cut."""
        inside = r < self.r_cut
        rc = torch.where(inside, r, torch.full_like(r, self.r_cut))
        return torch.where(inside, 0.5 * (torch.cos(math.pi * rc / self.r_cut) + 1.0),
                           torch.zeros_like(r))

    def gaussian_basis(self, r: Tensor) -> Tensor:
        """(P, n_basis) L2-normalised Gaussians Phi_k(r)."""
        return self.gauss_norm * torch.exp(-self.alpha * (r[:, None] - self.shifts) ** 2)

    def radial(self, r: Tensor, species_i: Tensor, species_j: Tensor) -> Tensor:
        """(P, n_radial) radial functions R_{Z_i Z_j, s}(r) of pairs with distances ``r``.

        The pairs are grouped by species pair, one (P_t, K) x (K, R) product per group: much
        cheaper to differentiate than gathering a (P, R, K) block of coefficients."""
        n_s, n_r, n_b = self.n_species, self.n_radial, self.n_basis
        basis = self.gaussian_basis(r) * (self.cutoff(r) / math.sqrt(n_b))[:, None]  # (P, K)
        beta = self.coefficients.reshape(n_s * n_s, n_r, n_b)
        if n_s == 1:
            return basis @ beta[0].T
        pair_type = species_i * n_s + species_j
        order = torch.argsort(pair_type)
        counts = torch.bincount(pair_type, minlength=n_s * n_s).tolist()
        groups = torch.split(basis.index_select(0, order), counts)
        grouped = torch.cat([g @ beta[t].T for t, g in enumerate(groups) if counts[t]]
                            or [basis.new_zeros((0, n_r))])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.shape[0], device=order.device)
        return grouped.index_select(0, inverse)

    def moments(self, positions: Tensor, species: Tensor,
                pairs: NeighbourPairs | tuple[Tensor, Tensor] | Tensor) -> list[Tensor]:
        """Psi_{i,L,s} for L = 0..3: tensors of shape (N, R), (N, R, 3), (N, R, 3, 3),
        (N, R, 3, 3, 3)."""
        positions, species, i, j = self._prepare(positions, species, pairs)
        n_atoms = positions.shape[0]
        r_vec = positions.index_select(0, i) - positions.index_select(0, j)
        r = torch.linalg.vector_norm(r_vec, dim=-1)
        u = r_vec / r.clamp_min(1e-12)[:, None]
        radial = self.radial(r, species.index_select(0, i), species.index_select(0, j))
        uu = (u[:, :, None] * u[:, None, :]).reshape(-1, 9).index_select(1, self._unique2)
        uuu = (uu[:, self._rank3_from2[0]] * u.index_select(1, self._rank3_from2[1]))
        angular = torch.cat([torch.ones_like(r)[:, None], u, uu, uuu], dim=1)  # (P, 20)
        summed = _segment_outer_sum(radial, angular, i, n_atoms)  # (N, R, 20)
        m0 = summed[..., 0]
        m1 = summed[..., 1:4]
        m2 = summed[..., 4:10][..., self._expand2].reshape(n_atoms, self.n_radial, 3, 3)
        m3 = summed[..., 10:20][..., self._expand3].reshape(n_atoms, self.n_radial, 3, 3, 3)
        return [m0, m1, m2, m3]

    def full_contractions(self, moments: Sequence[Tensor]) -> list[Tensor]:
        """The eight contraction blocks before the symmetric duplicates are dropped:
        (N, R), three (N, R, R) and four (N, R, R, R) tensors, index order as in the module
        docstring."""
        m0, v, a, t = moments
        n, nr = m0.shape
        a9 = a.reshape(n, nr, 9)
        t27 = t.reshape(n, nr, 27)
        c1 = torch.einsum("nri,nsi->nrs", v, v)
        c2 = torch.einsum("nri,nsi->nrs", a9, a9)
        c3 = torch.einsum("nri,nsi->nrs", t27, t27)
        aa = torch.einsum("nrij,nsjk->nrsik", a, a).reshape(n, nr * nr, 9)
        c4 = torch.einsum("nqx,ntx->nqt", aa, a9).reshape(n, nr, nr, nr)  # tr(A_r A_s A_t)
        vv = torch.einsum("nri,nsj->nrsij", v, v).reshape(n, nr * nr, 9)
        c5 = torch.einsum("nqx,ntx->nqt", vv, a9).reshape(n, nr, nr, nr)  # v_r A_t v_s
        t93 = t.reshape(n, nr, 9, 3)
        tt = torch.einsum("nrxk,nsxl->nrskl", t93, t93).reshape(n, nr * nr, 9)
        c6 = torch.einsum("nqx,ntx->nqt", tt, a9).reshape(n, nr, nr, nr)
        ta = torch.einsum("nrxk,nsx->nrsk", t93, a9)
        c7 = torch.einsum("nrsk,ntk->nrst", ta, v)
        return [m0, c1, c2, c3, c4, c5, c6, c7]

    def _invariants(self, moments: Sequence[Tensor]) -> Tensor:
        m0 = moments[0]
        n = m0.shape[0]
        k = self.n_contractions
        if k == 1:  # skip the work
            return m0
        full = self.full_contractions(moments)
        r2, s2 = self._tri2[:, 0], self._tri2[:, 1]
        r3, s3, t3 = self._tri3[:, 0], self._tri3[:, 1], self._tri3[:, 2]
        blocks = [
            full[0],
            full[1][:, r2, s2],
            full[2][:, r2, s2],
            full[3][:, r2, s2],
            full[4][:, r3, s3, t3],
            full[5][:, r2, s2, :].reshape(n, -1),
            full[6][:, r2, s2, :].reshape(n, -1),
            full[7].reshape(n, -1),
        ]
        return torch.cat(blocks[:k], dim=-1)

    def _prepare(self, positions, species, pairs):
        positions = torch.as_tensor(positions)
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise ValueError(f"positions must have shape (N, 3), got {tuple(positions.shape)}")
        positions = positions.to(dtype=self.dtype, device=self.coefficients.device)
        species = torch.as_tensor(species, device=positions.device)
        if species.dtype.is_floating_point or species.dtype == torch.bool:
            raise ValueError("species must be integer species indices (see species_index())")
        species = species.long()
        if species.shape != (positions.shape[0],):
            raise ValueError(f"species must have shape ({positions.shape[0]},), "
                             f"got {tuple(species.shape)}")
        if species.numel() and (species.min() < 0 or species.max() >= self.n_species):
            bad = species[(species < 0) | (species >= self.n_species)][0].item()
            raise ValueError(f"species index {bad} out of range: this descriptor knows "
                             f"{self.n_species} species ({', '.join(self.symbols)})")
        if isinstance(pairs, NeighbourPairs):
            i, j = pairs.i, pairs.j
        elif isinstance(pairs, Tensor):
            if pairs.ndim != 2 or pairs.shape[0] != 2:
                raise ValueError(f"pairs tensor must have shape (2, P), got {tuple(pairs.shape)}")
            i, j = pairs[0], pairs[1]
        else:
            i, j = pairs[0], pairs[1]
        i = torch.as_tensor(i, device=positions.device).long()
        j = torch.as_tensor(j, device=positions.device).long()
        if i.shape != j.shape or i.ndim != 1:
            raise ValueError("pair indices i and j must be 1-d and of equal length")
        return positions, species, i, j

    def forward(self, positions: Tensor, species: Tensor,
                pairs: NeighbourPairs | tuple[Tensor, Tensor] | Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        """(N, n_features) Gaussian moments of every atom.

        ``positions`` (N, 3) in Angstrom (may require grad: forces by autograd);
        ``species`` (N,) species indices; ``pairs`` from :func:`neighbour_pairs` (or (i, j)
        index tensors, or a (2, P) tensor): pair vectors are recomputed from ``positions``
        so the result is differentiable; pairs at or beyond r_cut contribute exactly zero.
        Without ``pairs`` they are searched here (within each molecule of ``batch``).
        """
        if pairs is None:
            pairs = neighbour_pairs(torch.as_tensor(positions), self.r_cut, batch=batch)
        return self._invariants(self.moments(positions, species, pairs))

    def batch(self, positions: Tensor | Sequence[Any], species: Tensor | Sequence[Any],
              batch: Tensor | None = None,
              pairs: NeighbourPairs | tuple[Tensor, Tensor] | Tensor | None = None
              ) -> tuple[Tensor, Tensor]:
        """Several molecules at once; returns ``(features (sum N, F), batch (sum N,))``.

        Either lists of per-molecule positions and species indices (concatenated with
        :func:`collate`), or the concatenated tensors with their ``batch`` index.  The moments
        are segment sums (``index_add_``) over pairs that never cross molecules, so each
        molecule's rows equal what ``forward`` gives for it alone.
        """
        if batch is None:
            if isinstance(positions, Tensor):
                raise ValueError("concatenated positions need their batch index")
            positions, species, batch = collate(positions, species)
        positions = torch.as_tensor(positions)
        species = torch.as_tensor(species)
        batch = _check_batch(batch, positions.shape[0], positions.device)
        if pairs is None:
            pairs = neighbour_pairs(positions, self.r_cut, batch=batch)
        return self.forward(positions, species, pairs), batch

    def featurize_atoms(self, atoms) -> Tensor:
        """Features of one ``ase.Atoms`` (non-periodic; positions in Angstrom)."""
        pos = torch.as_tensor(np.asarray(atoms.positions), dtype=self.dtype,
                              device=self.coefficients.device)
        return self.forward(pos, self.species_index(atoms.numbers))
