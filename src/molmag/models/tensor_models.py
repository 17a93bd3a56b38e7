"""Tensor models as molmag uses them: built from a descriptor spec, trained in committees,
saved to one file, and used as ASE calculators.

A committee (``n_members``, 3 by default) reports the mean prediction and the query-by-committee
uncertainty of Zaverkin et al. 2022, eq. 12,

    sigma_ens = sqrt( 1/N_ens sum_i (y_i - ybar)^2 ),

per tensor element (``zfs_tensor_std``) and for D and E (``zfs_D_std``, ``zfs_E_std``).  Ridge
members differ by the training subset (a random ``subsample`` fraction each, seeded); a
committee of identical members reports zero uncertainty.

A model file (``.npz``, no pickles) holds the arrays of every member and a JSON header with the
model kind, its hyperparameters, the descriptor settings, the training configuration and the
molmag version; loading with a descriptor of other settings, or predicting for species the
model never saw, is refused with a message that says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

import molmag
from molmag.models.covariant_ridge import CovariantRidge
from molmag.models.equivariant_ridge import EquivariantRidge
from molmag.physics.elements import find_metal_index
from molmag.physics.zfs import zfs_from_tensor

KINDS = {"covariant-ridge": CovariantRidge, "equivariant-ridge": EquivariantRidge}


def committee_stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and eq. 12 standard deviation over the first axis (members).  The mean is taken
    as y_0 + mean(y_i - y_0), so identical members give exactly zero spread."""
    dev = y - y[0]
    mean = y[0] + dev.mean(axis=0)
    return mean, np.sqrt(np.mean((y - mean) ** 2, axis=0))


def snap_descriptor(settings: dict):
    from molmag.descriptors.bispectrum import SNAPDescriptor, SNAPSettings

    return SNAPDescriptor(SNAPSettings.from_dict(settings))


class TensorCommittee:
    """``n_members`` tensor models of one kind sharing one descriptor."""

    def __init__(self, kind: str, descriptor_settings: dict, *, n_members: int = 3,
                 subsample: float = 0.9, seed: int = 0, config: dict | None = None,
                 **hyper):
        if kind not in KINDS:
            raise ValueError(f"unknown tensor model {kind!r}; choose one of {', '.join(KINDS)}")
        if n_members < 1:
            raise ValueError("a committee needs at least one member")
        if not 0 < subsample <= 1:
            raise ValueError("subsample must be in (0, 1]")
        self.kind = kind
        self.descriptor_settings = dict(descriptor_settings)
        self.n_members, self.subsample, self.seed = int(n_members), float(subsample), int(seed)
        self.hyper = hyper
        self.config = dict(config or {})
        self._descriptor = None
        self.members: list = []

    @property
    def descriptor(self):
        if self._descriptor is None:
            self._descriptor = snap_descriptor(self.descriptor_settings)
        return self._descriptor

    def fit(self, frames: Sequence[Atoms], tensors, metals, val_frames=(), val_tensors=(),
            val_metals=()) -> TensorCommittee:
        frames, tensors, metals = list(frames), np.asarray(tensors, float), list(metals)
        rng = np.random.default_rng(self.seed)
        self.members = []
        for k in range(self.n_members):
            if self.n_members == 1 or self.subsample >= 1:
                idx = np.arange(len(frames))
            else:
                idx = np.sort(rng.choice(len(frames), max(2, int(round(self.subsample *
                                                                       len(frames)))),
                                         replace=False))
            m = KINDS[self.kind](self.descriptor, **self.hyper)
            m.fit([frames[i] for i in idx], tensors[idx], [metals[i] for i in idx],
                  val_frames, val_tensors, val_metals)
            self.members.append(m)
        return self

    def predict_members(self, frames, metals) -> np.ndarray:
        """(n_members, n, 3, 3) tensors, cm-1."""
        if not self.members:
            raise ValueError("the model is not trained")
        return np.stack([m.predict(frames, metals) for m in self.members])

    def predict(self, frames, metals) -> dict[str, np.ndarray]:
        """Mean tensor, D, E and their committee standard deviations (eq. 12), cm-1."""
        t = self.predict_members(frames, metals)
        d = np.array([[zfs_from_tensor(x).D for x in member] for member in t])
        e = np.array([[zfs_from_tensor(x).E for x in member] for member in t])
        mean, t_std = committee_stats(t)
        pm = [zfs_from_tensor(x) for x in mean]
        return {"zfs_tensor": mean, "zfs_tensor_std": t_std,
                "zfs_D": np.array([p.D for p in pm]), "zfs_D_std": committee_stats(d)[1],
                "zfs_E": np.array([p.E for p in pm]), "zfs_E_std": committee_stats(e)[1]}

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        header = {"format": "molmag-model", "version": 1, "molmag": molmag.__version__,
                  "kind": self.kind, "descriptor": {"type": "snap",
                                                     "settings": self.descriptor_settings},
                  "n_members": self.n_members, "subsample": self.subsample, "seed": self.seed,
                  "hyper": self.hyper, "config": self.config, "members": []}
        arrays: dict[str, np.ndarray] = {}
        for k, m in enumerate(self.members):
            meta, arr = m.state()
            header["members"].append(meta)
            arrays.update({f"m{k}/{name}": np.asarray(v) for name, v in arr.items()})
        arrays["header"] = np.array(json.dumps(header))
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path, descriptor_settings: dict | None = None) -> TensorCommittee:
        path = Path(path)
        try:
            data = np.load(path, allow_pickle=False)
            header = json.loads(str(data["header"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: not a molmag model file ({exc})") from None
        if header.get("format") != "molmag-model":
            raise ValueError(f"{path}: not a molmag model file")
        if header["kind"] not in KINDS:
            raise ValueError(f"{path}: model kind {header['kind']!r} is not a tensor model")
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
        for k, meta in enumerate(header["members"]):
            prefix = f"m{k}/"
            arrays = {name[len(prefix):]: data[name] for name in data.files
                      if name.startswith(prefix)}
            c.members.append(KINDS[header["kind"]].from_state(c.descriptor, meta, arrays))
        c.header = header
        return c


class TensorModelCalculator(Calculator):
    """ASE calculator of a trained tensor model (committee).

    Properties: ``zfs_tensor`` (3x3, cm-1), ``zfs_D``, ``zfs_E`` (cm-1) and their committee
    uncertainties ``zfs_tensor_std``, ``zfs_D_std``, ``zfs_E_std`` (eq. 12, cm-1).  The metal is
    ``metal_index`` or the structure's only d/f-block atom."""

    implemented_properties = ["zfs_tensor", "zfs_D", "zfs_E", "zfs_tensor_std", "zfs_D_std",
                              "zfs_E_std"]

    def __init__(self, model: TensorCommittee | str | Path, metal_index: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.model = model if isinstance(model, TensorCommittee) else TensorCommittee.load(model)
        self.metal_index = metal_index

    def calculate(self, atoms=None, properties=("zfs_tensor",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        m = self.metal_index if self.metal_index is not None else find_metal_index(self.atoms)
        if m is None:
            raise ValueError(f"{self.atoms.get_chemical_formula()} has no metal atom")
        out = self.model.predict([self.atoms], [m])
        self.results = {k: (v[0] if np.ndim(v[0]) else float(v[0])) for k, v in out.items()}


__all__ = ["TensorCommittee", "TensorModelCalculator", "KINDS", "snap_descriptor",
           "committee_stats"]
