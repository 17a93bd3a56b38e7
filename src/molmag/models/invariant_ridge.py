r"""Invariant bispectrum ridge regression of the Kramers-doublet energies of a magnetic ion.

Features of a structure (all rotation-, translation- and permutation-invariant):

.. math::

    \mathbf x = \Big[\ \tilde{\mathbf B}(M),\ \
      \sum_{a \in \mathrm{env},\, Z_a = z_1} f_c(r_a)\, \tilde{\mathbf B}(a),\ \dots,\
      \sum_{a \in \mathrm{env},\, Z_a = z_T} f_c(r_a)\, \tilde{\mathbf B}(a)\ \Big],

with M the metal (:func:`molmag.models.base.metal_index`), env the other atoms within
``env_cutoff`` (Angstrom) of it, ``Btilde(a) = [1, B_1(a), ..., B_F(a)]`` the SNAP bispectrum
components of atom a with the constant term first (the paper's "56th element": the block of
species z then starts with the smooth count sum_a f_c(r_a)), one block per descriptor species
z_t, and the smooth cosine cutoff ``f_c(r) = [1 + cos(pi r / r_c)] / 2`` of
:class:`molmag.models.equivariant_ridge.EquivariantRidge` (an atom crossing r_c does not make
the prediction jump).  The metal's own block is left out with ``include_metal=False``.

Targets: the Kramers-doublet energies ``kd_energies`` (n, n_kd) in cm-1 (for J = 15/2: 8
levels, ground 0).  All rows must have the same number of levels.  The model fits the n_kd - 1
gaps ``Delta_l = E_l - E_0`` (l = 1..n_kd-1) with one ridge (intercept, standardised features,
one lambda for all gaps chosen on the validation set by
:func:`molmag.models.ridge.fit_ridge`).

Prediction: the gaps are predicted, negative values are clipped to 0, the gaps are sorted
ascending and the ground level 0 is prepended, so every predicted row is ascending with
ground 0 (cm-1).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from molmag.models.base import Log, check_species, metal_index, refuse_forces
from molmag.models.ridge import DEFAULT_LAMBDAS, RidgeFit, fit_ridge


def smooth_cutoff(r: np.ndarray, cutoff: float) -> np.ndarray:
    """f_c(r) = [1 + cos(pi r / r_c)] / 2 for r <= r_c, 0 beyond (dimensionless)."""
    r = np.asarray(r, float)
    return np.where(r <= cutoff, 0.5 * (1.0 + np.cos(np.pi * r / cutoff)), 0.0)


def metal_environment(atoms: Atoms, cutoff: float,
                      metal: int | None = None) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(metal, neighbours, vectors (n_nb, 3) metal -> neighbour in Angstrom, distances) of the
    atoms other than the metal within ``cutoff`` (Angstrom) of it, in atom order."""
    m = metal_index(atoms) if metal is None else int(metal)
    vec = atoms.positions - atoms.positions[m]
    r = np.linalg.norm(vec, axis=1)
    nb = np.flatnonzero(r <= cutoff)
    nb = nb[nb != m]
    return m, nb, vec[nb], r[nb]


def descriptor_numbers(descriptor) -> list[int]:
    """Atomic numbers of the descriptor's species (chemical symbols required)."""
    out = []
    for label in descriptor.settings.species:
        if label not in atomic_numbers:
            raise ValueError(f"this model needs chemical symbols as descriptor species, "
                             f"got {label!r}")
        out.append(atomic_numbers[label])
    return out


def environment_bispectrum(descriptor, atoms: Atoms, cutoff: float, metal: int | None = None):
    """(metal, neighbours, vectors, distances, Btilde of the metal (F+1,), Btilde of the
    neighbours (n_nb, F+1)): only the metal and its neighbours are computed by LAMMPS (all
    atoms count as their neighbours)."""
    m, nb, vec, r = metal_environment(atoms, cutoff, metal)
    b = np.asarray(descriptor.compute(atoms, centers=np.concatenate([[m], nb]).astype(int)),
                   float)
    b = np.concatenate([np.ones((len(b), 1)), b], axis=1)
    return m, nb, vec, r, b[0], b[1:]


def check_descriptor(descriptor, meta: dict, kind: str) -> None:
    """The descriptor given to ``from_state`` must be the one the model was trained with."""
    species = list(descriptor.settings.species)
    if species != list(meta["descriptor_species"]) or \
            int(descriptor.n_components()) != int(meta["n_components"]):
        raise ValueError(f"the {kind} model was trained with descriptor species "
                         f"{meta['descriptor_species']} and {meta['n_components']} components, "
                         f"not {species} and {descriptor.n_components()}")


def kd_matrix(kd, name: str = "kd_energies") -> np.ndarray:
    """Rows of Kramers-doublet energies as one (n, n_kd) array, referred to their ground level;
    ValueError naming the first row whose level count differs from row 0's."""
    rows = [np.asarray(x, float).reshape(-1) for x in kd]
    if not rows:
        raise ValueError(f"no {name} rows")
    n0 = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != n0:
            raise ValueError(f"{name} row {i} has {len(r)} levels but row 0 has {n0}; all "
                             "structures must have the same number of Kramers doublets")
    if n0 < 2:
        raise ValueError(f"{name} need at least two levels (a gap), got {n0}")
    out = np.stack(rows)
    return out - out[:, :1]


class KDGapRidge:
    """Invariant ridge of the Kramers-doublet gaps (module docstring).

    Hyperparameters: ``env_cutoff`` (Angstrom, default 3.5), ``include_metal`` (default True:
    the metal's own bispectrum is a feature block), ``lambdas`` (ridge grid).  ``seed`` is
    accepted for the member contract; the fit is deterministic.

    ``targets``: ``{"kd_energies": (n, n_kd) cm-1}``; ``predict`` returns
    ``{"kd_energies": (n, n_kd) cm-1}``, ascending, ground 0."""

    kind = "kd-gap-ridge"
    target = "kd_energies"
    descriptor_type = "snap"

    def __init__(self, descriptor, *, seed: int = 0, env_cutoff: float = 3.5,
                 include_metal: bool = True, lambdas: Sequence[float] = DEFAULT_LAMBDAS):
        self.descriptor = descriptor
        self.seed = int(seed)
        self.env_cutoff = float(env_cutoff)
        if self.env_cutoff <= 0:
            raise ValueError(f"env_cutoff must be positive (Angstrom), got {env_cutoff}")
        self.include_metal = bool(include_metal)
        self.lambdas = tuple(float(x) for x in lambdas)
        self.type_numbers = descriptor_numbers(descriptor)
        self.species: list[int] = []
        self.n_kd: int | None = None
        self.fit_: RidgeFit | None = None

    def features(self, atoms: Atoms) -> np.ndarray:
        """The invariant feature vector x of one structure (module docstring)."""
        m, nb, _, r, bm, bnb = environment_bispectrum(self.descriptor, atoms, self.env_cutoff)
        fc = smooth_cutoff(r, self.env_cutoff)
        blocks = [bm] if self.include_metal else []
        for z in self.type_numbers:
            sel = atoms.numbers[nb] == z
            blocks.append(fc[sel] @ bnb[sel] if sel.any() else np.zeros(bnb.shape[1]))
        return np.concatenate(blocks)

    def _design(self, frames) -> np.ndarray:
        return np.stack([self.features(a) for a in frames])

    def fit(self, frames: Sequence[Atoms], targets: dict[str, Any],
            val_frames: Sequence[Atoms] = (), val_targets: dict[str, Any] | None = None,
            log: Log | None = None) -> KDGapRidge:
        frames = list(frames)
        if not frames:
            raise ValueError("no training structures")
        check_species(frames, self.type_numbers, self.kind + " (descriptor)")
        kd = kd_matrix(targets["kd_energies"])
        if len(kd) != len(frames):
            raise ValueError(f"{len(kd)} kd_energies rows for {len(frames)} structures")
        self.species = sorted({int(z) for a in frames for z in a.numbers})
        self.n_kd = kd.shape[1]
        x = self._design(frames)
        xv = yv = None
        val_frames = list(val_frames)
        if val_frames:
            if val_targets is None:
                raise ValueError("val_frames given without val_targets")
            check_species(val_frames, self.species, self.kind)
            kv = kd_matrix(val_targets["kd_energies"], "validation kd_energies")
            if kv.shape[1] != self.n_kd:
                raise ValueError(f"validation kd_energies have {kv.shape[1]} levels, the "
                                 f"training ones {self.n_kd}")
            xv, yv = self._design(val_frames), kv[:, 1:]
        self.fit_ = fit_ridge(x, kd[:, 1:], xv, yv, self.lambdas)
        if log is not None:
            vr = self.fit_.val_rmse
            log(f"{self.kind}: {len(frames)} structures, {self.n_kd - 1} gaps, lambda = "
                f"{self.fit_.lam:.3g}, validation RMSE = "
                f"{vr if vr is not None else float('nan'):.4g} cm-1")
        return self

    def predict(self, frames: Sequence[Atoms], forces: bool = False) -> dict[str, Any]:
        """``{"kd_energies": (n, n_kd) cm-1}``: predicted gaps clipped at 0, sorted, ground 0
        prepended (no forces: ``forces=True`` is refused)."""
        refuse_forces(self, forces)
        frames = list(frames)
        if self.fit_ is None:
            raise RuntimeError("the model is not fitted")
        check_species(frames, self.species, self.kind)
        if not frames:
            return {"kd_energies": np.zeros((0, self.n_kd))}
        gaps = np.sort(np.clip(self.fit_.predict(self._design(frames)), 0.0, None), axis=1)
        return {"kd_energies": np.concatenate([np.zeros((len(frames), 1)), gaps], axis=1)}

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        if self.fit_ is None:
            raise RuntimeError("the model is not fitted")
        meta = {"kind": self.kind, "target": self.target, "env_cutoff": self.env_cutoff,
                "include_metal": self.include_metal, "lambdas": list(self.lambdas),
                "species": [int(z) for z in self.species], "n_kd": int(self.n_kd or 0),
                "descriptor_species": list(self.descriptor.settings.species),
                "n_components": int(self.descriptor.n_components()), "seed": self.seed}
        return meta, self.fit_.as_arrays("fit_")

    @classmethod
    def from_state(cls, descriptor, meta: dict, arrays) -> KDGapRidge:
        check_descriptor(descriptor, meta, cls.kind)
        m = cls(descriptor, seed=meta.get("seed", 0), env_cutoff=meta["env_cutoff"],
                include_metal=meta["include_metal"], lambdas=meta["lambdas"])
        m.species = [int(z) for z in meta["species"]]
        m.n_kd = int(meta["n_kd"])
        m.fit_ = RidgeFit.from_arrays(arrays, "fit_")
        return m


__all__ = ["KDGapRidge", "smooth_cutoff", "metal_environment", "environment_bispectrum",
           "kd_matrix", "descriptor_numbers", "check_descriptor"]
