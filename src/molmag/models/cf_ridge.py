r"""Equivariant spherical-harmonic ridge regression of lanthanide crystal-field parameters
(Nguyen & Lunghi 2022, as in the review ../shared/papers/review-ml-for-smm-zh.md).

For each rank k = 2, 4, 6 the (2k+1) real spherical components of the crystal field are

.. math::

    A^k_m = \sum_{a \in \mathrm{env}} \sum_i c^k_i(Z_a)\, \tilde B_i(a)\,
            \bar C^k_m(\hat r_a)\, f_c(r_a) \qquad (\text{cm}^{-1}),

summed over the atoms a other than the metal within ``env_cutoff`` (Angstrom) of the metal
(:func:`molmag.models.base.metal_index`); ``Btilde(a) = [1, B_1(a), ..., B_F(a)]`` are the
SNAP bispectrum components of atom a with a constant first (so that the model contains the
point-charge-like term sum_a c_0(Z_a) Cbar^k(r_a) f_c(r_a)); ``Cbar^k_m`` the real
Racah-normalised spherical harmonics of the unit vector from the metal to a
(:func:`molmag.physics.cf_spherical.racah_harmonics`); ``f_c(r) = [1 + cos(pi r/r_c)]/2`` the
smooth cutoff of :class:`molmag.models.equivariant_ridge.EquivariantRidge`; c^k_i(Z) ridge
coefficients, one vector per rank and species of a, shared by the 2k+1 components.  There is
no intercept, so the model is linear in the design rows and exactly equivariant: rotating a
structure by R multiplies every rank-k design row, hence the prediction, by the real Wigner
matrix W^k(R).

The components A are those of :mod:`molmag.physics.cf_spherical`: ``A^k_q = B_k^q / c_kq``
with the Stevens (ESO) parameters B_k^q, i.e. ``H_CF = sum_kq A^k_q Tbar^k_q(J)``; they rotate
with the real Wigner matrices.  Training labels (``{"convention": "stevens" | "wybourne" |
"ito", "values": {"k,q": cm-1}}``, what :func:`molmag.labelling.labellers.label_crystal_field`
writes) are converted to Stevens with :func:`molmag.physics.crystal_field.convert_cf_parameters`
(Wybourne with the ion of the structure's metal), then to A; predictions go back the same way
into the training convention (the first label's; later labels in other conventions are
converted to it).  Each rank is one ridge fit of the stacked rows (n (2k+1) rows), lambda
chosen per rank on the validation set (:func:`molmag.models.ridge.fit_ridge`,
``intercept=False``).

:meth:`CFRidge.predict_kd` and :func:`kd_energies_from_cf` feed predicted parameters to the
crystal-field engine (:func:`molmag.physics.crystal_field.solve`) to get Kramers-doublet
energies (cm-1, ground 0).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms

from molmag.models.base import Log, check_species, metal_index, refuse_forces
from molmag.models.invariant_ridge import (
    check_descriptor,
    descriptor_numbers,
    environment_bispectrum,
    smooth_cutoff,
)
from molmag.models.ridge import DEFAULT_LAMBDAS, RidgeFit, fit_ridge
from molmag.physics.cf_spherical import (
    racah_harmonics,
    spherical_from_stevens,
    stevens_from_spherical,
)
from molmag.physics.crystal_field import (
    LANTHANIDE_NUMBERS,
    cf_parameter_set,
    convert_cf_parameters,
    solve,
    values_from_vector,
    vector_from_values,
)
from molmag.physics.stevens import CF_RANKS, cf_keys, lanthanide_ion


def _ion_of(atoms: Atoms, metal: int | None = None):
    """The lanthanide ion of the structure's metal, or None for another metal."""
    m = metal_index(atoms) if metal is None else metal
    z = int(atoms.numbers[m])
    return lanthanide_ion(atoms[m].symbol) if z in LANTHANIDE_NUMBERS else None


def _label_vector(label, ion) -> np.ndarray:
    """Stevens vector (27,) of a label in any convention (Wybourne needs the ion)."""
    if not (isinstance(label, dict) and "convention" in label and "values" in label):
        raise TypeError("cf_parameters targets must be label dicts {'convention': ..., "
                        f"'values': {{'k,q': value}}}}, got {type(label).__name__}")
    stevens = convert_cf_parameters(label, "stevens", ion)
    return vector_from_values(stevens["values"])


def stevens_vectors(params, keys: Sequence[str], convention: str, ions) -> np.ndarray:
    """Rows of parameters (n, K) named ``keys`` in ``convention`` -> Stevens vectors (n, 27)
    in :func:`molmag.physics.stevens.cf_keys` order; ``ions`` one per row (used for
    Wybourne)."""
    params = np.atleast_2d(np.asarray(params, float))
    out = np.empty((len(params), len(cf_keys(CF_RANKS))))
    for i, (row, ion) in enumerate(zip(params, ions)):
        label = cf_parameter_set(dict(zip(keys, row)), convention)
        out[i] = vector_from_values(convert_cf_parameters(label, "stevens", ion)["values"])
    return out


def kd_energies_from_cf(params, keys: Sequence[str], convention: str, ion) -> np.ndarray:
    """Kramers-doublet energies (n, n_kd) cm-1 (ground 0) of the crystal-field parameters
    ``params`` (n, K) named ``keys`` ("k,q") in ``convention``, for one lanthanide ``ion``
    (e.g. "Dy"), by the crystal-field engine (:func:`molmag.physics.crystal_field.solve`)."""
    ion = lanthanide_ion(ion)
    params = np.atleast_2d(np.asarray(params, float))
    vec = stevens_vectors(params, keys, convention, [ion] * len(params))
    if ion.kramers:
        return np.asarray(solve(ion, vec).kd_energies).reshape(len(vec), -1)
    # quasi-doublets of non-Kramers ions are found structure by structure
    rows = [np.asarray(solve(ion, v).kd_energies) for v in vec]
    if len({len(r) for r in rows}) > 1:
        raise ValueError(f"{ion.name}: the structures have different numbers of quasi-doublets")
    return np.stack(rows)


class CFRidge:
    """Equivariant ridge of crystal-field parameters of ranks 2, 4, 6 (module docstring).

    Hyperparameters: ``env_cutoff`` (Angstrom, default 3.5), ``lambdas`` (ridge grid).
    ``seed`` is accepted for the member contract; the fit is deterministic.

    ``targets``: ``{"cf_parameters": list of label dicts}``; ``predict`` returns
    ``{"cf_parameters": (n, 27) cm-1}`` with columns ``self.cf_keys`` ("k,q", k = 2, 4, 6,
    q = -k..k) in ``self.cf_convention`` (the training labels' convention)."""

    kind = "cf-ridge"
    target = "cf_parameters"
    descriptor_type = "snap"
    ranks = CF_RANKS

    def __init__(self, descriptor, *, seed: int = 0, env_cutoff: float = 3.5,
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS):
        self.descriptor = descriptor
        self.seed = int(seed)
        self.env_cutoff = float(env_cutoff)
        if self.env_cutoff <= 0:
            raise ValueError(f"env_cutoff must be positive (Angstrom), got {env_cutoff}")
        self.lambdas = tuple(float(x) for x in lambdas)
        self.type_numbers = descriptor_numbers(descriptor)
        self.species: list[int] = []
        self.cf_keys = [f"{k},{q}" for k, q in cf_keys(self.ranks)]
        self.cf_convention: str | None = None
        self.fits: dict[int, RidgeFit] = {}

    # -- design -----------------------------------------------------------------------------
    def _slices(self) -> dict[int, slice]:
        out, o = {}, 0
        for k in self.ranks:
            out[k] = slice(o, o + 2 * k + 1)
            o += 2 * k + 1
        return out

    def design(self, atoms: Atoms) -> np.ndarray:
        """(27, T (F+1)) equivariant design rows of one structure: row (k, m), block of
        species z: ``sum_{a: Z_a = z} f_c(r_a) Cbar^k_m(r_a) Btilde(a)``."""
        _, nb, vec, r, _, bnb = environment_bispectrum(self.descriptor, atoms, self.env_cutoff)
        nkq = len(self.cf_keys)
        f = bnb.shape[1] if len(nb) else self.descriptor.n_components() + 1
        rows = np.zeros((nkq, len(self.type_numbers) * f))
        if len(nb):
            y = racah_harmonics(vec / r[:, None], self.ranks) * smooth_cutoff(
                r, self.env_cutoff)[:, None]                               # (n_nb, 27)
            for t, z in enumerate(self.type_numbers):
                sel = atoms.numbers[nb] == z
                if sel.any():
                    rows[:, t * f:(t + 1) * f] = y[sel].T @ bnb[sel]
        return rows

    def _designs(self, frames) -> np.ndarray:
        return np.stack([self.design(a) for a in frames])

    def _spherical_targets(self, frames, labels) -> np.ndarray:
        labels = list(labels)
        if len(labels) != len(frames):
            raise ValueError(f"{len(labels)} cf_parameters labels for {len(frames)} structures")
        out = []
        for k, (a, lab) in enumerate(zip(frames, labels)):
            try:
                out.append(_label_vector(lab, _ion_of(a)))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"cf_parameters of structure {k}: {exc}") from exc
        return spherical_from_stevens(np.stack(out), self.ranks)

    # -- member contract --------------------------------------------------------------------
    def fit(self, frames: Sequence[Atoms], targets: dict[str, Any],
            val_frames: Sequence[Atoms] = (), val_targets: dict[str, Any] | None = None,
            log: Log | None = None) -> CFRidge:
        frames = list(frames)
        if not frames:
            raise ValueError("no training structures")
        check_species(frames, self.type_numbers, self.kind + " (descriptor)")
        labels = list(targets["cf_parameters"])
        first = labels[0] if labels else None
        if not (isinstance(first, dict) and "convention" in first):
            raise TypeError("cf_parameters targets must be label dicts with a convention")
        self.cf_convention = cf_parameter_set(first["values"], first["convention"])["convention"]
        self.species = sorted({int(z) for a in frames for z in a.numbers})
        y = self._spherical_targets(frames, labels)
        x = self._designs(frames)
        xv = yv = None
        val_frames = list(val_frames)
        if val_frames:
            if val_targets is None:
                raise ValueError("val_frames given without val_targets")
            check_species(val_frames, self.species, self.kind)
            yv = self._spherical_targets(val_frames, val_targets["cf_parameters"])
            xv = self._designs(val_frames)
        self.fits = {}
        for k, sl in self._slices().items():
            nrow = sl.stop - sl.start
            self.fits[k] = fit_ridge(
                x[:, sl].reshape(-1, x.shape[2]), y[:, sl].reshape(-1, 1),
                None if xv is None else xv[:, sl].reshape(-1, xv.shape[2]),
                None if yv is None else yv[:, sl].reshape(-1, 1),
                self.lambdas, intercept=False)
            if log is not None:
                vr = self.fits[k].val_rmse
                log(f"{self.kind}: rank {k} ({len(frames)} x {nrow} rows), lambda = "
                    f"{self.fits[k].lam:.3g}, validation RMSE of A^{k} = "
                    f"{vr if vr is not None else float('nan'):.4g} cm-1")
        return self

    def predict_spherical(self, frames: Sequence[Atoms]) -> np.ndarray:
        """Real spherical components A (n, 27) cm-1 (:mod:`molmag.physics.cf_spherical`)."""
        frames = list(frames)
        if not self.fits:
            raise RuntimeError("the model is not fitted")
        check_species(frames, self.species, self.kind)
        out = np.zeros((len(frames), len(self.cf_keys)))
        if not frames:
            return out
        x = self._designs(frames)
        for k, sl in self._slices().items():
            nrow = sl.stop - sl.start
            out[:, sl] = self.fits[k].predict(x[:, sl].reshape(-1, x.shape[2])).reshape(
                len(frames), nrow)
        return out

    def predict(self, frames: Sequence[Atoms], forces: bool = False) -> dict[str, Any]:
        """``{"cf_parameters": (n, 27) cm-1}``, columns ``cf_keys``, in ``cf_convention`` (no
        forces: ``forces=True`` is refused)."""
        refuse_forces(self, forces)
        frames = list(frames)
        stevens = stevens_from_spherical(self.predict_spherical(frames), self.ranks)
        if self.cf_convention in (None, "stevens"):
            return {"cf_parameters": stevens}
        out = np.empty_like(stevens)
        for i, (a, row) in enumerate(zip(frames, stevens)):
            lab = cf_parameter_set(values_from_vector(row), "stevens")
            conv = convert_cf_parameters(lab, self.cf_convention, _ion_of(a))["values"]
            out[i] = [conv.get(key, 0.0) for key in self.cf_keys]
        return {"cf_parameters": out}

    def predict_kd(self, frames: Sequence[Atoms], ion=None) -> np.ndarray:
        """Kramers-doublet energies (n, n_kd) cm-1 (ground 0) of the predicted parameters, by
        the crystal-field engine; ``ion`` defaults to each structure's lanthanide metal."""
        frames = list(frames)
        stevens = stevens_from_spherical(self.predict_spherical(frames), self.ranks)
        ions = [lanthanide_ion(ion) if ion is not None else _ion_of(a) for a in frames]
        for k, i in enumerate(ions):
            if i is None:
                raise ValueError(f"structure {k} ({frames[k].get_chemical_formula()}) has no "
                                 "lanthanide metal; give the ion")
        out = []
        for i, row in zip(ions, stevens):
            out.append(np.asarray(solve(i, row).kd_energies))
        if len({len(r) for r in out}) > 1:
            raise ValueError("the structures have ions with different numbers of doublets; "
                             "predict them separately")
        return np.stack(out) if out else np.zeros((0, 0))

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        if not self.fits:
            raise RuntimeError("the model is not fitted")
        meta = {"kind": self.kind, "target": self.target, "env_cutoff": self.env_cutoff,
                "lambdas": list(self.lambdas), "species": [int(z) for z in self.species],
                "cf_keys": list(self.cf_keys), "cf_convention": self.cf_convention,
                "ranks": list(self.ranks),
                "descriptor_species": list(self.descriptor.settings.species),
                "n_components": int(self.descriptor.n_components()), "seed": self.seed}
        arrays: dict[str, np.ndarray] = {}
        for k, fit in self.fits.items():
            arrays.update(fit.as_arrays(f"k{k}_"))
        return meta, arrays

    @classmethod
    def from_state(cls, descriptor, meta: dict, arrays) -> CFRidge:
        check_descriptor(descriptor, meta, cls.kind)
        if tuple(meta["ranks"]) != tuple(cls.ranks):
            raise ValueError(f"ranks {meta['ranks']} differ from {cls.ranks}")
        m = cls(descriptor, seed=meta.get("seed", 0), env_cutoff=meta["env_cutoff"],
                lambdas=meta["lambdas"])
        m.species = [int(z) for z in meta["species"]]
        m.cf_convention = meta["cf_convention"]
        m.fits = {k: RidgeFit.from_arrays(arrays, f"k{k}_") for k in cls.ranks}
        return m


__all__ = ["CFRidge", "kd_energies_from_cf", "stevens_vectors"]
