"""Covariant bispectrum ridge regression of a rank-2 tensor (Lunghi & Sanvito, Sci. Adv. 2020).

Eqs. 4-5 of the paper: the spherical components of the tensor of a structure are

    T^m = sum_m' W^m_m'(l, l0) sum_i sum_j alpha_j^m'(i) B_j(i),

with B_j(i) the bispectrum components of atom i (rotation invariant), alpha the ridge
coefficients learnt in the orientation of a reference environment l0, and W the Wigner matrix of
the rotation that takes the reference environment of the magnetic atom l onto the structure's.
As in the SI: the sum runs over the atoms within ``env_cutoff`` of the metal (3.5 Å for
[Co(pdms)2]2-) in the reference (in another structure: as many atoms of each element, nearest
to the metal first), with one coefficient vector alpha(i) per atom i of the reference
environment, as eq. 4 writes it; the rotation comes from the Eckart conditions (mass-weighted
Kabsch over those atoms, matched element by element to the reference so that the atom order of
a structure does not matter: :func:`eckart_match`); the reference l0 of a structure is the one
minimising d(l, l0) = sum_j |B_j(l) - B_j(l0)|^2 among references with the same atoms; the ridge
regularisation lambda is chosen on a validation set (the paper), or, molmag's default
``lambda_selection="loo"``, by the leave-one-out RMSE of the training structures
(:mod:`molmag.models.ridge`), which on 100-200 structures is much steadier than a validation
split of 10-20.

Implementation: with R the Eckart rotation that brings the structure onto the reference, the
targets of the training structures are rotated into the reference frame, D_ref = R D R^T,
their l = 2 (real spherical components) and l = 0 (trace/3) parts are fitted by ridge on the
features, and a prediction is rotated back with the Wigner matrix W(R^T): T(D) = W(R^T) T(D_ref),
which is eq. 5.  Because B is invariant and the Eckart rotation is equivariant, predicting on a
rotated structure gives R D R^T exactly (to rounding).

Features (``features``):

* ``"donors"`` (molmag's default): the reference environment l0 is the metal and its donor
  atoms (:func:`molmag.physics.ligand_field.find_donors`: bonded, H excluded), so the Eckart
  frame follows the coordination sphere that sets D, and the invariant features are, in that
  frame, per donor k (reference order): the unit bond vector u_k = (r_k - r_M)/|r_k - r_M|,
  1/|r_k - r_M| (1/Angstrom) and the unit normal of the plane of the donor's two nearest
  substituents n_k = (r_a - r_k) x (r_b - r_k)/|...| (the direction of the one substituent
  of a donor with one; zeros for a donor with none) -- the quantities that set the angular
  overlap of each donor -- expanded in all monomials up to ``degree`` of their deviations from
  the training mean (7 n_donors + 1 choose degree, minus 1, columns; 434 for four donors at
  degree 2, 4494 at degree 3).  The Eckart match runs over the metal, the donors and their
  substituents together (element by element Hungarian matching, so independent of the atom
  order): with the donors alone, a near-symmetric donor set (the pseudo-tetrahedral N4 of
  [Co(pdms)2]2-) let a permuted match win for an occasional structure; the rotation R is then
  the mass-weighted Kabsch rotation of the metal and the matched donors alone.  On
  [Co(pdms)2]2- (LF labels, 900 training structures) this brings RMSE(D_ij) from 1.04
  (bispectrum, the paper's setting) to 0.26 cm-1 (degree 3; ``benchmarks/models.py``).
* ``"bispectrum"``: the paper's eq. 4, as described above (model files written before
  ``features`` existed load with this).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_masses

from molmag.models.base import check_species, metal_index, refuse_forces
from molmag.models.ridge import DEFAULT_LAMBDAS, SELECTIONS, RidgeFit, fit_ridge
from molmag.physics.elements import bonded_neighbours
from molmag.physics.tensors import cartesian_from_real_spherical, real_spherical_from_cartesian


@dataclass
class ReferenceEnvironment:
    """A reference orientation l0: the structure's atoms (order matters), its metal, the atoms
    of the metal's environment, and the metal's bispectrum."""

    numbers: np.ndarray
    positions: np.ndarray
    metal: int
    env: np.ndarray
    b_metal: np.ndarray
    #: features="donors": (n_env - 1, 2) substituent atoms of each donor (env order, -1: none)
    subs: np.ndarray | None = None
    #: features="donors": (F,) mean of the geometric features over the training structures
    centre: np.ndarray | None = None

    @functools.cached_property
    def match_key(self) -> bytes:
        """Digest of the reference's atoms and environment: its part of the key of the
        Eckart-match cache shared by the members of a committee."""
        return hashlib.sha1(self.positions.tobytes() + self.env.tobytes() +
                            self.numbers.tobytes()).digest()


def environment(atoms: Atoms, metal: int, cutoff: float) -> np.ndarray:
    """Indices of the atoms within ``cutoff`` (Å) of the metal, the metal included."""
    d = np.linalg.norm(atoms.positions - atoms.positions[metal], axis=1)
    return np.flatnonzero(d <= cutoff)


def matched_environment(atoms: Atoms, metal: int, ref_numbers: np.ndarray) -> np.ndarray:
    """Indices of the structure's environment atoms, as many of each species as the
    reference environment has (``ref_numbers``, the metal first), each species' atoms taken
    nearest to the metal first.  Independent of the atom order of the structure."""
    d = np.linalg.norm(atoms.positions - atoms.positions[metal], axis=1)
    out = [metal]
    for z in sorted(set(int(x) for x in ref_numbers[1:])):
        need = int(np.sum(ref_numbers[1:] == z))
        others = [i for i in np.flatnonzero(atoms.numbers == z) if i != metal]
        if len(others) < need:
            raise ValueError(f"{atoms.get_chemical_formula()}: the reference environment has "
                             f"{need} atoms of Z={z}, the structure only {len(others)}")
        cand = np.asarray(others)[np.argsort(d[others], kind="stable")[:need]]
        out.extend(int(i) for i in cand)
    return np.asarray(out)


#: the 48 signed permutation matrices: every way to map one set of principal axes onto another
#: (24 of them proper for a given pair of frames)
_AXIS_MAPS = np.array([np.diag(signs)[list(order)]
                       for order in itertools.permutations(range(3))
                       for signs in itertools.product((1.0, -1.0), repeat=3)])
_AXIS_DETS = np.linalg.det(_AXIS_MAPS)
#: starts of :func:`eckart_match` refined to convergence (the others are screened out by
#: their RMSD after one assignment)
_REFINED_STARTS = 4
#: :func:`eckart_match` enumerates the anchor (metal and donor) correspondences up to this
#: many (6 donors of one element: 720), beyond it starts from the inertia axes
_MAX_ANCHOR_PERMUTATIONS = 720


def eckart_match(pos: np.ndarray, numbers: np.ndarray, masses: np.ndarray,
                 ref_pos: np.ndarray, anchor: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (R (r - com) ~ r_ref - com_ref) and the atom correspondence (perm, such that
    ``pos[perm]`` matches ``ref_pos``) between an environment and its reference, both listing
    the same elements in the same order up to permutations within an element.

    Permutation invariant.  Starting rotations: with ``anchor`` > 1 (the metal and its donors
    first in both lists), the mass-weighted Kabsch rotation of the anchor atoms for every
    correspondence among them within an element (at most :data:`_MAX_ANCHOR_PERMUTATIONS`;
    a near-spherical donor set such as a distorted tetrahedron has no reliable principal
    axes); otherwise, or with more correspondences, the principal axes of the mass-weighted
    inertia tensors mapped onto each other in all 24 proper ways.  From each start the atoms
    of each element are matched to the reference by the Hungarian algorithm; the starts are
    screened by the RMSD of that match, the best four refined (Kabsch rotation of the matched
    pairs, the Eckart conditions, and a new match, up to three times); the lowest RMSD
    wins."""
    from scipy.optimize import linear_sum_assignment

    w = masses / masses.sum()
    p = pos - w @ pos
    q = ref_pos - w @ ref_pos
    groups = [np.flatnonzero(numbers == z) for z in np.unique(numbers) if np.sum(numbers == z) > 1]

    def assign(r: np.ndarray) -> np.ndarray:
        pr = p @ r.T
        new = np.arange(len(p))
        for idx in groups:
            cost = np.sum((q[idx][:, None, :] - pr[idx][None, :, :]) ** 2, axis=-1)
            rows, cols = linear_sum_assignment(cost)
            new[idx[rows]] = idx[cols]
        return new

    rots = _anchor_rotations(p, q, w, numbers, anchor) if anchor > 1 else None
    if rots is None:
        def axes(x):
            inertia = (w[:, None, None] * (np.einsum("ij,ik->ijk", x, x))).sum(axis=0)
            return np.linalg.eigh(inertia)[1]

        vp, vq = axes(p), axes(q)
        sign = np.linalg.det(vq) * np.linalg.det(vp)
        rots = np.einsum("ij,sjk,lk->sil", vq, _AXIS_MAPS[_AXIS_DETS * sign > 0], vp)
    # screen the starts by the RMSD after one assignment, refine the best few
    pr = np.einsum("nj,sij->sni", p, rots)                      # (starts, n, 3)
    perms = np.tile(np.arange(len(p)), (len(rots), 1))
    for idx in groups:
        cost = np.sum((q[idx][None, :, None, :] - pr[:, idx][:, None, :, :]) ** 2, axis=-1)
        for k in range(len(rots)):
            rows, cols = linear_sum_assignment(cost[k])
            perms[k, idx[rows]] = idx[cols]
    msd = np.einsum("n,sn->s", w, np.sum((np.take_along_axis(pr, perms[:, :, None], axis=1)
                                          - q[None]) ** 2, axis=-1))
    starts = [(rots[k], perms[k]) for k in np.argsort(msd, kind="stable")[:_REFINED_STARTS]]
    best_rmsd = np.inf
    best_r: np.ndarray | None = None
    best_perm: np.ndarray | None = None
    for r, perm in starts:
        r, rmsd = _kabsch(p[perm], q, w)
        for _ in range(2):
            new = assign(r)
            if np.array_equal(new, perm):
                break   # the assignment is stable: another Kabsch step changes nothing
            perm = new
            r, rmsd = _kabsch(p[perm], q, w)
        if rmsd < best_rmsd - 1e-12:
            best_rmsd, best_r, best_perm = rmsd, r, perm
    if best_r is None or best_perm is None:
        raise ValueError("eckart_match: no candidate frame has a finite RMSD "
                         "(non-finite positions?)")
    return best_r, best_perm


def _anchor_rotations(p: np.ndarray, q: np.ndarray, w: np.ndarray, numbers: np.ndarray,
                      anchor: int) -> np.ndarray | None:
    """(K, 3, 3) proper rotations taking the first ``anchor`` atoms of the centred ``p`` onto
    those of ``q`` (mass-weighted Kabsch about the anchor's own centre) for every
    correspondence among them within an element; None for more than
    :data:`_MAX_ANCHOR_PERMUTATIONS` correspondences."""
    idx = np.arange(anchor)
    blocks = [idx[numbers[:anchor] == z] for z in np.unique(numbers[:anchor])]
    if np.prod([math.factorial(len(b)) for b in blocks]) > _MAX_ANCHOR_PERMUTATIONS:
        return None
    perms = [np.arange(anchor)]
    for b in blocks:
        if len(b) < 2:
            continue
        new = []
        for base in perms:
            for order in itertools.permutations(b):
                x = base.copy()
                x[b] = order
                new.append(x)
        perms = new
    pa = p[:anchor][np.array(perms)]                               # (K, anchor, 3)
    wa = w[:anchor] / w[:anchor].sum()
    pa = pa - np.einsum("n,knj->kj", wa, pa)[:, None, :]
    qa = q[:anchor] - wa @ q[:anchor]
    h = np.einsum("knj,n,nl->kjl", pa, wa, qa)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("kji,klj->kil", vt, u)))
    d[d == 0] = 1.0
    fix = np.ones((len(perms), 3))
    fix[:, 2] = d
    return np.einsum("kji,kj,klj->kil", vt, fix, u)


def _kabsch(p: np.ndarray, q: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`molmag.physics.alignment.kabsch` for centred, checked inputs with normalised
    weights ``w`` (the inner loop of :func:`eckart_match`)."""
    p = p - w @ p
    h = (p * w[:, None]).T @ q
    u, _, vt = np.linalg.svd(h)
    d = 1.0 if np.linalg.det(vt.T @ u.T) >= 0 else -1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    diff = p @ r.T - q
    return r, float(np.sqrt(np.sum(w * np.sum(diff**2, axis=1))))


def _by_element(idx, numbers: np.ndarray) -> np.ndarray:
    """The distinct atom indices ``idx`` ordered by element, then index (so that two frames
    with the same elements list them in the same order, as :func:`eckart_match` needs)."""
    idx = np.unique(np.asarray(idx, dtype=int))
    return idx[np.lexsort((idx, numbers[idx]))]


def _substituents(atoms: Atoms, i: int, metal: int) -> list[int]:
    """Atoms bonded to donor ``i`` other than the metal: heavy atoms first, heavier
    elements first, then nearest first."""
    nb = bonded_neighbours(atoms, i, exclude={metal})
    return sorted(nb, key=lambda j: (atoms.numbers[j] == 1, -atoms.numbers[j],
                                     atoms.get_distance(i, j)))


def species_sums(b: np.ndarray, numbers: np.ndarray, idx: np.ndarray,
                 species: Sequence[int]) -> np.ndarray:
    """Feature vector: for each species, the sum of B over the atoms ``idx`` of that species."""
    out = np.zeros((len(species), b.shape[1]))
    for k, z in enumerate(species):
        sel = idx[numbers[idx] == z]
        if len(sel):
            out[k] = b[sel].sum(axis=0)
    return out.ravel()


def donor_environment(atoms: Atoms, metal: int) -> tuple[np.ndarray, np.ndarray]:
    """(env, subs) of ``features="donors"``: env = the metal, then its donor atoms
    (:func:`~molmag.physics.ligand_field.find_donors`) by atomic number and distance; subs
    (n_donors, 2) = each donor's two substituents (bonded atoms other than the metal, heavy
    atoms first, heavier elements first, then nearest first; -1 where there are fewer)."""
    from molmag.physics.ligand_field import find_donors

    donors = np.asarray(find_donors(atoms, metal), dtype=int)
    if not len(donors):
        raise ValueError(f"{atoms.get_chemical_formula()}: the metal {atoms[metal].symbol}"
                         f"{metal} has no donor atoms within bonding distance")
    d = atoms.get_distances(metal, donors)
    donors = donors[np.lexsort((d, atoms.numbers[donors]))]
    subs = np.full((len(donors), 2), -1, dtype=int)
    for k, i in enumerate(donors):
        nb = _substituents(atoms, int(i), metal)
        subs[k, :len(nb[:2])] = nb[:2]
    return np.concatenate([[metal], donors]).astype(int), subs


def donor_geometry(pos: np.ndarray, env: np.ndarray, subs: np.ndarray) -> np.ndarray:
    """(7 n_donors,) invariant features of one structure given its positions ``pos`` in the
    reference frame (Angstrom), ``env`` = [metal, donors...] and ``subs`` (n_donors, 2) atom
    indices (-1: none): per donor u_k (3), 1/r_k (1/Angstrom) and n_k (3), see the module
    docstring."""
    bond = pos[env[1:]] - pos[env[0]]
    r = np.linalg.norm(bond, axis=1)
    out = np.zeros((len(bond), 7))
    out[:, :3] = bond / r[:, None]
    out[:, 3] = 1.0 / r
    for k, (a, b) in enumerate(subs):
        if a < 0:
            continue
        va = pos[a] - pos[env[k + 1]]
        n = va if b < 0 else np.cross(va, pos[b] - pos[env[k + 1]])
        nn = np.linalg.norm(n)
        if nn > 1e-12:
            out[k, 4:] = n / nn
    return out.ravel()


@functools.lru_cache(maxsize=16)
def _monomial_index(n_features: int, degree: int) -> tuple[np.ndarray, ...]:
    return tuple(np.array(list(itertools.combinations_with_replacement(range(n_features), d)),
                          dtype=int).reshape(-1, d) for d in range(2, degree + 1))


def monomials(x: np.ndarray, degree: int) -> np.ndarray:
    """(n, F) -> (n, M): all monomials of the columns of degree 1..``degree``."""
    x = np.asarray(x, float)
    parts = [x]
    for idx in _monomial_index(x.shape[1], int(degree)):
        parts.append(np.prod(x[:, idx], axis=2))
    return np.concatenate(parts, axis=1)


#: A composition of the metal's environment (its donor elements, ``features="donors"``, or the
#: elements within ``env_cutoff``) held by fewer training structures than this gets no
#: reference environment of its own when its structures match one of a larger composition
#: (the nearest atoms of each of that reference's elements): strongly distorted structures
#: pick up an extra "donor" (a sulfonamide S at 2.8-2.9 A, a C) and a reference fitted on the
#: 3-12 structures that do extrapolates by thousands of cm-1 (DEVELOPERS.md, "Why the round
#: committees' D error jumps").
MIN_REFERENCE_ROWS = 20

#: (structure, reference) -> Eckart match, shared by the members of a committee that use
#: the same reference (each match is computed once per structure, not once per member).
_MATCHES: collections.OrderedDict = collections.OrderedDict()
_MATCHES_MAX = 50_000


#: rows of :meth:`CovariantRidge._design`, per reference: (structure index, features, target
#: parts in the reference frame or None, rotation R)
_Row = tuple[int, np.ndarray, np.ndarray | None, np.ndarray]
_Rows = dict[int, list[_Row]]


def _target_parts(row: _Row) -> np.ndarray:
    """The target parts of a design row built with tensors (the fit's rows)."""
    assert row[2] is not None   # _design was given the tensors
    return row[2]


def tensor_parts(t: np.ndarray) -> np.ndarray:
    """(6,) = real spherical l=2 components (m=-2..2) and trace/3 of a 3x3 tensor."""
    t = 0.5 * (t + t.T)
    return np.concatenate([real_spherical_from_cartesian(t), [np.trace(t) / 3.0]])


def tensor_from_parts(p: np.ndarray) -> np.ndarray:
    return cartesian_from_real_spherical(p[:5]) + p[5] * np.eye(3)


class CovariantRidge:
    """Covariant ridge model of a rank-2 tensor (the ZFS D tensor, cm-1).

    ``descriptor`` computes per-atom invariants (``compute(atoms) -> (natoms, F)``; molmag's
    SNAP bispectrum by default), used with ``features="bispectrum"``; ``features="donors"``
    (default) uses the donor geometry in the Eckart frame expanded to ``degree`` (module
    docstring).  ``n_references`` reference environments are chosen among the training
    structures (the most central one first, then farthest-point in the metal's signature: its
    bispectrum, or its sorted donor distances), as many again for each further composition
    of the environment held by at least :data:`MIN_REFERENCE_ROWS` training structures (or
    not matchable to the references already chosen)."""

    kind = "covariant-ridge"
    target = "zfs_tensor"
    descriptor_type = "snap"
    FEATURES = ("donors", "bispectrum")

    def __init__(self, descriptor, *, env_cutoff: float = 3.5, n_references: int = 1,
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS, seed: int = 0,
                 features: str = "donors", degree: int = 2, lambda_selection: str = "loo"):
        self.seed = int(seed)   # the fit is deterministic; kept for the member contract
        if lambda_selection not in SELECTIONS:
            raise ValueError(f"lambda_selection must be one of {', '.join(SELECTIONS)}, not "
                             f"{lambda_selection!r}")
        self.lambda_selection = lambda_selection
        if features not in self.FEATURES:
            raise ValueError(f"features must be one of {', '.join(self.FEATURES)}, not "
                             f"{features!r}")
        if int(degree) != degree or not 1 <= int(degree) <= 4:
            raise ValueError(f"degree must be an integer 1..4, got {degree!r}")
        self.descriptor = descriptor
        self.env_cutoff = float(env_cutoff)
        self.n_references = int(n_references)
        self.lambdas = tuple(float(x) for x in lambdas)
        self.features = features
        self.degree = int(degree)
        self.species: list[int] = []
        self.references: list[ReferenceEnvironment] = []
        self.fits: list[RidgeFit | None] = []

    @property
    def _donors(self) -> bool:
        return self.features == "donors"

    # -- pieces -------------------------------------------------------------------------------
    def _b(self, frames: Sequence[Atoms]) -> list[np.ndarray | None]:
        if self._donors:
            return [None] * len(frames)
        return [np.asarray(self.descriptor.compute(a), float) for a in frames]

    def _env(self, atoms: Atoms, metal: int, ref: ReferenceEnvironment) -> np.ndarray:
        return matched_environment(atoms, metal, ref.numbers[ref.env])

    def _signature(self, atoms: Atoms, b, metal: int, env: np.ndarray) -> np.ndarray:
        """The metal's signature for choosing references (d(l, l0) of the paper): its
        bispectrum, or (donors) the sorted distances of the environment atoms."""
        if b is not None:
            return b[metal]
        return np.sort(np.linalg.norm(atoms.positions[env[1:]] - atoms.positions[metal],
                                      axis=1))

    def _assign(self, atoms: Atoms, b, metal: int) -> int:
        best, k_best = np.inf, -1
        for k, ref in enumerate(self.references):
            if atoms.numbers[metal] != ref.numbers[ref.metal]:
                continue
            try:
                env = self._env(atoms, metal, ref)
            except ValueError:
                continue
            d = float(np.sum((self._signature(atoms, b, metal, env) - ref.b_metal) ** 2))
            if d < best:
                best, k_best = d, k
        if k_best < 0:
            raise ValueError(f"{atoms.get_chemical_formula()}: no reference environment with "
                             "the same metal and enough atoms of each species within reach; "
                             "the covariant ridge only predicts structures like its training "
                             "ones")
        return k_best

    def _rotation(self, atoms: Atoms, ref: ReferenceEnvironment,
                  env: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eckart rotation R with R (r - r_com) ~ (r_ref - r_ref_com) over the environment,
        and the environment's atoms in the order of the reference's (element by element
        Hungarian matching: the structure's own atom order does not matter)."""
        r, perm = eckart_match(atoms.positions[env], atoms.numbers[env],
                               atomic_masses[atoms.numbers[env]], ref.positions[ref.env],
                               anchor=len(env) if self._donors else 0)
        return r, env[perm]

    def _match(self, atoms: Atoms, metal: int, k: int):
        """(R, environment in reference order, substituents (donors) or None) of a structure
        for reference k; cached, so the members of a committee sharing the reference match
        each structure once."""
        ref = self.references[k]
        key = (ref.match_key, self.features, int(metal), atoms.numbers.tobytes(),
               np.ascontiguousarray(atoms.positions, float).tobytes())
        hit = _MATCHES.get(key)
        if hit is not None:
            _MATCHES.move_to_end(key)
            return hit
        if not self._donors:
            r, ordered = self._rotation(atoms, ref, self._env(atoms, metal, ref))
            subs = None
        else:
            # Eckart frame of the metal, its donors and their substituents: the substituents
            # break the near symmetry of a donor set such as a pseudo-tetrahedral N4 (with the
            # donors alone a permuted match can win)
            assert ref.subs is not None   # references of features="donors" have them
            env = self._env(atoms, metal, ref)
            own = [_substituents(atoms, int(i), metal)[:2] for i in env[1:]]
            extra = [j for js in own for j in js if j not in set(env)]
            frame = np.concatenate([env, _by_element(extra, atoms.numbers)])
            ref_frame = np.concatenate([ref.env, _by_element(ref.subs[ref.subs >= 0],
                                                             ref.numbers)])
            if sorted(atoms.numbers[frame]) != sorted(ref.numbers[ref_frame]):
                # a strongly distorted structure (a bond stretched past the bonding cut-off,
                # a close contact counted as a bond): match the metal and donors, then take
                # for every reference substituent the nearest atom of its element
                r, ordered, subs = self._match_by_nearest(atoms, metal, ref, env)
                return self._remember(key, (r, ordered, subs))
            r, perm = eckart_match(atoms.positions[frame], atoms.numbers[frame],
                                   atomic_masses[atoms.numbers[frame]],
                                   ref.positions[ref_frame], anchor=len(env))
            matched = frame[perm]            # structure atom for each reference frame atom
            where = {int(x): k for k, x in enumerate(ref_frame)}
            ordered = matched[:len(ref.env)]
            # the rotation itself from the metal and the donors (the atoms that set the
            # tensor; substituents in the frame make it noisier: RMSE D_ij 0.30 vs 0.22)
            w = atomic_masses[ref.numbers[ref.env]]
            w = w / w.sum()
            q = ref.positions[ref.env] - w @ ref.positions[ref.env]
            r, _ = _kabsch(atoms.positions[ordered], q, w)
            subs = np.where(ref.subs >= 0,
                            matched[[where.get(int(x), 0) for x in ref.subs.ravel()]
                                    ].reshape(ref.subs.shape), -1)
        return self._remember(key, (r, ordered, subs))

    @staticmethod
    def _remember(key, hit):
        _MATCHES[key] = hit
        if len(_MATCHES) > _MATCHES_MAX:
            _MATCHES.popitem(last=False)
        return hit

    def _match_by_nearest(self, atoms: Atoms, metal: int, ref: ReferenceEnvironment,
                          env: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(R, environment in reference order, substituents) from an Eckart match of the
        metal and donors alone; each reference substituent is the nearest atom of the same
        element (not the metal or a donor) after the rotation."""
        assert ref.subs is not None   # references of features="donors" have them
        r, ordered = self._rotation(atoms, ref, env)
        subs = np.full(ref.subs.shape, -1, dtype=int)
        w = atomic_masses[atoms.numbers[ordered]]
        com = (w / w.sum()) @ atoms.positions[ordered]
        wr = atomic_masses[ref.numbers[ref.env]]
        com_ref = (wr / wr.sum()) @ ref.positions[ref.env]
        mapped = (atoms.positions - com) @ r.T + com_ref
        for z in np.unique(ref.numbers[ref.subs[ref.subs >= 0]]):
            cand = np.flatnonzero(atoms.numbers == z)
            outside = cand[~np.isin(cand, ordered)]
            cand = outside if len(outside) else cand[cand != metal]
            if not len(cand):
                raise ValueError(f"{atoms.get_chemical_formula()}: no atom of Z={z} to "
                                 "match the reference's donor substituents")
            sel = (ref.subs >= 0) & (ref.numbers[np.maximum(ref.subs, 0)] == z)
            dist = np.linalg.norm(mapped[cand][None] - ref.positions[ref.subs[sel]][:, None],
                                  axis=-1)
            subs[sel] = cand[np.argmin(dist, axis=1)]
        return r, ordered, subs

    def _features(self, atoms: Atoms, b, ordered_env: np.ndarray, r: np.ndarray,
                  subs) -> np.ndarray:
        """Eq. 4 with one coefficient vector alpha(i) per atom i of the reference
        environment: the features are the B of the environment's atoms in reference order
        (bispectrum), or the raw donor geometry in the reference frame (donors; the
        monomials are formed in :meth:`_rows`)."""
        if b is not None:
            return b[ordered_env].ravel()
        pos = atoms.positions @ r.T
        return donor_geometry(pos, ordered_env, subs)

    def _rows(self, k: int, x: np.ndarray) -> np.ndarray:
        if not self._donors:
            return x
        return monomials(x - self.references[k].centre, self.degree)

    def _choose_references(self, frames, bs, metals) -> None:
        self.references = []
        groups: dict[tuple, list[int]] = {}
        envs = []
        for n, (a, m) in enumerate(zip(frames, metals)):
            if self._donors:
                env, subs = donor_environment(a, m)
            else:
                env, subs = environment(a, m, self.env_cutoff), None
                env = np.concatenate([[m], env[env != m]])
            envs.append((env, subs))
            comp = tuple(sorted(int(z) for z in a.numbers[env[1:]]))
            groups.setdefault((int(a.numbers[m]), comp), []).append(n)
        # largest composition first; a small group whose structures all match a reference
        # already chosen (same metal, enough atoms of each element) gets none of its own
        for key in sorted(groups, key=lambda g: -len(groups[g])):
            members = groups[key]
            if len(members) < MIN_REFERENCE_ROWS and all(
                    self._matches_a_reference(frames[n], metals[n]) for n in members):
                continue
            bm = np.stack([self._signature(frames[n], bs[n], metals[n], envs[n][0])
                           for n in members])
            centre = bm.mean(axis=0)
            chosen = [int(np.argmin(np.sum((bm - centre) ** 2, axis=1)))]
            while len(chosen) < min(self.n_references, len(members)):
                d = np.min([np.sum((bm - bm[c]) ** 2, axis=1) for c in chosen], axis=0)
                chosen.append(int(np.argmax(d)))
            for c in chosen:
                n = members[c]
                a = frames[n]
                env, subs = envs[n]
                order = np.argsort(np.r_[-1, a.numbers[env[1:]]], kind="stable")
                env = env[order]
                if subs is not None:
                    subs = subs[order[1:] - 1]
                self.references.append(ReferenceEnvironment(
                    a.numbers.copy(), a.positions.copy(), metals[n], env, bm[c].copy(),
                    subs))

    def _matches_a_reference(self, atoms: Atoms, metal: int) -> bool:
        for ref in self.references:
            if atoms.numbers[metal] != ref.numbers[ref.metal]:
                continue
            try:
                self._env(atoms, metal, ref)
            except ValueError:
                continue
            return True
        return False

    def _design(self, frames: Sequence[Atoms], bs: Sequence[np.ndarray | None],
                metals: Sequence[int], tensors: np.ndarray | None = None) -> _Rows:
        """Per reference k: (structure index, features, target parts in the reference
        frame or None without ``tensors``, rotation R) of the structures assigned to k."""
        rows: _Rows = {k: [] for k in range(len(self.references))}
        for n, (a, b, m) in enumerate(zip(frames, bs, metals)):
            k = self._assign(a, b, m)
            r, ordered, subs = self._match(a, m, k)
            x = self._features(a, b, ordered, r, subs)
            y = None if tensors is None else tensor_parts(r @ tensors[n] @ r.T)
            rows[k].append((n, x, y, r))
        return rows

    # -- public -------------------------------------------------------------------------------
    def fit(self, frames: Sequence[Atoms], targets: dict, val_frames: Sequence[Atoms] = (),
            val_targets: dict | None = None, log=None):
        """Fit on structures with their tensors (``targets["zfs_tensor"]``, cm-1); lambda
        from the validation set or by leave-one-out (``lambda_selection``)."""
        frames = list(frames)
        val_frames = list(val_frames)
        tensors = np.asarray(targets["zfs_tensor"], float).reshape(-1, 3, 3)
        metals = [metal_index(a) for a in frames]
        val_metals = [metal_index(a) for a in val_frames]
        val_tensors: Any = ()
        if val_frames:
            if val_targets is None:
                raise ValueError("val_frames given without val_targets")
            val_tensors = val_targets["zfs_tensor"]
        self.species = sorted({int(z) for a in frames for z in a.numbers})
        bs = self._b(frames)
        self._choose_references(frames, bs, list(metals))
        rows = self._design(frames, bs, list(metals), tensors)
        vrows: _Rows = {k: [] for k in rows}
        if len(val_frames):
            vt = np.asarray(val_tensors, float).reshape(-1, 3, 3)
            vrows = self._design(list(val_frames), self._b(list(val_frames)), list(val_metals), vt)
        self.fits = []
        for k in range(len(self.references)):
            if not rows[k]:
                self.fits.append(None)
                continue
            x = np.stack([r[1] for r in rows[k]])
            if self._donors:
                self.references[k].centre = x.mean(axis=0)
            x = self._rows(k, x)
            y = np.stack([_target_parts(r) for r in rows[k]])
            xv = self._rows(k, np.stack([r[1] for r in vrows[k]])) if vrows[k] else None
            yv = np.stack([_target_parts(r) for r in vrows[k]]) if vrows[k] else None
            self.fits.append(fit_ridge(x, y, xv, yv, self.lambdas,
                                        select=self.lambda_selection))
        return self

    def predict(self, frames: Sequence[Atoms], forces: bool = False) -> dict[str, np.ndarray]:
        """``{"zfs_tensor": (n, 3, 3)}``, cm-1 (no forces: ``forces=True`` is refused)."""
        refuse_forces(self, forces)
        frames = list(frames)
        check_species(frames, self.species, self.kind)
        metals = [metal_index(a) for a in frames]
        bs = self._b(frames)
        out = np.zeros((len(frames), 3, 3))
        for k, items in self._design(frames, bs, list(metals)).items():
            if not items:
                continue
            fit = self.fits[k]
            if fit is None:
                raise ValueError(f"reference environment {k} has no training data")
            p = fit.predict(self._rows(k, np.stack([it[1] for it in items])))
            # eq. 5: T(D) = W(R^T) T(D_ref), i.e. D = R^T D_ref R (the l = 0 part invariant)
            t = np.stack([tensor_from_parts(pk) for pk in p])
            rot = np.stack([it[3] for it in items])
            idx = [it[0] for it in items]
            out[idx] = np.einsum("nji,njk,nkl->nil", rot, t, rot)
        return {"zfs_tensor": out}

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"kind": self.kind, "env_cutoff": self.env_cutoff, "seed": self.seed,
                "n_references": self.n_references, "lambdas": list(self.lambdas),
                "features": self.features, "degree": self.degree,
                "lambda_selection": self.lambda_selection, "species": self.species,
                "references": [{"metal": r.metal} for r in self.references],
                "fitted": [f is not None for f in self.fits]}
        arrays: dict[str, np.ndarray] = {}
        for k, ref in enumerate(self.references):
            arrays[f"ref{k}_numbers"] = ref.numbers
            arrays[f"ref{k}_positions"] = ref.positions
            arrays[f"ref{k}_env"] = ref.env
            arrays[f"ref{k}_b_metal"] = ref.b_metal
            if ref.subs is not None:
                arrays[f"ref{k}_subs"] = ref.subs
            if ref.centre is not None:
                arrays[f"ref{k}_centre"] = ref.centre
            fit = self.fits[k]
            if fit is not None:
                arrays.update(fit.as_arrays(f"fit{k}_"))
        return meta, arrays

    @classmethod
    def from_state(cls, descriptor, meta: dict, arrays) -> CovariantRidge:
        # files written before ``features`` existed hold the paper's bispectrum model
        m = cls(descriptor, env_cutoff=meta["env_cutoff"], n_references=meta["n_references"],
                lambdas=meta["lambdas"], seed=meta.get("seed", 0),
                features=meta.get("features", "bispectrum"), degree=meta.get("degree", 2),
                # files written before the option chose lambda on the validation set
                lambda_selection=meta.get("lambda_selection", "validation"))
        m.species = [int(z) for z in meta["species"]]

        def get(name: str) -> np.ndarray | None:
            return np.asarray(arrays[name]) if name in arrays else None

        for k, r in enumerate(meta["references"]):
            m.references.append(ReferenceEnvironment(
                np.asarray(arrays[f"ref{k}_numbers"]), np.asarray(arrays[f"ref{k}_positions"]),
                int(r["metal"]), np.asarray(arrays[f"ref{k}_env"]),
                np.asarray(arrays[f"ref{k}_b_metal"]), get(f"ref{k}_subs"),
                get(f"ref{k}_centre")))
            m.fits.append(RidgeFit.from_arrays(arrays, f"fit{k}_") if meta["fitted"][k]
                          else None)
        return m


__all__ = ["CovariantRidge", "ReferenceEnvironment", "environment", "species_sums",
           "donor_environment", "donor_geometry", "monomials",
           "tensor_parts", "tensor_from_parts", "matched_environment", "eckart_match"]
