"""Committees of molmag models: training, prediction with uncertainty, and model files.

A :class:`Committee` holds ``n_members`` members of one kind (see :mod:`molmag.models.base`
for the member contract; :data:`KINDS` lists the kinds) and reports the mean prediction and
the query-by-committee uncertainty of Zaverkin et al. 2022, eq. 12,

    sigma_ens = sqrt( 1/N_ens sum_i (y_i - ybar)^2 ),

for every predicted quantity (``<property>_std``): per tensor element and for D and E, for the
energy and per force component, per Kramers-doublet level, per crystal-field parameter.
Members differ by their training subset (a random ``subsample`` fraction each; 0.9 by default
for the deterministic ridge models, all data for the networks) and by their seed (``seed + k``
for member k: the networks' initial weights and batches).  A committee of identical members
reports exactly zero uncertainty.

A model file (``.npz``, no pickles) holds every member's arrays and a JSON header with the
model kind, target, hyperparameters, the descriptor type and settings, the training
configuration, metrics and the molmag version.  Loading with other descriptor settings, or a
file that is not a molmag model, is refused with a message that says so; members refuse
structures with elements they never saw.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms

import molmag
from molmag.io.atomic import read_npz_model, write_npz_atomic
from molmag.models.base import Log
from molmag.physics.zfs import zfs_from_tensor

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
    """Descriptor settings of a kind for these elements: SNAP 2J = 8 with a 3.5 Angstrom
    reach (the Lunghi-Sanvito SI) for the bispectrum models, 3.1 Angstrom for the SNAP
    energy (the best of 2.5-4.5 on [Co(pdms)2]2-, benchmarks/energy_cf_models.py); Gaussian moments with the paper's R = 5, 7 Gaussians and r_cut = 8.0 Angstrom for
    tensors, 6.5 Angstrom for energies (Zaverkin et al. 2022)."""
    cls = member_class(kind)
    species = list(dict.fromkeys(species))
    if cls.descriptor_type == "snap":
        from molmag.descriptors.bispectrum import SNAPSettings

        rcut = 3.1 if cls.target == "energy" else 3.5
        return SNAPSettings(species=tuple(species), rcutfac=rcut).as_dict()
    from molmag.descriptors.gaussian_moments import GaussianMoments

    r_cut = 6.5 if cls.target == "energy" else 8.0
    return GaussianMoments(species, r_cut=r_cut).settings()


class Committee:
    """``n_members`` models of one kind sharing one descriptor specification."""

    def __init__(self, kind: str, descriptor_settings: dict, *, n_members: int = 3,
                 subsample: float | None = None, seed: int = 0, config: dict | None = None,
                 **hyper):
        cls = member_class(kind)
        if n_members < 1:
            raise ValueError("a committee needs at least one member")
        if subsample is None:
            subsample = 0.9 if kind in DETERMINISTIC else 1.0
        if not 0 < subsample <= 1:
            raise ValueError("subsample must be in (0, 1]")
        self.kind, self.member_cls = kind, cls
        self.target, self.descriptor_type = cls.target, cls.descriptor_type
        self.descriptor_settings = dict(descriptor_settings)
        self.n_members, self.subsample, self.seed = int(n_members), float(subsample), int(seed)
        self.hyper = dict(hyper)
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
        rng = np.random.default_rng(self.seed)
        self.members = []
        for k in range(self.n_members):
            if self.n_members == 1 or self.subsample >= 1:
                idx = np.arange(len(frames))
            else:
                n = max(2, int(round(self.subsample * len(frames))))
                idx = np.sort(rng.choice(len(frames), n, replace=False))
            sub_t = {key: _take(v, idx) for key, v in targets.items()}
            extra = dict(member_hyper[k]) if member_hyper else {}
            m = self.member_cls(self.descriptor, seed=self.seed + k, **self.hyper, **extra)
            if log:
                log(f"member {k + 1}/{self.n_members}: {self.kind} on {len(idx)} structures")
            m.fit([frames[i] for i in idx], sub_t, list(val_frames), val_targets,
                  **({"log": log} if log else {}))
            self.members.append(m)
        return self

    # -- prediction ---------------------------------------------------------------------------
    def predict_members(self, frames: Sequence[Atoms], forces: bool = True
                        ) -> list[dict[str, Any]]:
        if not self.members:
            raise ValueError("the model is not trained")
        frames = list(frames)
        if not forces:  # energy only, where the member can skip its forces (SNAP)
            return [m.predict(frames, forces=False)
                    if "forces" in inspect.signature(m.predict).parameters else m.predict(frames)
                    for m in self.members]
        return [m.predict(frames) for m in self.members]

    def predict(self, frames: Sequence[Atoms], forces: bool = True) -> dict[str, Any]:
        """Mean predictions and their committee standard deviations (eq. 12).

        zfs_tensor: ``zfs_tensor`` (n,3,3), ``zfs_D``, ``zfs_E`` (n,) cm-1 (D and E of the
        mean tensor), and ``*_std`` (D and E spread over the members' own D and E);
        energy: ``energy`` (n,) eV, ``forces`` list of (N_i,3) eV/Angstrom, and ``*_std``;
        kd_energies: ``kd_energies`` (n, n_kd) cm-1 and ``kd_energies_std``;
        cf_parameters: ``cf_parameters`` (n, K) cm-1 with ``cf_keys`` and ``cf_convention``,
        and ``cf_parameters_std``.  ``forces=False`` (energy models): energies only, where
        computing the forces can be skipped (``forces`` is then absent)."""
        preds = self.predict_members(frames, forces=forces or self.target != "energy")
        out: dict[str, Any] = {}
        if self.target == "zfs_tensor":
            t = np.stack([p["zfs_tensor"] for p in preds])
            mean, t_std = committee_stats(t)
            d = np.array([[zfs_from_tensor(x).D for x in member] for member in t])
            e = np.array([[zfs_from_tensor(x).E for x in member] for member in t])
            pm = [zfs_from_tensor(x) for x in mean]
            out = {"zfs_tensor": mean, "zfs_tensor_std": t_std,
                   "zfs_D": np.array([p.D for p in pm]), "zfs_D_std": committee_stats(d)[1],
                   "zfs_E": np.array([p.E for p in pm]), "zfs_E_std": committee_stats(e)[1]}
        elif self.target == "energy":
            e_mean, e_std = committee_stats(np.stack([p["energy"] for p in preds]))
            out = {"energy": e_mean, "energy_std": e_std}
            if not forces and any("forces" not in p for p in preds):
                return out
            out.update({"forces": [], "forces_std": []})
            for n in range(len(e_mean)):
                f_mean, f_std = committee_stats(np.stack([p["forces"][n] for p in preds]))
                out["forces"].append(f_mean)
                out["forces_std"].append(f_std)
        else:
            key = self.target
            mean, std = committee_stats(np.stack([p[key] for p in preds]))
            out = {key: mean, f"{key}_std": std}
            if key == "cf_parameters":
                out["cf_keys"] = list(self.members[0].cf_keys)
                out["cf_convention"] = self.members[0].cf_convention
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
        c = cls(header["kind"], stored, n_members=header["n_members"],
                subsample=header["subsample"], seed=header["seed"], config=header["config"],
                **header["hyper"])
        c.metrics = header.get("metrics", {})
        with np.load(path, allow_pickle=False) as data:
            for k, meta in enumerate(header["members"]):
                prefix = f"m{k}/"
                arrays = {name[len(prefix):]: data[name] for name in data.files
                          if name.startswith(prefix)}
                c.members.append(c.member_cls.from_state(c.descriptor, meta, arrays))
        c.header = header
        return c


def _take(v, idx):
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return v[idx]
    return [v[i] for i in idx]


def load_model(path: str | Path, descriptor_settings: dict | None = None) -> Committee:
    """Load a model file written by :meth:`Committee.save` (any kind)."""
    return Committee.load(path, descriptor_settings)


__all__ = ["Committee", "KINDS", "DETERMINISTIC", "member_class", "committee_stats",
           "make_descriptor", "default_descriptor_settings", "load_model"]
