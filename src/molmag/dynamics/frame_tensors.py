"""The magnetic quantities of MD frames: a D-tensor (or Kramers-doublet / crystal-field)
committee evaluated on a batch of frames at once, or a reference engine frame by frame.

Each frame gets, in ``atoms.info`` (cm-1; the trajectory format of
:mod:`molmag.dynamics.md_files`): ``zfs_tensor``/``zfs_tensor_std`` (9 floats, row-major),
``zfs_D``, ``zfs_E``, ``zfs_D_std``, ``zfs_E_std`` for D-tensor models and the ligand-field
engine; ``kd_energies`` (+ ``_std``) or ``cf_parameters`` (+ ``_std``, with
``cf_keys``/``cf_convention``) for Dy models.  ``_std`` is the committee spread mapped by the
model's calibration (:mod:`molmag.models.calibration`); a reference engine has none.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms

TENSOR_TARGETS = ("zfs_tensor", "kd_energies", "cf_parameters")


class TensorSource:
    """A committee (``Committee``) or an ASE calculator with ``zfs_tensor``."""

    def __init__(self, model=None, calculator=None, label: str = ""):
        if (model is None) == (calculator is None):
            raise ValueError("a tensor source needs exactly one of a model or a calculator")
        if model is not None and model.target not in TENSOR_TARGETS:
            raise ValueError(f"the tensor model is a {model.target} model; MD frames need a "
                             f"model of {', '.join(TENSOR_TARGETS)}")
        if calculator is not None and "zfs_tensor" not in calculator.implemented_properties:
            raise ValueError(f"{type(calculator).__name__} gives no zfs_tensor")
        self.model, self.calculator, self.label = model, calculator, label

    def check_structure(self, atoms: Atoms) -> None:
        """Refuse a model trained on other elements (another metal, another ligand set)."""
        if self.model is None or self.model.domain is None:
            return
        unseen = [p for p in self.model.domain.problems(atoms, limit=1000)
                  if "never seen" in p]
        if unseen:
            raise ValueError(f"tensor model {self.label}: the structure has elements it was "
                             f"never trained on ({unseen[0]}{', ...' if len(unseen) > 1 else ''})")

    def annotate(self, frames: Sequence[Atoms]) -> None:
        """Write the quantities into each frame's ``info`` (in place)."""
        frames = list(frames)
        if not frames:
            return
        if self.model is not None:
            rows = committee_rows(self.model, frames)
        else:
            rows = [engine_row(self.calculator, a) for a in frames]
        for a, row in zip(frames, rows):
            a.info.update(row)


def committee_rows(model, frames: list[Atoms]) -> list[dict[str, Any]]:
    pred = model.predict(frames)
    rows: list[dict[str, Any]] = [{} for _ in frames]
    if model.target == "zfs_tensor":
        for n, r in enumerate(rows):
            r["zfs_tensor"] = np.asarray(pred["zfs_tensor"][n], float).reshape(9)
            r["zfs_tensor_std"] = np.asarray(pred["zfs_tensor_std"][n], float).reshape(9)
            for k in ("zfs_D", "zfs_E", "zfs_D_std", "zfs_E_std"):
                r[k] = float(pred[k][n])
    else:
        key = model.target
        for n, r in enumerate(rows):
            r[key] = np.asarray(pred[key][n], float)
            r[f"{key}_std"] = np.asarray(pred[f"{key}_std"][n], float)
            if key == "cf_parameters":
                r["cf_keys"] = " ".join(pred["cf_keys"])
                r["cf_convention"] = pred["cf_convention"]
    return rows


def engine_row(calculator, atoms: Atoms) -> dict[str, Any]:
    from molmag.physics.zfs import zfs_from_tensor

    a = atoms.copy()
    a.info = dict(atoms.info)
    t = np.asarray(calculator.get_property("zfs_tensor", a), float).reshape(3, 3)
    p = zfs_from_tensor(t)
    return {"zfs_tensor": t.reshape(9), "zfs_D": float(p.D), "zfs_E": float(p.E)}


__all__ = ["TensorSource", "TENSOR_TARGETS", "committee_rows", "engine_row"]
