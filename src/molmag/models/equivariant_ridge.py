"""Equivariant spherical-harmonic ridge regression of a rank-2 tensor (Nguyen & Lunghi 2022,
as described in the review, ../shared/papers/review-ml-for-smm-zh.md).

    T^l_m = sum_a sum_i c_i(a) B_i(a) Ybar^l_m(a)

The sum runs over the atoms a within ``env_cutoff`` of the metal (the metal itself has no
direction and enters only the invariant l = 0 part); B_i(a) are the atom's invariant
bispectrum components, c_i(a) ridge coefficients per chemical species of a, and Ybar^l_m(a) the
real spherical harmonics of the unit vector from the metal to a.  Here l = 2 for the traceless
part of D, with Ybar^2_m(a) = real spherical components of r_a (x) r_a (the same real
components the targets use, so that rotating a structure rotates every row of the design matrix
by one Wigner matrix), multiplied by a smooth cutoff f_c(r) = [1 + cos(pi r / r_c)] / 2 so that
an atom leaving the environment does not make the prediction jump (a choice of molmag; the
review's equation has no radial weight).  The trace (l = 0) is an ordinary invariant ridge on
the species sums of B.  No intercept is fitted for l = 2: the model is linear in the design
rows, hence exactly equivariant without any reference orientation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from molmag.models.base import check_species, metal_index
from molmag.models.covariant_ridge import species_sums, tensor_from_parts, tensor_parts
from molmag.models.ridge import DEFAULT_LAMBDAS, RidgeFit, fit_ridge
from molmag.physics.tensors import real_spherical_from_cartesian


def _y2(unit: np.ndarray) -> np.ndarray:
    """(n, 5) real l = 2 components of r (x) r for unit vectors (n, 3)."""
    outer = unit[:, :, None] * unit[:, None, :]
    return real_spherical_from_cartesian(outer)


class EquivariantRidge:
    """Equivariant spherical-harmonic ridge model of a rank-2 tensor (cm-1)."""

    kind = "equivariant-ridge"
    target = "zfs_tensor"
    descriptor_type = "snap"

    def __init__(self, descriptor, *, env_cutoff: float = 3.5,
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS, seed: int = 0):
        self.seed = int(seed)   # the fit is deterministic; kept for the member contract
        self.descriptor = descriptor
        self.env_cutoff = float(env_cutoff)
        self.lambdas = tuple(float(x) for x in lambdas)
        self.species: list[int] = []
        self.fit2: RidgeFit | None = None
        self.fit0: RidgeFit | None = None

    def _rows(self, atoms: Atoms, b: np.ndarray, metal: int) -> tuple[np.ndarray, np.ndarray]:
        """(5, S*F) equivariant design rows and (S*F,) invariant features of one structure."""
        vec = atoms.positions - atoms.positions[metal]
        r = np.linalg.norm(vec, axis=1)
        env = np.flatnonzero(r <= self.env_cutoff)
        x0 = species_sums(b, atoms.numbers, env, self.species)
        nb = env[env != metal]
        fc = 0.5 * (1.0 + np.cos(np.pi * r[nb] / self.env_cutoff))
        y = _y2(vec[nb] / r[nb, None]) * fc[:, None]          # (n_nb, 5)
        f = b.shape[1]
        rows = np.zeros((5, len(self.species) * f))
        for k, z in enumerate(self.species):
            sel = atoms.numbers[nb] == z
            if sel.any():
                rows[:, k * f:(k + 1) * f] = y[sel].T @ b[nb[sel]]
        return rows, x0

    def _design(self, frames):
        rows, x0 = [], []
        for a in frames:
            m = metal_index(a)
            b = np.asarray(self.descriptor.compute(a), float)
            r, x = self._rows(a, b, m)
            rows.append(r)
            x0.append(x)
        return np.stack(rows), np.stack(x0)

    def fit(self, frames, targets, val_frames=(), val_targets=None, log=None):
        """Fit on ``targets["zfs_tensor"]`` (cm-1); lambda from the validation set."""
        frames = list(frames)
        self.species = sorted({int(z) for a in frames for z in a.numbers})
        t = np.stack([tensor_parts(x) for x in
                      np.asarray(targets["zfs_tensor"], float).reshape(-1, 3, 3)])
        rows, x0 = self._design(frames)
        vr = vx = vt = None
        if len(val_frames):
            vr, vx = self._design(list(val_frames))
            vt = np.stack([tensor_parts(x) for x in
                           np.asarray(val_targets["zfs_tensor"], float).reshape(-1, 3, 3)])
        n, f = len(frames), rows.shape[2]
        self.fit2 = fit_ridge(rows.reshape(n * 5, f), t[:, :5].reshape(-1, 1),
                              None if vr is None else vr.reshape(-1, f),
                              None if vt is None else vt[:, :5].reshape(-1, 1),
                              self.lambdas, intercept=False)
        self.fit0 = fit_ridge(x0, t[:, 5:], vx, None if vt is None else vt[:, 5:], self.lambdas)
        return self

    def predict(self, frames) -> dict[str, np.ndarray]:
        """``{"zfs_tensor": (n, 3, 3)}``, cm-1."""
        frames = list(frames)
        check_species(frames, self.species, self.kind)
        rows, x0 = self._design(frames)
        n, f = rows.shape[0], rows.shape[2]
        t2 = self.fit2.predict(rows.reshape(n * 5, f)).reshape(n, 5)
        t0 = self.fit0.predict(x0).reshape(n, 1)
        return {"zfs_tensor": np.stack([tensor_from_parts(p)
                                        for p in np.concatenate([t2, t0], axis=1)])}

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"kind": self.kind, "env_cutoff": self.env_cutoff, "lambdas": list(self.lambdas),
                "seed": self.seed,
                "species": self.species}
        return meta, {**self.fit2.as_arrays("l2_"), **self.fit0.as_arrays("l0_")}

    @classmethod
    def from_state(cls, descriptor, meta, arrays) -> EquivariantRidge:
        m = cls(descriptor, env_cutoff=meta["env_cutoff"], lambdas=meta["lambdas"],
                seed=meta.get("seed", 0))
        m.species = [int(z) for z in meta["species"]]
        m.fit2 = RidgeFit.from_arrays(arrays, "l2_")
        m.fit0 = RidgeFit.from_arrays(arrays, "l0_")
        return m


__all__ = ["EquivariantRidge"]
