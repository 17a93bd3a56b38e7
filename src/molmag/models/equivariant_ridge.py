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

``features="donors"`` (molmag's default; ``"bispectrum"`` is the model above, and model files
written before ``features`` existed load as it): the same linear, exactly equivariant form
with equivariant basis tensors and invariant coefficients built from the metal's donors
(:func:`molmag.models.covariant_ridge.donor_environment`).  Donor k has the local frame
u_k (unit bond vector metal -> donor), n_k (unit normal of its two substituents' plane; the
perpendicular part of the direction to a single substituent; none without substituents) and
m_k = u_k x n_k, and the five l = 2 tensors E_kb = Ybar^2(sym(a (x) b)) for
(a, b) = (u, u), (n, n), (u, n), (u, m), (n, m), which span every symmetric traceless tensor.
Then

    T^2_m = sum_k sum_b E_kb,m sum_f w[Z_k, b, f] phi_f(k),

with phi(k) all monomials up to ``degree`` of donor k's invariant view of the coordination
sphere (deviations from the training mean): 1/r_k and, for every other donor j (ordered by
decreasing u_k . u_j), 1/r_j and u_j and n_j in k's frame (their dot products with u_k, n_k,
m_k).  The weights w are shared by donors of the same element, so the model is permutation
invariant; the trace is an invariant ridge on the sum over donors of phi(k).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from molmag.models.base import check_species, metal_index, refuse_forces
from molmag.models.covariant_ridge import (
    donor_environment,
    monomials,
    species_sums,
    tensor_from_parts,
    tensor_parts,
)
from molmag.models.ridge import DEFAULT_LAMBDAS, RidgeFit, fit_ridge
from molmag.physics.tensors import real_spherical_from_cartesian


def _y2(unit: np.ndarray) -> np.ndarray:
    """(n, 5) real l = 2 components of r (x) r for unit vectors (n, 3)."""
    outer = unit[:, :, None] * unit[:, None, :]
    return real_spherical_from_cartesian(outer)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-12 else np.zeros(3)


def donor_frames(atoms: Atoms, metal: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Z of the donors (n,), 1/r (n,) 1/Angstrom, frames (n, 3, 3) rows u, n, m; n = m = 0
    for a donor without substituents)."""
    env, subs = donor_environment(atoms, metal)
    pos = atoms.positions
    z, inv_r, frames = [], [], []
    for d, (a, b) in zip(env[1:], subs):
        bond = pos[d] - pos[metal]
        u = bond / np.linalg.norm(bond)
        if a < 0:
            nrm = np.zeros(3)
        elif b < 0:
            va = pos[a] - pos[d]
            nrm = _unit(va - (va @ u) * u)
        else:
            nrm = _unit(np.cross(pos[a] - pos[d], pos[b] - pos[d]))
        z.append(int(atoms.numbers[d]))
        inv_r.append(1.0 / np.linalg.norm(bond))
        frames.append(np.stack([u, nrm, np.cross(u, nrm)]))
    return np.array(z), np.array(inv_r), np.stack(frames)


_PAIRS = ((0, 0), (1, 1), (0, 1), (0, 2), (1, 2))


def donor_views(inv_r: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(n, 1 + 7 (n - 1)) invariant view of the coordination sphere from every donor: 1/r_k,
    then per other donor j (by decreasing u_k . u_j) 1/r_j, frame_k @ u_j, frame_k @ n_j."""
    n = len(inv_r)
    out = np.zeros((n, 1 + 7 * (n - 1)))
    for k in range(n):
        others = [j for j in range(n) if j != k]
        others.sort(key=lambda j: -float(frames[k, 0] @ frames[j, 0]))
        row = [inv_r[k]]
        for j in others:
            row += [inv_r[j], *(frames[k] @ frames[j, 0]), *(frames[k] @ frames[j, 1])]
        out[k] = row
    return out


def donor_basis(frames: np.ndarray) -> np.ndarray:
    """(n, 5, 5): the five l = 2 tensors E_kb (real components m = -2..2) of every donor."""
    out = np.zeros((len(frames), 5, 5))
    for b, (i, j) in enumerate(_PAIRS):
        a, c = frames[:, i], frames[:, j]
        sym = 0.5 * (a[:, :, None] * c[:, None, :] + c[:, :, None] * a[:, None, :])
        out[:, b] = real_spherical_from_cartesian(sym)
    return out


class EquivariantRidge:
    """Equivariant ridge model of a rank-2 tensor (cm-1): spherical harmonics of the
    environment weighted by bispectra (``features="bispectrum"``, Nguyen & Lunghi), or the
    donors' local-frame tensors with invariant polynomial weights (``"donors"``, default)."""

    kind = "equivariant-ridge"
    target = "zfs_tensor"
    descriptor_type = "snap"
    FEATURES = ("donors", "bispectrum")

    def __init__(self, descriptor, *, env_cutoff: float = 3.5,
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS, seed: int = 0,
                 features: str = "donors", degree: int = 2):
        self.seed = int(seed)   # the fit is deterministic; kept for the member contract
        if features not in self.FEATURES:
            raise ValueError(f"features must be one of {', '.join(self.FEATURES)}, not "
                             f"{features!r}")
        if int(degree) != degree or not 1 <= int(degree) <= 3:
            raise ValueError(f"degree must be an integer 1..3, got {degree!r}")
        self.descriptor = descriptor
        self.env_cutoff = float(env_cutoff)
        self.lambdas = tuple(float(x) for x in lambdas)
        self.features = features
        self.degree = int(degree)
        self.species: list[int] = []
        self.donor_species: list[int] = []
        self.centre: np.ndarray | None = None
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

    def _views(self, frames):
        out = []
        for a in frames:
            z, inv_r, fr = donor_frames(a, metal_index(a))
            out.append((z, donor_views(inv_r, fr), donor_basis(fr)))
        return out

    def _donor_rows(self, views, frames=None) -> tuple[np.ndarray, np.ndarray]:
        n_s = len(self.donor_species)
        if self.centre is None:
            raise RuntimeError("the model is not fitted")
        rows, x0 = [], []
        for i, (z, phi, basis) in enumerate(views):
            where = f"frame {i}" + (f" ({frames[i].get_chemical_formula()}, metal atom "
                                    f"{metal_index(frames[i])})" if frames is not None else "")
            if phi.shape[1] != len(self.centre):
                raise ValueError(f"{where}: {len(z)} donors; the model was trained on "
                                 f"{(len(self.centre) + 6) // 7}")
            feats = np.concatenate([np.ones((len(z), 1)),
                                    monomials(phi - self.centre, self.degree)], axis=1)
            nf = feats.shape[1]
            row = np.zeros((5, n_s, 5, nf))
            for k, zk in enumerate(z):
                if zk not in self.donor_species:
                    raise ValueError(f"{where}: donor element Z={zk} was never seen in "
                                     "training")
                s = self.donor_species.index(int(zk))
                row[:, s] += basis[k].T[:, :, None] * feats[k][None, None, :]
            rows.append(row.reshape(5, -1))
            x0.append(feats.sum(axis=0))
        return np.stack(rows), np.stack(x0)

    def _design(self, frames):
        if self.features == "donors":
            return self._donor_rows(self._views(frames), frames)
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
        if self.features == "donors":
            views = self._views(frames)
            self.donor_species = sorted({int(x) for z, _, _ in views for x in z})
            shapes = {phi.shape[1] for _, phi, _ in views}
            if len(shapes) != 1:
                raise ValueError("the donor features need one number of donors in all "
                                 "training structures")
            self.centre = np.concatenate([phi for _, phi, _ in views]).mean(axis=0)
            rows, x0 = self._donor_rows(views)
        else:
            rows, x0 = self._design(frames)
        t = np.stack([tensor_parts(x) for x in
                      np.asarray(targets["zfs_tensor"], float).reshape(-1, 3, 3)])
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

    def predict(self, frames, forces: bool = False) -> dict[str, np.ndarray]:
        """``{"zfs_tensor": (n, 3, 3)}``, cm-1 (no forces: ``forces=True`` is refused)."""
        refuse_forces(self, forces)
        if self.fit2 is None or self.fit0 is None:
            raise RuntimeError("the model is not fitted")
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
                "seed": self.seed, "features": self.features, "degree": self.degree,
                "donor_species": self.donor_species,
                "species": self.species}
        if self.fit2 is None or self.fit0 is None:
            raise RuntimeError("the model is not fitted")
        arrays = {**self.fit2.as_arrays("l2_"), **self.fit0.as_arrays("l0_")}
        if self.centre is not None:
            arrays["centre"] = self.centre
        return meta, arrays

    @classmethod
    def from_state(cls, descriptor, meta, arrays) -> EquivariantRidge:
        # files written before ``features`` existed hold the bispectrum model
        m = cls(descriptor, env_cutoff=meta["env_cutoff"], lambdas=meta["lambdas"],
                seed=meta.get("seed", 0), features=meta.get("features", "bispectrum"),
                degree=meta.get("degree", 2))
        m.species = [int(z) for z in meta["species"]]
        m.donor_species = [int(z) for z in meta.get("donor_species", [])]
        m.centre = np.asarray(arrays["centre"]) if "centre" in arrays else None
        m.fit2 = RidgeFit.from_arrays(arrays, "l2_")
        m.fit0 = RidgeFit.from_arrays(arrays, "l0_")
        return m


__all__ = ["EquivariantRidge", "donor_frames", "donor_views", "donor_basis"]
