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
a structure does not matter: :func:`eckart_match`); the reference l0 of a structure is the one minimising
d(l, l0) = sum_j |B_j(l) - B_j(l0)|^2 among references with the same atoms; the ridge
regularisation lambda is chosen on a validation set.

Implementation: with R the Eckart rotation that brings the structure onto the reference, the
targets of the training structures are rotated into the reference frame, D_ref = R D R^T,
their l = 2 (real spherical components) and l = 0 (trace/3) parts are fitted by ridge on the
features, and a prediction is rotated back with the Wigner matrix W(R^T): T(D) = W(R^T) T(D_ref),
which is eq. 5.  Because B is invariant and the Eckart rotation is equivariant, predicting on a
rotated structure gives R D R^T exactly (to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_masses

from molmag.models.base import check_species, metal_index
from molmag.models.ridge import DEFAULT_LAMBDAS, RidgeFit, fit_ridge
from molmag.physics.alignment import kabsch
from molmag.physics.tensors import cartesian_from_real_spherical, real_spherical_from_cartesian
from molmag.physics.wigner import wigner_D_real


@dataclass
class ReferenceEnvironment:
    """A reference orientation l0: the structure's atoms (order matters), its metal, the atoms
    of the metal's environment, and the metal's bispectrum."""

    numbers: np.ndarray
    positions: np.ndarray
    metal: int
    env: np.ndarray
    b_metal: np.ndarray


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
        cand = [i for i in np.flatnonzero(atoms.numbers == z) if i != metal]
        if len(cand) < need:
            raise ValueError(f"{atoms.get_chemical_formula()}: the reference environment has "
                             f"{need} atoms of Z={z}, the structure only {len(cand)}")
        cand = np.asarray(cand)[np.argsort(d[cand], kind="stable")[:need]]
        out.extend(int(i) for i in cand)
    return np.asarray(out)


def eckart_match(pos: np.ndarray, numbers: np.ndarray, masses: np.ndarray,
                 ref_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (R (r - com) ~ r_ref - com_ref) and the atom correspondence (perm, such that
    ``pos[perm]`` matches ``ref_pos``) between an environment and its reference, both listing
    the same elements in the same order up to permutations within an element.

    Permutation invariant: candidate frames from the principal axes of the mass-weighted
    inertia tensors (the four proper sign choices), atoms of each element matched to the
    reference by the Hungarian algorithm, then the mass-weighted Kabsch rotation of the matched
    pairs (Eckart conditions), refined twice; the candidate with the lowest RMSD wins."""
    from scipy.optimize import linear_sum_assignment

    w = masses / masses.sum()
    p = pos - w @ pos
    q = ref_pos - w @ ref_pos

    def axes(x):
        inertia = (w[:, None, None] * (np.einsum("ij,ik->ijk", x, x))).sum(axis=0)
        return np.linalg.eigh(inertia)[1]

    vp, vq = axes(p), axes(q)
    best = (np.inf, None, None)
    for signs in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
        s_ = np.diag(signs).astype(float)
        if np.linalg.det(vq @ s_ @ vp.T) < 0:
            s_[2, 2] *= -1
        r = vq @ s_ @ vp.T
        perm = np.arange(len(p))
        for _ in range(3):
            pr = p @ r.T
            perm = np.empty(len(p), dtype=int)
            for z in np.unique(numbers):
                idx = np.flatnonzero(numbers == z)
                cost = np.sum((q[idx][:, None, :] - pr[idx][None, :, :]) ** 2, axis=-1)
                rows, cols = linear_sum_assignment(cost)
                perm[idx[rows]] = idx[cols]
            r, rmsd = kabsch(p[perm], q, masses)
        if rmsd < best[0] - 1e-12:
            best = (rmsd, r, perm)
    return best[1], best[2]


def species_sums(b: np.ndarray, numbers: np.ndarray, idx: np.ndarray,
                 species: Sequence[int]) -> np.ndarray:
    """Feature vector: for each species, the sum of B over the atoms ``idx`` of that species."""
    out = np.zeros((len(species), b.shape[1]))
    for k, z in enumerate(species):
        sel = idx[numbers[idx] == z]
        if len(sel):
            out[k] = b[sel].sum(axis=0)
    return out.ravel()


def tensor_parts(t: np.ndarray) -> np.ndarray:
    """(6,) = real spherical l=2 components (m=-2..2) and trace/3 of a 3x3 tensor."""
    t = 0.5 * (t + t.T)
    return np.concatenate([real_spherical_from_cartesian(t), [np.trace(t) / 3.0]])


def tensor_from_parts(p: np.ndarray) -> np.ndarray:
    return cartesian_from_real_spherical(p[:5]) + p[5] * np.eye(3)


class CovariantRidge:
    """Covariant bispectrum ridge model of a rank-2 tensor (the ZFS D tensor, cm-1).

    ``descriptor`` computes per-atom invariants (``compute(atoms) -> (natoms, F)``; molmag's
    SNAP bispectrum by default).  ``n_references`` reference environments are chosen among the
    training structures (the most central one first, then farthest-point in B space), one more
    for each new composition/atom order."""

    kind = "covariant-ridge"
    target = "zfs_tensor"
    descriptor_type = "snap"

    def __init__(self, descriptor, *, env_cutoff: float = 3.5, n_references: int = 1,
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS, seed: int = 0):
        self.seed = int(seed)   # the fit is deterministic; kept for the member contract
        self.descriptor = descriptor
        self.env_cutoff = float(env_cutoff)
        self.n_references = int(n_references)
        self.lambdas = tuple(float(x) for x in lambdas)
        self.species: list[int] = []
        self.references: list[ReferenceEnvironment] = []
        self.fits: list[RidgeFit | None] = []

    # -- pieces -------------------------------------------------------------------------------
    def _b(self, frames: Sequence[Atoms]) -> list[np.ndarray]:
        return [np.asarray(self.descriptor.compute(a), float) for a in frames]

    def _env(self, atoms: Atoms, metal: int, ref: ReferenceEnvironment) -> np.ndarray:
        return matched_environment(atoms, metal, ref.numbers[ref.env])

    def _assign(self, atoms: Atoms, b: np.ndarray, metal: int) -> int:
        best, k_best = np.inf, -1
        for k, ref in enumerate(self.references):
            if atoms.numbers[metal] != ref.numbers[ref.metal]:
                continue
            try:
                self._env(atoms, metal, ref)
            except ValueError:
                continue
            d = float(np.sum((b[metal] - ref.b_metal) ** 2))
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
                               atomic_masses[atoms.numbers[env]], ref.positions[ref.env])
        return r, env[perm]

    @staticmethod
    def _features(b: np.ndarray, ordered_env: np.ndarray) -> np.ndarray:
        """Eq. 4 with one coefficient vector alpha(i) per atom i of the reference
        environment: the features are the B of the environment's atoms in reference order."""
        return b[ordered_env].ravel()

    def _choose_references(self, frames, bs, metals) -> None:
        self.references = []
        groups: dict[tuple, list[int]] = {}
        for n, (a, m) in enumerate(zip(frames, metals)):
            env = environment(a, m, self.env_cutoff)
            comp = tuple(sorted(int(z) for z in a.numbers[env[env != m]]))
            groups.setdefault((int(a.numbers[m]), comp), []).append(n)
        for members in groups.values():
            bm = np.stack([bs[n][metals[n]] for n in members])
            centre = bm.mean(axis=0)
            chosen = [int(np.argmin(np.sum((bm - centre) ** 2, axis=1)))]
            while len(chosen) < min(self.n_references, len(members)):
                d = np.min([np.sum((bm - bm[c]) ** 2, axis=1) for c in chosen], axis=0)
                chosen.append(int(np.argmax(d)))
            for c in chosen:
                n = members[c]
                a = frames[n]
                env = environment(a, metals[n], self.env_cutoff)
                env = np.concatenate([[metals[n]], env[env != metals[n]]])
                env = env[np.argsort(np.r_[-1, a.numbers[env[1:]]], kind="stable")]
                self.references.append(ReferenceEnvironment(
                    a.numbers.copy(), a.positions.copy(), metals[n], env,
                    bs[n][metals[n]].copy()))

    def _design(self, frames, bs, metals, tensors=None):
        rows: dict[int, list] = {k: [] for k in range(len(self.references))}
        for n, (a, b, m) in enumerate(zip(frames, bs, metals)):
            k = self._assign(a, b, m)
            ref = self.references[k]
            r, ordered = self._rotation(a, ref, self._env(a, m, ref))
            x = self._features(b, ordered)
            y = None if tensors is None else tensor_parts(r @ tensors[n] @ r.T)
            rows[k].append((n, x, y, r))
        return rows

    # -- public -------------------------------------------------------------------------------
    def fit(self, frames: Sequence[Atoms], targets: dict, val_frames: Sequence[Atoms] = (),
            val_targets: dict | None = None, log=None):
        """Fit on structures with their tensors (``targets["zfs_tensor"]``, cm-1); lambda
        from the validation set."""
        frames = list(frames)
        val_frames = list(val_frames)
        tensors = np.asarray(targets["zfs_tensor"], float).reshape(-1, 3, 3)
        metals = [metal_index(a) for a in frames]
        val_metals = [metal_index(a) for a in val_frames]
        val_tensors = val_targets["zfs_tensor"] if val_frames else ()
        self.species = sorted({int(z) for a in frames for z in a.numbers})
        bs = self._b(frames)
        self._choose_references(frames, bs, list(metals))
        rows = self._design(frames, bs, list(metals), tensors)
        vrows = {k: [] for k in rows}
        if len(val_frames):
            vt = np.asarray(val_tensors, float).reshape(-1, 3, 3)
            vrows = self._design(list(val_frames), self._b(list(val_frames)), list(val_metals), vt)
        self.fits = []
        for k in range(len(self.references)):
            if not rows[k]:
                self.fits.append(None)
                continue
            x = np.stack([r[1] for r in rows[k]])
            y = np.stack([r[2] for r in rows[k]])
            xv = np.stack([r[1] for r in vrows[k]]) if vrows[k] else None
            yv = np.stack([r[2] for r in vrows[k]]) if vrows[k] else None
            self.fits.append(fit_ridge(x, y, xv, yv, self.lambdas))
        return self

    def predict(self, frames: Sequence[Atoms]) -> dict[str, np.ndarray]:
        """``{"zfs_tensor": (n, 3, 3)}``, cm-1."""
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
            p = fit.predict(np.stack([it[1] for it in items]))
            for (n, _, _, r), pk in zip(items, p):
                # eq. 5: T(D) = W(R^T) T(D_ref); the l = 0 part is invariant
                t = np.concatenate([wigner_D_real(2, r.T) @ pk[:5], pk[5:]])
                out[n] = tensor_from_parts(t)
        return {"zfs_tensor": out}

    # -- persistence --------------------------------------------------------------------------
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"kind": self.kind, "env_cutoff": self.env_cutoff, "seed": self.seed,
                "n_references": self.n_references, "lambdas": list(self.lambdas),
                "species": self.species,
                "references": [{"metal": r.metal} for r in self.references],
                "fitted": [f is not None for f in self.fits]}
        arrays: dict[str, np.ndarray] = {}
        for k, ref in enumerate(self.references):
            arrays[f"ref{k}_numbers"] = ref.numbers
            arrays[f"ref{k}_positions"] = ref.positions
            arrays[f"ref{k}_env"] = ref.env
            arrays[f"ref{k}_b_metal"] = ref.b_metal
            if self.fits[k] is not None:
                arrays.update(self.fits[k].as_arrays(f"fit{k}_"))
        return meta, arrays

    @classmethod
    def from_state(cls, descriptor, meta: dict, arrays) -> CovariantRidge:
        m = cls(descriptor, env_cutoff=meta["env_cutoff"], n_references=meta["n_references"],
                lambdas=meta["lambdas"], seed=meta.get("seed", 0))
        m.species = [int(z) for z in meta["species"]]
        for k, r in enumerate(meta["references"]):
            m.references.append(ReferenceEnvironment(
                np.asarray(arrays[f"ref{k}_numbers"]), np.asarray(arrays[f"ref{k}_positions"]),
                int(r["metal"]), np.asarray(arrays[f"ref{k}_env"]),
                np.asarray(arrays[f"ref{k}_b_metal"])))
            m.fits.append(RidgeFit.from_arrays(arrays, f"fit{k}_") if meta["fitted"][k]
                          else None)
        return m


__all__ = ["CovariantRidge", "ReferenceEnvironment", "environment", "species_sums",
           "tensor_parts", "tensor_from_parts", "matched_environment", "eckart_match"]
