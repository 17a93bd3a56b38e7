r"""Gaussian-moment neural networks (GM-NN) for D tensors and for energies + forces.

Zaverkin, Netz, Zills, Köhn & Kästner, "Thermally Averaged Magnetic Anisotropy Tensors via
Machine Learning Based on Gaussian Moments" (2022) ("the paper" below), sections 2.2 and 2.3.
Two model members following :mod:`molmag.models.base`:

:class:`GMNNTensor` (``kind = "gmnn-tensor"``, target ``zfs_tensor``, cm-1)
    Eq. 7: the D tensor of a structure is a sum of atomic terms

        D = sum_i m_i (3 r̂_i ⊗ r̂_i - I),     r̂_i = (r_i - r̄) / |r_i - r̄|,

    symmetric, traceless, rotating as R D Rᵀ and translation invariant by construction.  The
    origin r̄ is the hyperparameter ``origin``: ``"centroid"`` (the paper's choice,
    r̄ = (1/N) sum_i r_i, the unweighted centroid of the positions) or ``"metal"`` (r̄ = the
    position of the metal, :func:`molmag.models.base.metal_index`; the metal's own term has no
    direction and is dropped).  An atom closer than 1e-8 Å to r̄ contributes nothing.
    m_i = y_i sigma_{Z_i} + mu_{Z_i} (eq. 9, cm-1) with y_i the atomic network (eq. 8) of the
    atom's Gaussian moments G_i.  Loss (eqs. 10-11), summed over the structures of a
    mini-batch and divided by their number (the paper sums over the training set; the
    constant factor only rescales the loss)::

        L_D = 1/B sum_k || D_k^ref - D_k ||^2,
        D^ref = (D11, D21, D31, D22, D32, D33)^ref,  D = (D11, D21, D31, D22, D32, -(D11 + D22))

    (the elements i >= j; the reference is symmetrised first, which changes nothing for the
    symmetric tensors of a spin Hamiltonian).  Early stopping: the MAE of these six elements
    on the validation set (cm-1), as in the paper.

:class:`GMNNEnergy` (``kind = "gmnn-energy"``, target ``energy``, eV and eV/Å)
    Eq. 1 with eq. 9: E = sum_i (sigma_{Z_i} y_i + mu_{Z_i}), forces F_i = -dE/dr_i by
    autograd (exactly conservative).  Loss eq. 13 in atomic units (E in Hartree, F in
    Hartree/Å), per structure k with N_k atoms, averaged over the mini-batch::

        L = 1/B sum_k [ lambda_E (E_k^ref - E_k)^2
                        + lambda_F,k / (3 N_k) sum_i |F_ik^ref - F_ik|^2 ],
        lambda_E = energy_weight = 1,   lambda_F,k = force_weight * N_k,  force_weight = 12 Å^2

    (the paper's lambda_E = 1 au and lambda_F = 12 N_at au Å^2).  Frames whose forces are
    ``None`` enter with the energy term only.  The Gaussian moments use r_cut = 6.5 Å
    (:data:`~molmag.descriptors.gaussian_moments.ENERGY_R_CUT`, paper section 4.2) unless
    the settings dict sets ``r_cut``.  Early stopping (``stop_on``): ``"sum"`` (default:
    energy MAE in eV plus force-component MAE in eV/Å), ``"energy"`` or ``"forces"``.

Network (both; paper section 2.2.2 and eq. 8): Gaussian moments (360 features with the
default settings, trainable radial coefficients; :class:`~molmag.descriptors.gaussian_moments.
GaussianMoments`) -> NTK-parameterised MLP with two hidden layers of 512 scaled-SiLU neurons
and one output (:mod:`molmag.models.gmnn_layers`) -> per-species trainable scale and shift.

Initial scale and shift (our choices where the paper leaves them open):

* tensor, ``scale_shift_init="lstsq"`` (default): mu_Z by linear least squares of the six
  loss elements of D^ref on sum_{i: Z_i = Z} (3 r̂_i ⊗ r̂_i - I) (the best D that constant
  atomic m_Z can give), sigma (one value for all species) by moment matching of the
  residual: sigma^2 = sum_k ||res_k||^2 / sum_k sum_i ||A_i||^2 over the six elements (the
  residual variance if the y_i were independent with unit variance).
  ``scale_shift_init="paper"``: sigma_Z = std and mu_Z = mean of the reference elements
  D11, D21, D31, D22, D32 (i >= j without one diagonal element) over the training set, the
  same for every species (paper, text before eq. 9).
* energy: mu_Z is split into a fixed part b_Z from the least-squares fit of the training
  energies on the element counts (kept in float64, so that float32 networks never subtract
  numbers of -3000 eV) plus a trainable part that starts at 0 (the same model and the same
  Adam steps as a trainable mu_Z that starts at b_Z); sigma_Z = the RMS of the reference force
  components (eV/Å taken as eV) when forces are given, else the residual energy std divided
  by sqrt(mean N).

Training (shared): Adam (beta1 0.9, beta2 0.999, eps 1e-7), mini-batches of 32 structures,
layer-wise learning rates that decay linearly to zero, lr(step) = lr0 (1 - step/max_step)
(paper section 2.2.2: D tensor lr0 = 0.02 network, 0.02 Gaussian-moment coefficients, 0.025
shift, 0.025 scale; section 2.3: energy 0.03, 0.02, 0.05, 0.001).  After every epoch the
validation error is evaluated and the best weights are kept (early stopping in the paper's
sense: the model with the smallest validation MAE is returned; ``patience`` optionally ends
training after that many epochs without improvement).  The paper trains 1000 epochs on a
GPU; ``max_epochs`` defaults to what fits the 5-minute CPU budget of 900 [Co(pdms)2]2-
structures on two cores (see ``benchmarks/gmnn.py``).  ``checkpoint`` (a path) saves model,
optimiser, epoch and best weights after every epoch and resumes from the file when it exists
(a killed run continues where it stopped and ends with the same weights as an uninterrupted
one).  Runs are deterministic for a given seed (and torch thread count): the epoch
permutations come from ``numpy.random.default_rng([seed, epoch])``.

Data handling: molecules of at most :data:`DENSE_MAX_ATOMS` atoms take a dense route
(:func:`dense_gaussian_moments`: molecules with the same atoms in the same order are stacked
and all n^2 pairs evaluated with a cutoff mask; no neighbour list, no index scatter; about
1.5x faster predictions than the descriptor module's sparse route for a 53-atom complex, and
tested equal to it); for larger molecules the neighbour pairs are searched once per data set
and cached per frame.  Mini-batches are assembled by index arithmetic; for the tensor model
the geometric tensors 3 r̂ ⊗ r̂ - I of the training and validation frames are precomputed;
``predict`` runs in chunks of ``predict_batch`` structures.

Measured (``benchmarks/gmnn.py``; 900 training, 100 validation, 300 test [Co(pdms)2]2-
structures, D tensors from the ligand-field engine, energies/forces from GFN2-xTB; default
hyperparameters; two CPU cores shared with other jobs, so times vary about 2x):
gmnn-tensor (80 epochs) RMSE D_ij 4.2 cm-1 (std 7.2; covariant bispectrum ridge 6.5), about
2.5 s per epoch on two idle cores (4.2 s on one), 800-900 predictions/s on two cores;
gmnn-energy (35 epochs) RMSE E 1.1 eV, F 1.5 eV/Å (std of F 5.1), about 7 s per epoch on two
cores, ~330 predictions/s (forces included).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.units import Hartree
from torch import Tensor, nn

from molmag.descriptors.gaussian_moments import ENERGY_R_CUT, GaussianMoments, neighbour_pairs
from molmag.models.base import Log, check_species, metal_index, refuse_forces
from molmag.models.gmnn_layers import AtomicMLP, SpeciesScaleShift
from molmag.models.hyperparameters import check_hyperparameters

__all__ = ["GMNNNetwork", "GMNNTensor", "GMNNEnergy", "DENSE_MAX_ATOMS", "dense_gaussian_moments",
           "rhombic_directions", "traceless_dyads"]

_CHECKPOINT_FORMAT = "molmag-gmnn-checkpoint"
#: Flat (row-major 3x3) positions of D11, D21, D31, D22, D32, D33: the i >= j elements of eq. 11.
_LOWER = [0, 3, 6, 4, 7, 8]
#: An atom closer than this to the origin of eq. 7 (Å) has no direction and contributes nothing.
_ORIGIN_EPS = 1e-8


def _seeds(seed: int, n: int) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(int(seed)).spawn(n)]


class GMNNNetwork(nn.Module):
    """Gaussian moments -> atomic network (eq. 8) -> per-species scale and shift (eq. 9).

    ``forward(positions, species, pairs)`` returns the (N,) atomic outputs m_i in the unit of
    the target; ``positions`` (N, 3) Å, ``species`` (N,) species indices of the descriptor,
    ``pairs`` a (2, P) tensor of directed neighbour pairs (within r_cut).  ``atomic(batch,
    positions)`` does the same for a mini-batch of the training/prediction data, with the
    dense route of :func:`dense_gaussian_moments` for molecules of at most
    :data:`DENSE_MAX_ATOMS` atoms."""

    def __init__(self, settings: Mapping[str, Any], hidden: Sequence[int], seed: int) -> None:
        super().__init__()
        s_desc, s_mlp = _seeds(seed, 2)
        s = GaussianMoments.from_settings(settings).settings()
        s.pop("kind")
        self.descriptor = GaussianMoments(**s, seed=s_desc)
        dtype = self.descriptor.dtype
        self.mlp = AtomicMLP(self.descriptor.n_features, hidden,
                             generator=torch.Generator().manual_seed(s_mlp), dtype=dtype)
        self.scale_shift = SpeciesScaleShift(self.descriptor.n_species, dtype=dtype)

    def forward(self, positions: Tensor, species: Tensor, pairs: Tensor) -> Tensor:
        g = self.descriptor(positions, species, pairs)
        return self.scale_shift(self.mlp(g), species)

    def atomic(self, b: _Batch, positions: Tensor) -> Tensor:
        """(N,) m_i of the atoms of mini-batch ``b`` at ``positions`` ((N, 3), batch order)."""
        parts = []
        for a0, g, n, spc in b.dense:
            pos = positions[a0:a0 + g * n].reshape(g, n, 3)
            parts.append(dense_gaussian_moments(self.descriptor, pos, spc))
        if b.sparse is not None:
            a0, pairs = b.sparse
            parts.append(self.descriptor(positions[a0:], b.species[a0:], pairs))
        g = torch.cat(parts) if len(parts) > 1 else parts[0]
        return self.scale_shift(self.mlp(g), b.species)


#: Molecules with at most this many atoms take the dense route (all n^2 pairs, masked).
DENSE_MAX_ATOMS = 256
#: Pairs per dense block (molecules x n^2): bounds the memory of one block (~100 MB float32).
_DENSE_BLOCK_PAIRS = 1 << 20


def dense_gaussian_moments(gm: GaussianMoments, positions: Tensor, species: Tensor,
                           centres: Tensor | None = None) -> Tensor:
    """(B c, F) Gaussian moments of B molecules with the same atoms in the same order.

    The same quantity as ``gm(positions, species, neighbour_pairs(...))`` (see
    :mod:`molmag.descriptors.gaussian_moments` for the equations), computed on the dense
    (B, c, n) grid of atom pairs: r_ij = r_i - r_j, the cutoff mask r_ij < r_cut (i != j)
    replacing the neighbour list, the radial coefficients beta[Z_i, Z_j] gathered once for
    the whole block, and the moments Psi_{i,s,a} = sum_j R_s(r_ij) u_ij^a as one batched
    matrix product.  No index scatter: several times faster for molecules of tens of atoms,
    differentiable (twice) in ``positions`` (B, n, 3) Å; ``species`` (n,) species indices;
    ``centres`` (c,) the atoms whose moments are wanted (default: all n, c = n), every atom
    still counting as their neighbour."""
    b, n, _ = positions.shape
    if not torch.is_grad_enabled() and not positions.requires_grad:
        summed = _summed_moments_inference(gm, positions, species, centres)
    else:
        basis, angular, spc_c = _dense_geometry(gm, positions, species, centres)
        c = spc_c.shape[0]
        coef = gm.coefficients.index_select(0, spc_c).index_select(1, species)  # (c,n,R,K)
        radial = torch.einsum("bijk,ijsk->bijs", basis, coef)              # (B, c, n, R)
        summed = torch.matmul(radial.transpose(-1, -2), angular)          # (B, c, R, 20)
        summed = summed.reshape(b * c, gm.n_radial, 20)
    c = summed.shape[0] // b
    m0 = summed[..., 0]
    m1 = summed[..., 1:4]
    m2 = summed[..., 4:10][..., gm._expand2].reshape(b * c, gm.n_radial, 3, 3)
    m3 = summed[..., 10:20][..., gm._expand3].reshape(b * c, gm.n_radial, 3, 3, 3)
    return gm._invariants([m0, m1, m2, m3])


#: the geometric parts of recent inference calls of :func:`dense_gaussian_moments` (they do
#: not depend on the trainable coefficients, so the members of a committee predicting the
#: same structures compute them once); oldest dropped beyond _GEOMETRY_CACHE_BYTES
_GEOMETRY_CACHE: OrderedDict = OrderedDict()
_GEOMETRY_CACHE_BYTES = 256 * 2**20


def _summed_moments_inference(gm: GaussianMoments, positions: Tensor, species: Tensor,
                              centres: Tensor | None) -> Tensor:
    """(B c, R, 20) Psi_{i,s,a} = sum_j R_s(r_ij) u_ij^a of :func:`dense_gaussian_moments`,
    for inference: the neighbour sums are split by the neighbour's species first,
    G_{b,i,Z,k,a} = sum_{j: Z_j = Z} f_c Phi_k(r_ij) u_ij^a / sqrt(K) (no trainable
    parameter: computed once per block and shared by the members of a committee through
    the geometry cache), so that each member's radial coefficients enter as one batched
    matrix product per centre, Psi_{i,s,a} = sum_{Z,k} beta[Z_i, Z, s, k] G_{i,Z,k,a}."""
    grouped, spc_c = _grouped_geometry(gm, positions, species, centres)  # (c, S K, B 20)
    b = positions.shape[0]
    c = spc_c.shape[0]
    n_s, n_r, n_b = gm.n_species, gm.n_radial, gm.n_basis
    w = gm.coefficients.index_select(0, spc_c).permute(0, 2, 1, 3).reshape(c, n_r, n_s * n_b)
    summed = torch.bmm(w, grouped).reshape(c, n_r, b, 20)
    return summed.permute(2, 0, 1, 3).reshape(b * c, n_r, 20)


def _grouped_geometry(gm: GaussianMoments, positions: Tensor, species: Tensor,
                      centres: Tensor | None) -> tuple[Tensor, Tensor]:
    """(G (c, S K, B 20), species of the centres (c,)): the neighbour sums of
    :func:`_summed_moments_inference`, remembered in the inference geometry cache."""
    key = ("grouped", positions.dtype, tuple(positions.shape), gm.r_cut, gm.n_basis,
           gm.r_min, gm.n_species, positions.contiguous().numpy().tobytes(),
           species.numpy().tobytes(), None if centres is None else centres.numpy().tobytes())
    hit = _GEOMETRY_CACHE.get(key)
    if hit is not None:
        _GEOMETRY_CACHE.move_to_end(key)
        return hit
    basis, angular, spc_c = _dense_geometry(gm, positions, species, centres, cache=False)
    b, c, n, n_b = basis.shape
    order = torch.argsort(species, stable=True)
    counts = torch.bincount(species, minlength=gm.n_species).tolist()
    basis = basis.index_select(2, order).reshape(b * c, n, n_b)
    angular = angular.index_select(2, order).reshape(b * c, n, 20)
    parts, j0 = [], 0
    for n_z in counts:       # species Z: (B c, K, n_Z) x (B c, n_Z, 20)
        if n_z:
            parts.append(torch.bmm(basis[:, j0:j0 + n_z].transpose(1, 2),
                                   angular[:, j0:j0 + n_z]))
        else:
            parts.append(basis.new_zeros((b * c, n_b, 20)))
        j0 += n_z
    g = torch.stack(parts, 1).reshape(b, c, gm.n_species * n_b, 20)
    out = (g.permute(1, 2, 0, 3).reshape(c, gm.n_species * n_b, b * 20).contiguous(), spc_c)
    _remember(key, out)
    return out


def _remember(key: tuple, value: tuple) -> None:
    _GEOMETRY_CACHE[key] = value
    size = lambda v: sum(t.nbytes for t in v)  # noqa: E731
    total = sum(size(v) for v in _GEOMETRY_CACHE.values())
    while len(_GEOMETRY_CACHE) > 1 and total > _GEOMETRY_CACHE_BYTES:
        total -= size(_GEOMETRY_CACHE.popitem(last=False)[1])


def _dense_geometry(gm: GaussianMoments, positions: Tensor, species: Tensor,
                    centres: Tensor | None, cache: bool = True
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """(basis (B, c, n, K) = f_c(r_ij) Phi_k(r_ij) / sqrt(K) with the cutoff mask, angular
    (B, c, n, 20) = [1, u, u(x)u (6 unique), u(x)u(x)u (10 unique)], species of the centres
    (c,)).  Without gradients (inference) the result is remembered for the next call with the
    same positions, species, centres and Gaussian settings."""
    key = None
    if cache and not torch.is_grad_enabled() and not positions.requires_grad:
        key = (positions.dtype, tuple(positions.shape), gm.r_cut, gm.n_basis, gm.r_min,
               positions.contiguous().numpy().tobytes(), species.numpy().tobytes(),
               None if centres is None else centres.numpy().tobytes())
        hit = _GEOMETRY_CACHE.get(key)
        if hit is not None:
            _GEOMETRY_CACHE.move_to_end(key)
            return hit
    b, n, _ = positions.shape
    n_b = gm.n_basis
    eye = torch.eye(n, dtype=torch.bool, device=positions.device)
    if centres is None:
        pc, spc_c = positions, species
    else:
        pc, spc_c, eye = positions.index_select(1, centres), species.index_select(0, centres), \
            eye.index_select(0, centres)
    c = pc.shape[1]
    r_vec = pc[:, :, None, :] - positions[:, None, :, :]               # (B, c, n, 3)
    d2 = (r_vec * r_vec).sum(-1)
    inside = (d2 < gm.r_cut * gm.r_cut) & ~eye
    r = torch.sqrt(torch.where(inside, d2, torch.ones_like(d2)))       # no sqrt(0) gradient
    u = r_vec / r[..., None]
    weight = gm.cutoff(r) * inside.to(r.dtype) / math.sqrt(n_b)
    basis = gm.gaussian_basis(r.reshape(-1)).reshape(b, c, n, n_b) * weight[..., None]
    uu = (u[..., :, None] * u[..., None, :]).reshape(b, c, n, 9).index_select(-1, gm._unique2)
    uuu = uu.index_select(-1, gm._rank3_from2[0]) * u.index_select(-1, gm._rank3_from2[1])
    angular = torch.cat([torch.ones_like(r)[..., None], u, uu, uuu], dim=-1)  # (B, c, n, 20)
    out = (basis, angular, spc_c)
    if key is not None:
        _remember(key, out)
    return out


def rhombic_directions(tensors: np.ndarray) -> np.ndarray:
    """(n, 6) weights c with E(D_ref + R) - E(D_ref) = sum_e c_e R_e + O(R^2) for a symmetric
    residual R given as its loss elements (R11, R21, R31, R22, R32, R33) (eq. 11's order).

    E = (X - Y)/2 with X, Y the eigenvalues along the reference's principal axes x, y
    (:func:`molmag.physics.zfs.zfs_from_tensor`: |Z| largest, 0 <= E/D <= 1/3).  By first-order
    perturbation theory dX = x^T R x, so dE = sum_ab R_ab U_ab with U = (x x^T - y y^T)/2, and
    c = (U11, 2 U21, 2 U31, U22, 2 U32, U33).  The GM-NN loss term ``e_weight``
    (sum_e c_e R_e)^2 uses it.  ``tensors``: (n, 3, 3), cm-1."""
    t = np.asarray(tensors, dtype=float)
    iso = np.trace(t, axis1=1, axis2=2) / 3.0
    w, v = np.linalg.eigh(t - iso[:, None, None] * np.eye(3))   # ascending
    mags = np.abs(w)
    iz = np.argmax(mags >= (mags.max(1) - 1e-11 * np.maximum(mags.max(1), 1e-300))[:, None],
                   axis=1)
    rest = np.array([[1, 2], [0, 2], [0, 1]])[iz]
    rows = np.arange(len(t))
    swap = (w[rows, rest[:, 0]] - w[rows, rest[:, 1]]) * w[rows, iz] < 0
    rest[swap] = rest[swap][:, ::-1]
    x = v[rows, :, rest[:, 0]]
    y = v[rows, :, rest[:, 1]]
    u = 0.5 * (x[:, :, None] * x[:, None, :] - y[:, :, None] * y[:, None, :])
    flat = u.reshape(-1, 9)[:, _LOWER]
    flat[:, [1, 2, 4]] *= 2.0
    return flat


def traceless_dyads(positions: Tensor, batch: Tensor, n_mol: int, origin: str,
                    metals: Tensor | None = None) -> Tensor:
    """(N, 3, 3) A_i = 3 r̂_i ⊗ r̂_i - I of eq. 7, r̂_i = (r_i - r̄)/|r_i - r̄| with r̄ the
    centroid of each molecule's positions (``origin="centroid"``) or its metal (``"metal"``,
    ``metals`` = (n_mol,) global atom indices); A_i = 0 for an atom within 1e-8 Å of r̄ (the
    metal itself).  Dimensionless."""
    if origin == "centroid":
        counts = torch.bincount(batch, minlength=n_mol).to(positions.dtype)
        centre = positions.new_zeros((n_mol, 3)).index_add_(0, batch, positions)
        centre = centre / counts.clamp_min(1.0)[:, None]
    elif origin == "metal":
        if metals is None:
            raise ValueError("origin 'metal' needs the metal indices (metals)")
        centre = positions.index_select(0, metals)
    else:
        raise ValueError(f"origin must be 'centroid' or 'metal', got {origin!r}")
    r = positions - centre.index_select(0, batch)
    d2 = (r * r).sum(-1)
    ok = d2 > _ORIGIN_EPS**2
    u = r / torch.sqrt(torch.where(ok, d2, torch.ones_like(d2)))[:, None]
    a = 3.0 * u[:, :, None] * u[:, None, :] - torch.eye(3, dtype=r.dtype, device=r.device)
    return a * ok.to(r.dtype)[:, None, None]


# --- data: frames, cached neighbour pairs, mini-batches -----------------------------------
@dataclass
class _Batch:
    """Molecules ``ids`` of a data set, reordered so that molecules with the same atoms are
    contiguous (dense blocks first, then the molecules of the sparse route)."""

    ids: Tensor          # (B,) frame indices in batch order
    positions: Tensor    # (N, 3) Å
    species: Tensor      # (N,)
    batch: Tensor        # (N,) molecule index 0..B-1
    atoms: Tensor        # (N,) global atom indices into the data set (for per-atom data)
    n_atoms: Tensor      # (B,)
    dense: list          # [(first atom, n molecules, n atoms, species (n,))]
    sparse: tuple | None  # (first atom, pairs (2, P) relative to it) or None

    @property
    def n_mol(self) -> int:
        return int(self.ids.shape[0])


@dataclass
class _Frames:
    """Molecules concatenated; composition keys for the dense route and cached neighbour
    pairs (local indices) for the molecules of the sparse route (more than
    :data:`DENSE_MAX_ATOMS` atoms)."""

    positions: Tensor
    species: Tensor
    n_atoms: Tensor
    atom_start: Tensor
    key: Tensor                           # (n,) composition id; -1: sparse route
    pair_i: Tensor
    pair_j: Tensor
    n_pairs: Tensor
    pair_start: Tensor
    metals: Tensor | None = None          # (n,) local metal index per frame
    extra: dict = field(default_factory=dict)  # per-atom arrays (global atom index)

    def __len__(self) -> int:
        return int(self.n_atoms.shape[0])

    def batch(self, ids: Tensor | np.ndarray | Sequence[int]) -> _Batch:
        ids = torch.as_tensor(np.asarray(ids), dtype=torch.long).reshape(-1)
        key = self.key[ids]
        order = torch.argsort(torch.where(key < 0, torch.full_like(key, 1 << 40), key),
                              stable=True)
        ids, key = ids[order], key[order]
        n_at = self.n_atoms[ids]
        new_start = torch.cumsum(n_at, 0) - n_at
        total = int(n_at.sum())
        atoms = (torch.repeat_interleave(self.atom_start[ids] - new_start, n_at)
                 + torch.arange(total))
        mol = torch.repeat_interleave(torch.arange(len(ids)), n_at)
        species = self.species[atoms]
        dense, sparse = [], None
        keys = key.tolist()
        k = 0
        while k < len(keys) and keys[k] >= 0:
            n = int(n_at[k])
            g_max = max(1, _DENSE_BLOCK_PAIRS // (n * n))
            e = k
            while e < len(keys) and keys[e] == keys[k] and e - k < g_max:
                e += 1
            a0 = int(new_start[k])
            dense.append((a0, e - k, n, species[a0:a0 + n]))
            k = e
        if k < len(keys):
            sp = ids[k:]
            n_p = self.n_pairs[sp]
            a0 = int(new_start[k])
            new_pstart = torch.cumsum(n_p, 0) - n_p
            pidx = (torch.repeat_interleave(self.pair_start[sp] - new_pstart, n_p)
                    + torch.arange(int(n_p.sum())))
            offset = torch.repeat_interleave(new_start[k:] - a0, n_p)
            sparse = (a0, torch.stack([self.pair_i[pidx] + offset, self.pair_j[pidx] + offset]))
        return _Batch(ids, self.positions[atoms], species, mol, atoms, n_at, dense, sparse)


def _prepare(frames: Sequence[Atoms], descriptor: GaussianMoments, *, need_metal: bool = False,
             chunk: int = 128) -> _Frames:
    """Concatenate ``frames``; group the small ones by their atoms (dense route) and search
    the neighbour pairs (r < r_cut) of the large ones once."""
    dtype = descriptor.dtype
    n_atoms = torch.tensor([len(a) for a in frames], dtype=torch.long)
    atom_start = torch.cumsum(n_atoms, 0) - n_atoms
    if frames:
        numbers = np.concatenate([a.numbers for a in frames])
        table = np.full(max(max(descriptor.atomic_numbers), int(numbers.max())) + 1, -1)
        table[list(descriptor.atomic_numbers)] = np.arange(descriptor.n_species)
        species = torch.as_tensor(table[numbers], dtype=torch.long)
        if bool((species < 0).any()):
            descriptor.species_index(numbers)  # raises, naming the unknown elements
        positions = torch.as_tensor(np.concatenate([a.positions for a in frames]),
                                    dtype=torch.float64)
    else:
        species = torch.zeros(0, dtype=torch.long)
        positions = torch.zeros((0, 3), dtype=torch.float64)
    keys: dict[bytes, int] = {}
    key = torch.tensor([keys.setdefault(a.numbers.tobytes(), len(keys))
                        if len(a) <= DENSE_MAX_ATOMS else -1 for a in frames],
                       dtype=torch.long)
    n_pairs = torch.zeros(len(frames), dtype=torch.long)
    pi, pj = [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
    big = torch.nonzero(key < 0).reshape(-1)
    for s in range(0, len(big), chunk):
        ids = big[s:s + chunk]
        sub = torch.cat([torch.arange(int(atom_start[f]), int(atom_start[f] + n_atoms[f]))
                         for f in ids.tolist()])
        mol = torch.repeat_interleave(torch.arange(len(ids)), n_atoms[ids])
        p = neighbour_pairs(positions[sub], descriptor.r_cut, batch=mol)
        local0 = (torch.cumsum(n_atoms[ids], 0) - n_atoms[ids])[mol[p.i]]
        pi.append(p.i - local0)
        pj.append(p.j - local0)
        n_pairs[ids] = torch.bincount(mol[p.i], minlength=len(ids))
    pair_start = torch.cumsum(n_pairs, 0) - n_pairs
    metals = torch.tensor([metal_index(a) for a in frames], dtype=torch.long) \
        if need_metal else None
    return _Frames(positions.to(dtype), species, n_atoms, atom_start, key, torch.cat(pi),
                   torch.cat(pj), n_pairs, pair_start, metals, {"positions64": positions})


# --- shared member machinery ---------------------------------------------------------------
class _GMNNMember(ABC):
    """Shared construction, training loop, checkpoints and state of the GM-NN members."""

    kind: ClassVar[str]
    target: ClassVar[str]
    descriptor_type: ClassVar[str] = "gaussian-moments"
    #: values of hyperparameters added after model files were first written, for files that
    #: lack them (so an old file means what it meant when it was written, whatever the
    #: defaults are now)
    _LEGACY: ClassVar[dict[str, Any]] = {}

    def __init__(self, descriptor: Mapping[str, Any], *, seed: int = 0, **hyper) -> None:
        # the kind's settings model (molmag.models.hyperparameters) checks, coerces and
        # completes the hyperparameters: one place for names, types, ranges and defaults
        h = check_hyperparameters(self.kind, hyper, complete=True)
        self.hyper = h
        self.seed = int(seed)
        self.input_settings = dict(descriptor)
        self.settings = self._effective_settings(descriptor)
        self.net = GMNNNetwork(self.settings, h["hidden"], self.seed)
        self.dtype = self.net.descriptor.dtype
        self.species = list(self.net.descriptor.atomic_numbers)
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.train_seconds = 0.0
        self.fitted = False
        self.init_norm: dict[str, Any] = {}

    # -- hooks: each kind implements them; the training loop calls them ---------------------
    @abstractmethod
    def _targets(self, frames: Sequence[Atoms], targets: Mapping[str, Any] | None) -> dict:
        """The training targets of ``frames`` as tensors (checked against the frames)."""
        ...

    @abstractmethod
    def _prepare_data(self, frames: Sequence[Atoms]) -> _Frames:
        """The frames as the member's training/prediction data."""
        ...

    @abstractmethod
    def _init_normalisation(self, data: _Frames, y: dict) -> None:
        """Initial per-species scale and shift from the training data."""
        ...

    @abstractmethod
    def _loss(self, data: _Frames, y: dict, ids: np.ndarray) -> Tensor:
        """The training loss of the mini-batch ``ids``."""
        ...

    @abstractmethod
    def _validate(self, data: _Frames, y: dict) -> tuple[float, dict]:
        """(early-stopping metric, validation errors for the history)."""
        ...

    @staticmethod
    @abstractmethod
    def _log_line(r: dict) -> str:
        """One log line for an epoch's history record."""
        ...

    @classmethod
    def _effective_settings(cls, descriptor: Mapping[str, Any]) -> dict:
        return GaussianMoments.from_settings(dict(descriptor)).settings()

    def _param_groups(self) -> list[dict]:
        n = self.net
        h = self.hyper
        return [
            {"params": list(n.mlp.parameters()), "lr": h["lr_nn"], "name": "nn"},
            {"params": list(n.descriptor.parameters()), "lr": h["lr_descriptor"],
             "name": "descriptor"},
            {"params": [n.scale_shift.shift], "lr": h["lr_shift"], "name": "shift"},
            {"params": [n.scale_shift.scale], "lr": h["lr_scale"], "name": "scale"},
        ]

    # -- training --------------------------------------------------------------------------
    def fit(self, frames: Sequence[Atoms], targets: Mapping[str, Any],
            val_frames: Sequence[Atoms] = (), val_targets: Mapping[str, Any] | None = None,
            log: Log | None = None):
        """Train on ``frames`` (see the module docstring); returns ``self``."""
        t_start = time.perf_counter()
        frames, val_frames = list(frames), list(val_frames)
        if not frames:
            raise ValueError("no training structures")
        check_species(frames, self.species, self.kind)
        if val_frames:
            if val_targets is None:
                raise ValueError("validation structures need val_targets")
            check_species(val_frames, self.species, self.kind)
        y = self._targets(frames, targets)
        train = self._prepare_data(frames)
        val = self._prepare_data(val_frames) if val_frames else None
        y_val = self._targets(val_frames, val_targets) if val_frames else None
        self._init_normalisation(train, y)

        h = self.hyper
        groups = self._param_groups()
        wd = h["weight_decay"]
        if wd > 0:   # decoupled decay of the network weights only (not the radial
            for g in groups:   # coefficients, scale or shift)
                g["weight_decay"] = wd if g["name"] == "nn" else 0.0
            opt: torch.optim.Optimizer = torch.optim.AdamW(groups, betas=h["betas"],
                                                           eps=h["eps"])
        else:
            opt = torch.optim.Adam(groups, betas=h["betas"], eps=h["eps"])
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
        n = len(frames)
        steps = math.ceil(n / h["batch_size"])
        max_step = h["max_epochs"] * steps
        best_state = None
        best_metric = math.inf
        start = 0
        self.history, self.best_epoch = [], None
        ckpt = Path(h["checkpoint"]) if h["checkpoint"] else None
        fingerprint = self._fingerprint(y, y_val, n, len(val_frames))
        if ckpt is not None and ckpt.exists():
            c = torch.load(ckpt, weights_only=True)
            if c.get("format") != _CHECKPOINT_FORMAT or c.get("fingerprint") != fingerprint:
                raise ValueError(f"{ckpt}: a checkpoint of another training run (other model, "
                                 "hyperparameters, seed or data); delete it or choose another "
                                 "checkpoint path")
            self.net.load_state_dict(c["model"])
            opt.load_state_dict(c["optimizer"])
            start = int(c["epoch"])
            best_metric = float(c["best_metric"])
            best_state = c["best_state"]
            self.best_epoch = c["best_epoch"] if c["best_epoch"] >= 0 else None
            self.history = list(c["history"])
            self.train_seconds = float(c["train_seconds"])
            t_start -= self.train_seconds
        since_best = 0 if self.best_epoch is None else start - self.best_epoch
        for epoch in range(start + 1, h["max_epochs"] + 1):
            perm = np.random.default_rng([self.seed, epoch]).permutation(n)
            self.net.train()
            total, count = 0.0, 0
            for b in range(steps):
                step = (epoch - 1) * steps + b
                factor = max(0.0, 1.0 - step / max_step)
                for g in opt.param_groups:
                    g["lr"] = g["initial_lr"] * factor
                ids = perm[b * h["batch_size"]:(b + 1) * h["batch_size"]]
                loss = self._loss(train, y, ids)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(ids)
                count += len(ids)
            train_loss = total / count
            self.net.eval()
            record = {"epoch": epoch, "train_loss": train_loss}
            if val is not None:
                assert y_val is not None   # built with val
                metric, errors = self._validate(val, y_val)
                record.update(errors)
                record["val_metric"] = metric
                if metric < best_metric:
                    best_metric, self.best_epoch, since_best = metric, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in
                                  self.net.state_dict().items()}
                else:
                    since_best += 1
            self.history.append(record)
            self.train_seconds = time.perf_counter() - t_start
            if ckpt is not None:
                self._save_checkpoint(ckpt, fingerprint, epoch, opt, best_state, best_metric)
            if log is not None:
                log(self._log_line(record))
            if h["patience"] is not None and val is not None and since_best >= h["patience"]:
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        self.fitted = True
        self.train_seconds = time.perf_counter() - t_start
        return self

    def _save_checkpoint(self, path: Path, fingerprint: dict, epoch: int, opt, best_state,
                         best_metric: float) -> None:
        c = {"format": _CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": epoch,
             "model": self.net.state_dict(), "optimizer": opt.state_dict(),
             "best_state": best_state, "best_metric": best_metric,
             "best_epoch": -1 if self.best_epoch is None else self.best_epoch,
             "history": self.history, "train_seconds": self.train_seconds}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(c, tmp)
        os.replace(tmp, path)

    def _fingerprint(self, y: dict, y_val: dict | None, n: int, n_val: int) -> dict:
        digest = hashlib.sha256()
        for part in (y, y_val or {}):
            for k in sorted(part):
                v = part[k]
                for t in (v if isinstance(v, list) else [v]):
                    if t is not None:
                        digest.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hyper.items()
                 if k not in ("checkpoint", "predict_batch")
                 and not (k in ("e_weight", "weight_decay") and v == 0)}  # older checkpoints
        return {"kind": self.kind, "seed": self.seed, "hyper": repr(sorted(hyper.items())),
                "settings": repr(sorted(self.settings.items())), "n_train": n, "n_val": n_val,
                "targets": digest.hexdigest()}

    def _chunks(self, n: int):
        b = self.hyper["predict_batch"]
        for s in range(0, n, b):
            yield np.arange(s, min(s + b, n))

    # -- state ---------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON meta (kind, seed, hyperparameters, descriptor settings, species, initial
        normalisation, training history) and the state_dict as numpy arrays."""
        hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hyper.items()}
        meta = {"kind": self.kind, "target": self.target, "descriptor_type":
                self.descriptor_type, "seed": self.seed, "hyper": hyper,
                "descriptor": self.settings, "species": self.species, "fitted": self.fitted,
                "initial_normalisation": self.init_norm, "best_epoch": self.best_epoch,
                "train_seconds": self.train_seconds, "history": self.history}
        arrays = {k: v.detach().cpu().numpy().copy() for k, v in self.net.state_dict().items()}
        return meta, arrays

    @classmethod
    def from_state(cls, descriptor: Mapping[str, Any] | None, meta: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]):
        """Rebuild a member from :meth:`state`.  ``descriptor`` (the settings dict, or None)
        must give the same effective Gaussian-moment settings as the stored ones."""
        if meta.get("kind") != cls.kind:
            raise ValueError(f"state of a {meta.get('kind')!r} model, not {cls.kind!r}")
        stored = dict(meta["descriptor"])
        if descriptor is not None:
            given = cls._effective_settings(descriptor)
            if given != stored:
                diff = sorted(k for k in set(given) | set(stored)
                              if given.get(k) != stored.get(k))
                raise ValueError(f"descriptor settings differ from the model's "
                                 f"({', '.join(diff)}); a model only works with the "
                                 "descriptor it was trained with")
        m = cls(stored, seed=meta["seed"], **{**cls._LEGACY, **meta["hyper"]})
        m.net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()})
        m.net.eval()
        m.fitted = bool(meta.get("fitted", True))
        m.init_norm = dict(meta.get("initial_normalisation", {}))
        m.best_epoch = meta.get("best_epoch")
        m.train_seconds = float(meta.get("train_seconds", 0.0))
        m.history = list(meta.get("history", []))
        return m

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ValueError(f"the {self.kind} model is not trained")


# --- D tensor -----------------------------------------------------------------------------
class GMNNTensor(_GMNNMember):
    """GM-NN model of the ZFS D tensor (cm-1), eqs. 7-11 of Zaverkin et al. 2022.

    ``descriptor``: settings dict for :meth:`GaussianMoments.from_settings` (``species``
    required; defaults: 5 radial functions -> 360 features, r_cut 8.0 Å as in the paper).

    Hyperparameters (defaults; source):

    ==================  =========================  ==============================================
    hidden              (512, 512)                 paper 2.2.2 (d1 = d2 = 512)
    batch_size          32                         paper 2.2.2
    max_epochs          80                         ours (paper: 1000 on a GPU); 3-5 min for
                                                   900 [Co(pdms)2]2- structures, 2 CPU cores
    lr_nn               0.02                       paper 2.2.2 (fully connected layers)
    lr_descriptor       0.02                       paper 2.2.2 (trainable GM representation)
    lr_shift, lr_scale  0.025, 0.025               paper 2.2.2
    betas, eps          (0.9, 0.999), 1e-7         paper 2.2.2 (Adam)
    origin              "centroid"                 paper eq. 7 (or "metal")
    scale_shift_init    "lstsq"                    ours (or "paper"; module docstring)
    env_cutoff          None                       ours (Å; needs origin "metal"): only atoms
                                                   within it contribute to eq. 7, weighted by
                                                   f_c(r_iM) = [1 + cos(pi r_iM / r_c)] / 2
                                                   (smooth), their moments from all neighbours;
                                                   D summed in float64.  None: every atom
    e_weight            0.0                        ours: adds e_weight (sum_e c_e R_e)^2 to the
                                                   loss of eq. 10, the first-order error of E
                                                   (:func:`rhombic_directions`); 0: the paper
    weight_decay        0.0                        ours: decoupled weight decay of the network
                                                   weights (AdamW, Loshchilov & Hutter 2019);
                                                   0: Adam, the paper
    patience            None                       paper: best of all epochs
    checkpoint          None                       path: save every epoch, resume if present
    predict_batch       256                        structures per chunk in ``predict``
    ==================  =========================  ==============================================

    ``molmag template train --model gmnn-tensor`` ships origin "metal", env_cutoff 3.6 Å (the
    donors and their substituents of [Co(pdms)2]2-), r_cut 5.0 Å, hidden (128, 128), 200
    epochs and e_weight 50: measured in ``benchmarks/models.py`` (DEVELOPERS.md) against the
    paper's settings.  E = (X - Y)/2 is a small difference of two eigenvalues; with the
    paper's loss a network whose D_ij error exceeds the spread of E predicts E worse than the
    mean tensor does (one member, 900 [Co(pdms)2]2- structures: test E RMSE 0.74 cm-1 against
    0.32), with e_weight 50 0.25 (D_ij 0.88 -> 0.97 cm-1).
    Model files written before ``env_cutoff`` existed load with ``env_cutoff=None``.
    """

    kind = "gmnn-tensor"
    target = "zfs_tensor"
    _LEGACY = {"env_cutoff": None, "e_weight": 0.0}


    @property
    def origin(self) -> str:
        return self.hyper["origin"]

    def _targets(self, frames, targets) -> dict:
        if targets is None or "zfs_tensor" not in targets:
            raise ValueError("targets need 'zfs_tensor' ((n, 3, 3), cm-1)")
        t = np.asarray(targets["zfs_tensor"], dtype=float)
        if t.shape != (len(frames), 3, 3):
            raise ValueError(f"zfs_tensor must have shape ({len(frames)}, 3, 3), got {t.shape}")
        t = 0.5 * (t + np.swapaxes(t, 1, 2))
        y = {"zfs_tensor": torch.as_tensor(t.reshape(-1, 9)[:, _LOWER], dtype=self.dtype)}
        if self.hyper["e_weight"] > 0:
            y["e_direction"] = torch.as_tensor(rhombic_directions(t), dtype=self.dtype)
        return y

    def _dyads(self, positions64: Tensor, batch: Tensor, n_mol: int, metals: Tensor | None,
               starts: Tensor) -> Tensor:
        glob = None if metals is None else metals + starts
        a = traceless_dyads(positions64, batch, n_mol, self.origin, glob)
        return a.reshape(-1, 9).to(self.dtype)

    def _prepare_data(self, frames) -> _Frames:
        data = _prepare(frames, self.net.descriptor, need_metal=self.origin == "metal")
        mol = torch.repeat_interleave(torch.arange(len(data)), data.n_atoms)
        data.extra["dyads"] = self._dyads(data.extra["positions64"], mol, len(data),
                                          data.metals, data.atom_start)
        rc = self.hyper["env_cutoff"]
        if rc is not None:
            pos = data.extra["positions64"]
            # env_cutoff needs origin "metal" (checked with the hyperparameters)
            assert data.metals is not None
            glob = data.metals + data.atom_start
            r = torch.linalg.norm(pos - pos.index_select(0, glob).index_select(0, mol), dim=1)
            w = torch.where(r < rc, 0.5 * (torch.cos(math.pi * r / rc) + 1.0),
                            torch.zeros_like(r))
            w[glob] = 0.0
            data.extra["env_weight"] = w
            data.extra["dyads64"] = traceless_dyads(pos, mol, len(data), "metal", glob
                                                    ).reshape(-1, 9)
            centres = {}
            for k in torch.unique(data.key[data.key >= 0]).tolist():
                ids = torch.nonzero(data.key == k).reshape(-1)
                n = int(data.n_atoms[ids[0]])
                at = (data.atom_start[ids][:, None] + torch.arange(n)[None]).reshape(-1)
                inside = (w[at].reshape(len(ids), n) > 0).any(dim=0)
                centres[k] = torch.nonzero(inside).reshape(-1)
            data.extra["centres"] = centres
        return data

    def _tensor6(self, data: _Frames, ids) -> tuple[Tensor, _Batch]:
        """(B, 6) predicted (D11, D21, D31, D22, D32, -(D11 + D22)), cm-1, for the molecules
        ``b.ids`` of the returned batch (``ids`` reordered)."""
        b = data.batch(ids)
        if self.hyper["env_cutoff"] is not None:
            d = self._env_sum(data, b)
        else:
            m = self.net.atomic(b, b.positions)
            a = data.extra["dyads"].index_select(0, b.atoms)
            d = m.new_zeros((b.n_mol, 9)).index_add_(0, b.batch, m[:, None] * a)
        d6 = d[:, _LOWER]
        return torch.cat([d6[:, :5], -(d6[:, :1] + d6[:, 3:4])], dim=1), b

    def _env_sum(self, data: _Frames, b: _Batch) -> Tensor:
        """(B, 9) D = sum_i f_c(|r_i - r_M|) m_i A_i over the atoms within ``env_cutoff`` of
        the metal (eq. 7 with a smooth metal-centred cutoff), accumulated in float64: only
        those atoms' Gaussian moments and networks are evaluated."""
        net = self.net
        feats, idx = [], []
        for a0, g, n, spc in b.dense:
            key = int(data.key[b.ids[int(b.batch[a0])]])
            c = data.extra["centres"][key]
            pos = b.positions[a0:a0 + g * n].reshape(g, n, 3)
            feats.append(dense_gaussian_moments(net.descriptor, pos, spc, c))
            idx.append((a0 + torch.arange(g)[:, None] * n + c[None, :]).reshape(-1))
        if b.sparse is not None:
            a0, pairs = b.sparse
            feats.append(net.descriptor(b.positions[a0:], b.species[a0:], pairs))
            idx.append(torch.arange(a0, int(b.species.shape[0])))
        at = torch.cat(idx)
        g = torch.cat(feats) if len(feats) > 1 else feats[0]
        m = net.scale_shift(net.mlp(g), b.species.index_select(0, at)).double()
        glob = b.atoms.index_select(0, at)
        w = data.extra["env_weight"].index_select(0, glob)
        a = data.extra["dyads64"].index_select(0, glob)
        return a.new_zeros((b.n_mol, 9)).index_add_(0, b.batch.index_select(0, at),
                                                     (m * w)[:, None] * a)

    def _loss(self, data: _Frames, y: dict, ids) -> Tensor:
        d6, b = self._tensor6(data, ids)
        res = d6 - y["zfs_tensor"][b.ids]
        loss = (res**2).sum(1)
        if "e_direction" in y:   # first-order error of E (rhombic_directions)
            loss = loss + self.hyper["e_weight"] * (res * y["e_direction"][b.ids]).sum(1) ** 2
        return loss.mean()

    def _validate(self, data: _Frames, y: dict) -> tuple[float, dict]:
        err = 0.0
        with torch.no_grad():
            for ids in self._chunks(len(data)):
                d6, b = self._tensor6(data, ids)
                err += float((d6 - y["zfs_tensor"][b.ids]).abs().sum())
        mae = err / (6 * len(data))
        return mae, {"val_mae_zfs_tensor": mae}

    @staticmethod
    def _log_line(r: dict) -> str:
        s = f"epoch {r['epoch']:4d}  train loss {r['train_loss']:.5g} (cm-1)^2"
        if "val_metric" in r:
            s += f"  val MAE D_ij {r['val_mae_zfs_tensor']:.4g} cm-1"
        return s

    def _init_normalisation(self, data: _Frames, y: dict) -> None:
        ref = y["zfs_tensor"].double()  # (n, 6)
        n_s = len(self.species)
        if self.hyper["scale_shift_init"] == "paper":
            five = ref[:, :5]
            scale = torch.full((n_s,), float(five.std()), dtype=torch.float64)
            shift = torch.full((n_s,), float(five.mean()), dtype=torch.float64)
        else:
            mol = torch.repeat_interleave(torch.arange(len(data)), data.n_atoms)
            a6 = data.extra["dyads"].double()[:, _LOWER]   # (N, 6); traceless: a6[5] = -a11-a22
            if "env_weight" in data.extra:   # metal-centred environment: f_c(r_iM) A_i
                a6 = (data.extra["dyads64"] * data.extra["env_weight"][:, None])[:, _LOWER]
            onehot = torch.nn.functional.one_hot(data.species, n_s).double()  # (N, S)
            x = torch.zeros((len(data), 6, n_s), dtype=torch.float64)
            x.index_add_(0, mol, a6[:, :, None] * onehot[:, None, :])
            sol = np.linalg.lstsq(x.reshape(-1, n_s).numpy(), ref.reshape(-1).numpy(),
                                  rcond=None)[0]
            shift = torch.as_tensor(sol)
            res = ref - torch.einsum("kes,s->ke", x, shift)
            denom = float((a6**2).sum())
            var = float((res**2).sum()) / denom if denom > 0 else 1.0
            scale = torch.full((n_s,), math.sqrt(var) if var > 0 else 1.0, dtype=torch.float64)
        with torch.no_grad():
            self.net.scale_shift.scale.copy_(scale.to(self.dtype))
            self.net.scale_shift.shift.copy_(shift.to(self.dtype))
        self.init_norm = {"method": self.hyper["scale_shift_init"], "unit": "cm-1",
                          "scale": scale.tolist(), "shift": shift.tolist()}

    def predict(self, frames: Sequence[Atoms], forces: bool = False) -> dict[str, np.ndarray]:
        """{"zfs_tensor": (n, 3, 3) cm-1}: symmetric, traceless D tensors (eq. 7); no forces
        (``forces=True`` is refused)."""
        return self.committee_predict([self], frames, forces)[0]

    def _shares_data_with(self, other: GMNNTensor) -> bool:
        """Whether ``other`` prepares the same frames into the same data (descriptor
        settings, origin, environment cutoff and prediction chunks: none of them trained)."""
        keys = ("origin", "env_cutoff", "predict_batch")
        return (self.settings == other.settings
                and all(self.hyper[k] == other.hyper[k] for k in keys))

    @classmethod
    def committee_predict(cls, members: Sequence[GMNNTensor], frames: Sequence[Atoms],
                          forces: bool = False) -> list[dict[str, np.ndarray]]:
        """Every member's :meth:`predict` of ``frames``, batched: each chunk of
        ``predict_batch`` structures is prepared once (composition groups, dyads of eq. 7,
        environment weights) for all members with the same untrained settings, and the
        geometry of the Gaussian moments is shared through their inference cache; only the
        trained parts (radial coefficients, networks, scale and shift) run per member."""
        members = list(members)
        if not members:
            raise ValueError("no members")
        for m in members:
            refuse_forces(m, forces)
            m._check_fitted()
        frames = list(frames)
        check_species(frames, members[0].species, cls.kind)
        groups: list[list[int]] = []
        for k, m in enumerate(members):
            for g in groups:
                if members[g[0]]._shares_data_with(m):
                    g.append(k)
                    break
            else:
                groups.append([k])
        outs = [np.zeros((len(frames), 3, 3)) for _ in members]
        with torch.inference_mode():
            for g in groups:
                lead = members[g[0]]
                for ids in lead._chunks(len(frames)):
                    sub = [frames[i] for i in ids]
                    data = lead._prepare_data(sub)
                    for k in g:
                        m = members[k]
                        m.net.eval()
                        d6, b = m._tensor6(data, np.arange(len(sub)))
                        d6n = d6.double().numpy()
                        t = np.zeros((len(sub), 9))
                        t[:, _LOWER] = d6n
                        t[:, [1, 2, 5]] = d6n[:, [1, 2, 4]]
                        outs[k][ids[b.ids.numpy()]] = t.reshape(-1, 3, 3)
        return [{"zfs_tensor": out} for out in outs]


# --- energy and forces --------------------------------------------------------------------
class GMNNEnergy(_GMNNMember):
    """GM-NN interatomic potential: energies (eV) and forces (eV/Å), section 2.3 of
    Zaverkin et al. 2022 (eq. 1, eq. 13).

    ``descriptor``: settings dict for :meth:`GaussianMoments.from_settings`; r_cut defaults
    to 6.5 Å (the paper's potentials) when the dict does not set it.

    Hyperparameters (defaults; source):

    ==================  =========================  ==============================================
    hidden              (512, 512)                 paper 2.3
    batch_size          32                         paper 2.3
    max_epochs          35                         ours (paper: 1000 on a GPU); 3-4.5 min for
                                                   900 [Co(pdms)2]2- structures, 2 CPU cores
    lr_nn               0.03                       paper 2.3 (fully connected layers)
    lr_descriptor       0.02                       paper 2.3 (trainable representation)
    lr_shift, lr_scale  0.05, 0.001                paper 2.3
    betas, eps          (0.9, 0.999), 1e-7         paper 2.2.2 (Adam; 2.3 refers to it)
    energy_weight       1.0                        paper eq. 13: lambda_E = 1 au
    force_weight        12.0                       paper eq. 13: lambda_F = 12 N_at au Å^2
    stop_on             "sum"                      ours: val MAE_E (eV) + MAE_F (eV/Å)
    weight_decay        0.0                        ours: decoupled weight decay of the network
                                                   weights (AdamW, Loshchilov & Hutter 2019);
                                                   0: Adam, the paper
    patience            None                       paper: best of all epochs
    checkpoint          None                       path: save every epoch, resume if present
    predict_batch       256                        structures per chunk in ``predict``
    ==================  =========================  ==============================================
    """

    kind = "gmnn-energy"
    target = "energy"

    def __init__(self, descriptor: Mapping[str, Any], *, seed: int = 0, **hyper) -> None:
        super().__init__(descriptor, seed=seed, **hyper)
        # fixed float64 part b_Z of the shift mu_Z (eV), from the element-count regression
        self.net.register_buffer("energy_baseline",
                                 torch.zeros(len(self.species), dtype=torch.float64))

    @property
    def _baseline(self) -> Tensor:
        """The fixed float64 part b_Z of the shift mu_Z (eV; the net's buffer)."""
        base = self.net.energy_baseline
        assert isinstance(base, Tensor)
        return base

    @classmethod
    def _effective_settings(cls, descriptor: Mapping[str, Any]) -> dict:
        d = dict(descriptor)
        d.setdefault("r_cut", ENERGY_R_CUT)
        return GaussianMoments.from_settings(d).settings()


    def _targets(self, frames, targets) -> dict:
        if targets is None or "energy" not in targets:
            raise ValueError("targets need 'energy' ((n,), eV) and optionally 'forces'")
        e = np.asarray(targets["energy"], dtype=float).reshape(-1)
        if e.shape != (len(frames),):
            raise ValueError(f"energy must have shape ({len(frames)},), got {e.shape}")
        forces = targets.get("forces")
        if forces is None:
            forces = [None] * len(frames)
        if len(forces) != len(frames):
            raise ValueError(f"{len(forces)} force arrays for {len(frames)} structures")
        f_all, has = [], []
        for k, (a, f) in enumerate(zip(frames, forces)):
            if f is None:
                f_all.append(np.zeros((len(a), 3)))
                has.append(False)
                continue
            f = np.asarray(f, dtype=float)
            if f.shape != (len(a), 3):
                raise ValueError(f"forces of structure {k} must have shape ({len(a)}, 3), "
                                 f"got {f.shape}")
            f_all.append(f)
            has.append(True)
        return {"energy": torch.as_tensor(e), "counts": self._counts(frames),
                "forces": torch.as_tensor(np.concatenate(f_all), dtype=self.dtype),
                "has_forces": torch.as_tensor(has)}

    def _counts(self, frames) -> Tensor:
        z = {zz: k for k, zz in enumerate(self.species)}
        c = np.zeros((len(frames), len(self.species)))
        for k, a in enumerate(frames):
            for zz, n in zip(*np.unique(a.numbers, return_counts=True)):
                c[k, z[int(zz)]] = n
        return torch.as_tensor(c)

    def _prepare_data(self, frames) -> _Frames:
        return _prepare(frames, self.net.descriptor)

    def _init_normalisation(self, data: _Frames, y: dict) -> None:
        counts, e = y["counts"].numpy(), y["energy"].numpy()
        base = np.linalg.lstsq(counts, e, rcond=None)[0]
        res = e - counts @ base
        n_mean = float(data.n_atoms.double().mean())
        f, has = y["forces"].double(), y["has_forces"]
        atom_has = torch.repeat_interleave(has, data.n_atoms)
        if bool(has.any()):
            scale = float(torch.sqrt((f[atom_has] ** 2).mean()))
            how = "RMS of the force components"
        else:
            scale = float(res.std()) / math.sqrt(n_mean) if len(res) > 1 else 0.0
            how = "energy residual std / sqrt(mean N)"
        if not scale > 0:
            scale = 1.0
        with torch.no_grad():
            self._baseline.copy_(torch.as_tensor(base))
            self.net.scale_shift.scale.fill_(scale)
            self.net.scale_shift.shift.zero_()
        self.init_norm = {"unit": "eV", "baseline": base.tolist(), "scale": scale,
                          "scale_from": how,
                          "baseline_from": "least squares of E on element counts"}

    def _energy_forces(self, data: _Frames, ids, create_graph: bool, need_forces: bool = True
                       ) -> tuple[Tensor, Tensor | None, _Batch]:
        """Residual energies (B,) (E minus the float64 baseline, eV) and forces (N, 3) eV/Å."""
        b = data.batch(ids)
        pos = b.positions.detach().requires_grad_(need_forces)
        m = self.net.atomic(b, pos)
        e = m.new_zeros(b.n_mol).index_add_(0, b.batch, m)
        if not need_forces:
            return e, None, b
        (grad,) = torch.autograd.grad(e.sum(), pos, create_graph=create_graph)
        return e, -grad, b

    def _residual_ref(self, y: dict, ids) -> Tensor:
        ids = torch.as_tensor(ids)
        base = y["counts"][ids] @ self._baseline
        return (y["energy"][ids] - base).to(self.dtype)

    def _loss(self, data: _Frames, y: dict, ids) -> Tensor:
        h = self.hyper
        use_f = h["force_weight"] > 0 and bool(y["has_forces"][torch.as_tensor(ids)].any())
        e, f, b = self._energy_forces(data, ids, create_graph=True, need_forces=use_f)
        has = y["has_forces"][b.ids]
        de = (e - self._residual_ref(y, b.ids)) / Hartree
        loss = h["energy_weight"] * de**2
        if use_f:
            assert f is not None   # asked for with need_forces
            df = (f - y["forces"].index_select(0, b.atoms)) / Hartree
            per_mol = e.new_zeros(b.n_mol).index_add_(0, b.batch, (df**2).sum(1))
            # lambda_F,k / (3 N_k) * sum_i |dF_i|^2 with lambda_F,k = force_weight * N_k
            loss = loss + has.to(e.dtype) * (h["force_weight"] / 3.0) * per_mol
        return loss.mean()

    def _validate(self, data: _Frames, y: dict) -> tuple[float, dict]:
        e_err, f_err, n_f = 0.0, 0.0, 0
        for ids in self._chunks(len(data)):
            e, f, b = self._energy_forces(data, ids, create_graph=False)
            assert f is not None   # need_forces (the default)
            e_err += float((e.detach() - self._residual_ref(y, b.ids)).abs().sum())
            has = torch.repeat_interleave(y["has_forces"][b.ids], b.n_atoms)
            df = (f.detach() - y["forces"].index_select(0, b.atoms))[has]
            f_err += float(df.abs().sum())
            n_f += df.numel()
        mae_e = e_err / len(data)
        mae_f = f_err / n_f if n_f else None
        stop = self.hyper["stop_on"]
        if mae_f is None or stop == "energy":
            metric = mae_e
        elif stop == "forces":
            metric = mae_f
        else:
            metric = mae_e + mae_f
        return metric, {"val_mae_energy": mae_e, "val_mae_forces": mae_f}

    @staticmethod
    def _log_line(r: dict) -> str:
        s = f"epoch {r['epoch']:4d}  train loss {r['train_loss']:.5g} au"
        if "val_metric" in r:
            s += f"  val MAE E {r['val_mae_energy']:.4g} eV"
            if r["val_mae_forces"] is not None:
                s += f"  F {r['val_mae_forces']:.4g} eV/Å"
        return s

    def predict(self, frames: Sequence[Atoms], forces: bool = True) -> dict[str, Any]:
        """{"energy": (n,) eV, "forces": list of (N_i, 3) eV/Å}; F = -dE/dr (autograd).
        ``forces=False``: no "forces" key (they are still computed on the way)."""
        self._check_fitted()
        frames = list(frames)
        check_species(frames, self.species, self.kind)
        energies = np.zeros(len(frames))
        f_out: list[np.ndarray] = [np.zeros((0, 3))] * len(frames)
        self.net.eval()
        base = self._baseline.numpy()
        for ids in self._chunks(len(frames)):
            sub = [frames[i] for i in ids]
            data = self._prepare_data(sub)
            e, f, b = self._energy_forces(data, np.arange(len(sub)), create_graph=False)
            assert f is not None   # need_forces (the default)
            order = b.ids.numpy()
            energies[ids[order]] = (e.detach().double().numpy()
                                    + self._counts(sub).numpy()[order] @ base)
            fn = f.detach().double().numpy()
            s = 0
            for k, n in zip(order.tolist(), b.n_atoms.tolist()):
                f_out[ids[k]] = fn[s:s + n].copy()
                s += n
        return {"energy": energies, "forces": f_out} if forces else {"energy": energies}
