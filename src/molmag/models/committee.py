"""Committees of molmag models: training, prediction with uncertainty, and model files.

A :class:`Committee` holds ``n_members`` members of one kind (see :mod:`molmag.models.base`
for the member contract; :data:`KINDS` lists the kinds) and reports the mean prediction and
the query-by-committee uncertainty of Zaverkin et al. 2022, eq. 12,

    sigma_ens = sqrt( 1/N_ens sum_i (y_i - ybar)^2 ),

for every predicted quantity (``<property>_std``): per tensor element and for D and E, for the
energy and per force component, per Kramers-doublet level, per crystal-field parameter.
Members differ for a reason (``resample``):

* ``"bootstrap"`` (the default of the deterministic ridge kinds): member k trains on a bootstrap
  resample of the training rows (n draws with replacement, seed ``seed + k``), so the spread
  estimates the sampling variance of the fit (Efron's bootstrap; Lakshminarayanan et al. 2017
  found it the right kind of diversity for models with no random initialisation);
* ``"none"`` (the default of the networks): every member trains on all rows; members differ by
  their initial weights and the order of their mini-batches (seed ``seed + k``), the deep
  ensemble of Lakshminarayanan et al. 2017 and the committee of Zaverkin et al. 2022;
* ``"subsample"``: a random ``subsample`` fraction of the rows without replacement (molmag
  <= 0.2's only choice; 0.9 gave members so alike that their spread was 7.5x too small).

A committee of identical members reports exactly zero raw spread.

The raw spread says how much the members disagree, not how large the error is: after training,
:meth:`Committee.calibrate` fits, on the validation split, one map from raw spread to a
calibrated standard deviation per predicted quantity (:mod:`molmag.models.calibration`), stored
in the model file; every ``<property>_std`` that :meth:`Committee.predict` returns is the
calibrated one.  Model files without a calibration load with the identity map (scale 1) and
say so (``calibration_note``).

A model file (``.npz``, no pickles) holds every member's arrays and a JSON header with the
model kind, target, hyperparameters, the descriptor type and settings, the training
configuration, metrics and the molmag version.  Loading with other descriptor settings, or a
file that is not a molmag model, is refused with a message that says so; members refuse
structures with elements they never saw.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms

import molmag
from molmag.io.atomic import read_npz_model, write_npz_atomic
from molmag.models.base import Log
from molmag.models.calibration import (
    Calibration,
    CalibrationSet,
    calibration_report,
    fit_calibration,
)
from molmag.models.domain import TrainingDomain
from molmag.models.hyperparameters import check_hyperparameters
from molmag.models.targets import TARGETS, reference_values, target_spec

#: model kind -> "module:Class"; the module is imported when the kind is first used.
KINDS: dict[str, str] = {
    "covariant-ridge": "molmag.models.covariant_ridge:CovariantRidge",
    "equivariant-ridge": "molmag.models.equivariant_ridge:EquivariantRidge",
    "gmnn-tensor": "molmag.models.gmnn:GMNNTensor",
    "gmnn-energy": "molmag.models.gmnn:GMNNEnergy",
    "snap-energy": "molmag.models.snap_energy:SNAPEnergyRidge",
    "kd-gap-ridge": "molmag.models.invariant_ridge:KDGapRidge",
    "cf-ridge": "molmag.models.cf_ridge:CFRidge",
}
#: kinds whose fit is deterministic: committee members differ only by their data subset.
DETERMINISTIC = {"covariant-ridge", "equivariant-ridge", "snap-energy", "kd-gap-ridge",
                 "cf-ridge"}
FORMAT = "molmag-model"
FORMAT_VERSION = 2
RESAMPLING = ("bootstrap", "subsample", "none")
#: the quantities a target's committee calibrates (keys of ``predict`` with a ``_std``;
#: :attr:`molmag.models.targets.TargetSpec.calibrated`).
CALIBRATED = {name: spec.calibrated for name, spec in TARGETS.items()}


def member_class(kind: str):
    """The class of a model kind (imported on first use)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def committee_stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and eq. 12 standard deviation over the first axis (members).  The mean is taken
    as y_0 + mean(y_i - y_0), so identical members give exactly zero spread."""
    y = np.asarray(y, float)
    dev = y - y[0]
    mean = y[0] + dev.mean(axis=0)
    return mean, np.sqrt(np.mean((y - mean) ** 2, axis=0))


class CachedDescriptor:
    """A SNAP descriptor that remembers what it computed for the structures it has seen
    (keyed by atomic numbers and positions, bit for bit): the bispectrum (``compute``) and the
    linear-SNAP design rows (``compute_snap_design``), so the members of a committee and the
    evaluation of every split compute each structure once.  Holds at most ``max_bytes`` of
    arrays (oldest dropped first); every other attribute is the wrapped descriptor's."""

    def __init__(self, descriptor, max_bytes: float = 1.5e9):
        self._inner = descriptor
        self._cache: dict[tuple, Any] = {}
        self._bytes = 0
        self.max_bytes = float(max_bytes)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @staticmethod
    def _key(atoms: Atoms, what: str) -> tuple:
        return (what, np.ascontiguousarray(atoms.numbers, np.int64).tobytes(),
                np.ascontiguousarray(atoms.positions, np.float64).tobytes())

    def _remember(self, key, value, size: int):
        while self._cache and self._bytes + size > self.max_bytes:
            old_key = next(iter(self._cache))
            old = self._cache.pop(old_key)
            self._bytes -= sum(np.asarray(x).nbytes for x in
                               (old if isinstance(old, tuple) else (old,)))
        if size <= self.max_bytes:
            self._cache[key] = value
            self._bytes += size
        return value

    def compute(self, atoms: Atoms, centers=None, species=None) -> np.ndarray:
        if centers is not None or species is not None:
            return self._inner.compute(atoms, centers=centers, species=species)
        key = self._key(atoms, "B")
        hit = self._cache.get(key)
        if hit is None:
            hit = self._inner.compute(atoms)
            hit.setflags(write=False)
            self._remember(key, hit, hit.nbytes)
        return hit

    def compute_snap_design(self, atoms: Atoms, species=None):
        if species is not None:
            return self._inner.compute_snap_design(atoms, species=species)
        key = self._key(atoms, "design")
        hit = self._cache.get(key)
        if hit is None:
            hit = tuple(self._inner.compute_snap_design(atoms))
            for x in hit:
                np.asarray(x).setflags(write=False)
            self._remember(key, hit, sum(np.asarray(x).nbytes for x in hit))
        return hit


def make_descriptor(descriptor_type: str, settings: dict):
    """The object members receive as ``descriptor``: a shared SNAPDescriptor for ``snap``
    (with a cache, :class:`CachedDescriptor`), the settings dict itself for
    ``gaussian-moments`` (trainable, one per member)."""
    if descriptor_type == "snap":
        from molmag.descriptors.bispectrum import SNAPDescriptor, SNAPSettings

        return CachedDescriptor(SNAPDescriptor(SNAPSettings.from_dict(settings)))
    if descriptor_type == "gaussian-moments":
        return dict(settings)
    raise ValueError(f"unknown descriptor type {descriptor_type!r}")


def default_descriptor_settings(kind: str, species: Sequence[str]) -> dict:
    """Descriptor settings of a kind for these elements (the reach is the target's,
    :attr:`~molmag.models.targets.TargetSpec.snap_rcutfac` and ``gm_r_cut``): SNAP 2J = 8
    with a 3.5 Angstrom reach (the Lunghi-Sanvito SI) for the bispectrum models, 3.1 Angstrom
    for the SNAP energy (the best of 2.5-4.5 on [Co(pdms)2]2-,
    benchmarks/energy_cf_models.py); Gaussian moments with the paper's R = 5, 7 Gaussians and
    r_cut = 8.0 Angstrom for tensors, 6.5 Angstrom for energies (Zaverkin et al. 2022)."""
    cls = member_class(kind)
    spec = target_spec(cls.target)
    species = list(dict.fromkeys(species))
    if cls.descriptor_type == "snap":
        from molmag.descriptors.bispectrum import SNAPSettings

        return SNAPSettings(species=tuple(species), rcutfac=spec.snap_rcutfac).as_dict()
    from molmag.descriptors.gaussian_moments import GaussianMoments

    return GaussianMoments(species, r_cut=spec.gm_r_cut).settings()


class Committee:
    """``n_members`` models of one kind sharing one descriptor specification."""

    def __init__(self, kind: str, descriptor_settings: dict, *, n_members: int = 3,
                 subsample: float | None = None, seed: int = 0, config: dict | None = None,
                 resample: str | None = None, **hyper):
        cls = member_class(kind)
        if n_members < 1:
            raise ValueError("a committee needs at least one member")
        if resample is None:  # an explicit subsample fraction keeps its meaning (1: all rows)
            resample = (("subsample" if subsample < 1 else "none") if subsample is not None
                        else "bootstrap" if kind in DETERMINISTIC else "none")
        if resample not in RESAMPLING:
            raise ValueError(f"resample must be one of {', '.join(RESAMPLING)}, not "
                             f"{resample!r}")
        if subsample is None:
            subsample = 0.9 if resample == "subsample" else 1.0
        if not 0 < subsample <= 1:
            raise ValueError("subsample must be in (0, 1]")
        self.kind, self.member_cls = kind, cls
        self.target, self.descriptor_type = cls.target, cls.descriptor_type
        self.descriptor_settings = dict(descriptor_settings)
        self.n_members, self.subsample, self.seed = int(n_members), float(subsample), int(seed)
        self.resample = resample
        self.calibration = CalibrationSet()
        self.calibration_note = "not calibrated (no validation split yet)"
        self.domain: TrainingDomain | None = None
        # the kind's settings model checks names, types and ranges now, with one line naming
        # the key (molmag.models.hyperparameters), not a TypeError inside fit
        self.hyper = check_hyperparameters(kind, dict(hyper))
        self.config = dict(config or {})
        self.metrics: dict[str, Any] = {}
        self.header: dict[str, Any] = {}
        self._descriptor = None
        self.members: list = []

    @property
    def descriptor(self):
        if self._descriptor is None:
            self._descriptor = make_descriptor(self.descriptor_type, self.descriptor_settings)
        return self._descriptor

    def __repr__(self) -> str:
        return (f"Committee({self.kind!r}, target={self.target!r}, n_members={self.n_members}, "
                f"trained={bool(self.members)})")

    # -- training -----------------------------------------------------------------------------
    def fit(self, frames: Sequence[Atoms], targets: dict[str, Any],
            val_frames: Sequence[Atoms] = (), val_targets: dict[str, Any] | None = None,
            log: Log | None = None, member_hyper: Sequence[dict] | None = None) -> Committee:
        """Train every member (on its own ``subsample`` of ``frames``, with seed ``seed+k``).
        ``member_hyper`` (one dict per member) adds per-member options, e.g. checkpoints."""
        frames = list(frames)
        self.members = []
        for k in range(self.n_members):
            idx = self.member_rows(k, len(frames))
            sub_t = {key: _take(v, idx) for key, v in targets.items()}
            extra = dict(member_hyper[k]) if member_hyper else {}
            m = self.member_cls(self.descriptor, seed=self.seed + k, **self.hyper, **extra)
            if log:
                log(f"member {k + 1}/{self.n_members}: {self.kind} on {len(idx)} structures")
            m.fit([frames[i] for i in idx], sub_t, list(val_frames), val_targets,
                  **({"log": log} if log else {}))
            self.members.append(m)
        self.calibration = CalibrationSet()
        self.calibration_note = "not calibrated (no validation split yet)"
        self.domain = TrainingDomain.fit(frames)
        return self

    def flags(self, frames: Sequence[Atoms], pred: dict[str, Any]) -> list[list[str]]:
        """Per structure, why its prediction should not be trusted (empty: no reason known):
        atoms outside the training domain (:class:`~molmag.models.domain.TrainingDomain`)
        and calibrated sigmas above the calibration's threshold (twice the 95th percentile of
        the validation sigmas)."""
        out = []
        for n, a in enumerate(frames):
            why = list(self.domain.problems(a)) if self.domain is not None else []
            for key in target_spec(self.target).calibrated:
                cal = self.calibration.get(key)
                if f"{key}_std" not in pred or not np.isfinite(cal.threshold):
                    continue
                s = float(np.max(pred[f"{key}_std"][n]))
                if s > cal.threshold:
                    why.append(f"{key} sigma {s:.3g} > {cal.threshold:.3g} (uncertain)")
            out.append(why)
        return out

    def member_rows(self, k: int, n: int) -> np.ndarray:
        """Indices of the ``n`` training rows member ``k`` trains on (``resample``)."""
        if self.n_members == 1 or self.resample == "none" or (
                self.resample == "subsample" and self.subsample >= 1):
            return np.arange(n)
        rng = np.random.default_rng([self.seed, k])
        if self.resample == "bootstrap":
            idx = np.sort(rng.integers(0, n, n))
            if len(np.unique(idx)) < 2:  # a resample of one distinct row cannot be fitted
                idx = np.arange(n)
            return idx
        m = max(2, int(round(self.subsample * n)))
        return np.sort(rng.choice(n, m, replace=False))

    # -- calibration --------------------------------------------------------------------------
    def calibrate(self, frames: Sequence[Atoms], targets: dict[str, Any],
                  method: str = "conformal") -> dict[str, Calibration]:
        """Fit the calibration of every quantity (``TargetSpec.calibrated``) on held-out
        ``frames`` and their reference ``targets`` (the validation split; never the test
        split): raw committee spreads against the errors of the committee mean.  Returns the
        calibrations, which :meth:`predict` applies from now on and :meth:`save` stores."""
        frames = list(frames)
        if not frames:
            raise ValueError("calibration needs held-out structures (a validation split)")
        raw = self.predict(frames, calibrated=False)
        errs = reference_errors(self.target, raw, targets, frames)
        self.calibration = CalibrationSet({
            key: fit_calibration(e, s, method) for key, (e, s) in errs.items()})
        self.calibration_note = (f"calibrated ({method}) on {len(frames)} validation "
                                 "structures")
        return dict(self.calibration.by_key)

    def calibration_metrics(self, pred: dict[str, Any], targets: dict[str, Any],
                            frames: Sequence[Atoms]) -> dict[str, dict[str, Any]]:
        """Coverage of +-1 and +-2 sigma, Spearman rho(|error|, sigma), NLL and the
        calibration's scale, per quantity, of calibrated predictions ``pred`` against
        ``targets`` (see :func:`molmag.models.calibration.calibration_report`)."""
        errs = reference_errors(self.target, pred, targets, list(frames))
        return {key: calibration_report(e, s, self.calibration.get(key))
                for key, (e, s) in errs.items()}

    # -- prediction ---------------------------------------------------------------------------
    def predict_members(self, frames: Sequence[Atoms], forces: bool = True
                        ) -> list[dict[str, Any]]:
        """Every member's own prediction (the member protocol, :mod:`molmag.models.base`);
        ``forces`` applies to targets with forces only (energy models)."""
        if not self.members:
            raise ValueError("the model is not trained")
        frames = list(frames)
        forces = bool(forces) and target_spec(self.target).forces
        batched = getattr(self.member_cls, "committee_predict", None)
        if batched is not None:  # a kind that prepares the frames once for all members
            return list(batched(self.members, frames, forces))
        return [m.predict(frames, forces=forces) for m in self.members]

    def mean_forces(self, atoms: Atoms, positions: np.ndarray) -> np.ndarray:
        """Committee-mean forces (n, N, 3), eV/Å, of the molecule ``atoms`` (elements, atom
        order, ``info``) at each of the frames ``positions`` (n, N, 3) Å, in one batched
        call: the ``forces`` that :meth:`predict` gives for those frames, to rounding.

        Energy models only.  A member kind with a ``committee_forces(members, atoms,
        positions)`` classmethod evaluates all frames its own way (snap-energy: one LAMMPS
        ``pair_style snap`` run of the mean coefficients); other kinds predict the frames as
        one list."""
        if not target_spec(self.target).forces:
            raise ValueError(f"{self.kind} models predict no forces")
        if not self.members:
            raise ValueError("the model is not trained")
        pos = np.asarray(positions, dtype=float)
        if pos.ndim != 3 or pos.shape[1:] != (len(atoms), 3):
            raise ValueError(f"positions have shape {pos.shape}, expected (n, {len(atoms)}, 3)")
        if len(pos) == 0:
            return np.empty(pos.shape)
        batched = getattr(self.member_cls, "committee_forces", None)
        if batched is not None:
            return np.asarray(batched(self.members, atoms, pos), dtype=float)
        frames = []
        for p in pos:
            a = atoms.copy()
            a.calc = None
            a.positions = p
            frames.append(a)
        preds = self.predict_members(frames, forces=True)
        out = np.empty(pos.shape)
        for n in range(len(frames)):
            out[n] = committee_stats(np.stack([p["forces"][n] for p in preds]))[0]
        return out

    def predict(self, frames: Sequence[Atoms], forces: bool = True,
                calibrated: bool = True, ensemble: bool = False) -> dict[str, Any]:
        """Mean predictions and their standard deviations: the committee spread of eq. 12
        mapped by the calibration of each quantity (``calibrated=False``: the raw spread).

        Per target (:mod:`molmag.models.targets`): the target's array (mean over members),
        its derived scalars (of the mean; their spread over the members' own values) and,
        for energy models, ``forces``, each with ``<quantity>_std``:
        zfs_tensor: ``zfs_tensor`` (n,3,3), ``zfs_D``, ``zfs_E`` (n,) cm-1;
        energy: ``energy`` (n,) eV, ``forces`` list of (N_i,3) eV/Angstrom;
        kd_energies: ``kd_energies`` (n, n_kd) cm-1;
        cf_parameters: ``cf_parameters`` (n, K) cm-1 with ``cf_keys`` and ``cf_convention``.
        ``forces=False`` (energy models): energies only, where computing the forces can be
        skipped (``forces`` is then absent).  ``ensemble=True`` adds every quantity's raw
        member predictions as ``<quantity>_ensemble``, the member axis second: (n,
        n_members, ...) arrays, for forces a list of (n_members, N_i, 3) arrays."""
        spec = target_spec(self.target)
        preds = self.predict_members(frames, forces=forces)
        key = spec.name
        y = np.stack([p[key] for p in preds])             # (n_members, n, *shape)
        mean, std = committee_stats(y)
        out: dict[str, Any] = {key: mean, f"{key}_std": std}
        if ensemble:
            out[f"{key}_ensemble"] = np.moveaxis(y, 0, 1)
        if spec.derive is not None:
            members = [spec.derive(member) for member in y]
            for name, value in spec.derive(mean).items():
                ys = np.stack([d[name] for d in members])
                out.update({name: value, f"{name}_std": committee_stats(ys)[1]})
                if ensemble:
                    out[f"{name}_ensemble"] = np.moveaxis(ys, 0, 1)
        if spec.forces and all("forces" in p for p in preds):
            out.update({"forces": [], "forces_std": []})
            if ensemble:
                out["forces_ensemble"] = []
            for n in range(len(mean)):
                f = np.stack([p["forces"][n] for p in preds])
                f_mean, f_std = committee_stats(f)
                out["forces"].append(f_mean)
                out["forces_std"].append(f_std)
                if ensemble:
                    out["forces_ensemble"].append(f)
        for attr in spec.member_info:
            v = getattr(self.members[0], attr)
            out[attr] = list(v) if isinstance(v, (list, tuple)) else v
        if calibrated:
            for q in spec.calibrated:
                if f"{q}_std" in out:
                    cal = self.calibration.get(q)
                    s = out[f"{q}_std"]
                    out[f"{q}_std"] = ([cal.apply(x) for x in s] if isinstance(s, list)
                                       else cal.apply(s))
        return out

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model file (``.npz``: arrays + JSON header); returns the path."""
        path = Path(path)
        if not self.members:
            raise ValueError("the model is not trained; nothing to save")
        header = {"format": FORMAT, "version": FORMAT_VERSION, "molmag": molmag.__version__,
                  "kind": self.kind, "target": self.target,
                  "descriptor": {"type": self.descriptor_type,
                                 "settings": self.descriptor_settings},
                  "n_members": self.n_members, "subsample": self.subsample, "seed": self.seed,
                  "resample": self.resample, "calibration": self.calibration.as_dict(),
                  "domain": None if self.domain is None else self.domain.as_dict(),
                  "hyper": self.hyper, "config": self.config, "metrics": self.metrics,
                  "members": []}
        arrays: dict[str, np.ndarray] = {}
        for k, m in enumerate(self.members):
            meta, arr = m.state()
            header["members"].append(meta)
            arrays.update({f"m{k}/{name}": np.asarray(v) for name, v in arr.items()})
        arrays["header"] = np.array(json.dumps(header))
        return write_npz_atomic(path, arrays)

    @staticmethod
    def read_header(path: str | Path) -> dict:
        return read_npz_model(path, FORMAT, FORMAT_VERSION, "model", arrays=False)[0]

    @classmethod
    def load(cls, path: str | Path, descriptor_settings: dict | None = None) -> Committee:
        """Read a model file; with ``descriptor_settings``, refuse a model trained with other
        settings (naming the settings that differ)."""
        path = Path(path)
        header = cls.read_header(path)
        if header["kind"] not in KINDS:
            raise ValueError(f"{path}: model kind {header['kind']!r} is unknown to this molmag "
                             f"(it knows {', '.join(KINDS)})")
        stored = header["descriptor"]["settings"]
        if descriptor_settings is not None and dict(descriptor_settings) != stored:
            diff = sorted(k for k in set(stored) | set(descriptor_settings)
                          if stored.get(k) != descriptor_settings.get(k))
            raise ValueError(f"{path}: descriptor settings differ from the model's "
                             f"({', '.join(diff)}); a model only works with the descriptor it "
                             "was trained with")
        # files of molmag <= 0.2 have no "resample": their members were subsamples
        c = cls(header["kind"], stored, n_members=header["n_members"],
                subsample=header["subsample"], seed=header["seed"], config=header["config"],
                resample=header.get("resample", "subsample"), **header["hyper"])
        c.metrics = header.get("metrics", {})
        c.calibration = CalibrationSet.from_dict(header.get("calibration"))
        c.domain = TrainingDomain.from_dict(header.get("domain"))
        c.calibration_note = (
            "calibrated on the validation split" if c.calibration.fitted else
            f"{path}: the model file has no calibration; uncertainties are the raw committee "
            "spread (scale 1), which usually underestimates the error -- retrain, or run "
            "`molmag calibrate`")
        with np.load(path, allow_pickle=False) as data:
            for k, meta in enumerate(header["members"]):
                prefix = f"m{k}/"
                arrays = {name[len(prefix):]: data[name] for name in data.files
                          if name.startswith(prefix)}
                c.members.append(c.member_cls.from_state(c.descriptor, meta, arrays))
        c.header = header
        return c


def reference_errors(target: str, pred: dict[str, Any], targets: dict[str, Any],
                     frames: Sequence[Atoms]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Errors (prediction - reference) and predicted sigmas of every calibrated quantity
    of ``target`` (:attr:`~molmag.models.targets.TargetSpec.calibrated`), flattened:
    ``{key: (errors, sigmas)}``.  References come from
    :func:`molmag.models.targets.reference_values` (D and E of the reference tensors by
    :func:`molmag.physics.zfs.zfs_from_tensor`, crystal-field references converted to the
    prediction's convention); columns fixed by definition (the ground Kramers doublet) are
    left out.  Rows whose reference lacks a quantity (energies without forces) are
    skipped."""
    spec = target_spec(target)
    refs = reference_values(target, pred, targets, frames)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in spec.calibrated:
        ref = refs.get(key)
        if ref is None or key not in pred:
            continue
        if isinstance(pred[key], list):               # per-atom arrays (forces)
            pairs = [(p - np.asarray(r, float), s) for p, r, s in
                     zip(pred[key], ref, pred[f"{key}_std"]) if r is not None]
            if pairs:
                out[key] = (np.concatenate([np.ravel(e) for e, _ in pairs]),
                            np.concatenate([np.ravel(s) for _, s in pairs]))
            continue
        p, r, s = np.asarray(pred[key]), np.asarray(ref, float), np.asarray(pred[f"{key}_std"])
        if key == spec.name and spec.ground_columns:
            p, r, s = (x[:, spec.ground_columns:] for x in (p, r, s))
        out[key] = (np.ravel(p - r), np.ravel(s))
    return out


def _take(v, idx):
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return v[idx]
    return [v[i] for i in idx]


def load_model(path: str | Path, descriptor_settings: dict | None = None) -> Committee:
    """Load a model file written by :meth:`Committee.save` (any kind)."""
    return Committee.load(path, descriptor_settings)


__all__ = ["Committee", "KINDS", "DETERMINISTIC", "RESAMPLING", "CALIBRATED", "member_class",
           "committee_stats", "reference_errors",
           "make_descriptor", "default_descriptor_settings", "load_model"]
