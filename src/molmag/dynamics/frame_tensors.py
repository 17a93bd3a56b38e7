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

from molmag.models.targets import TARGETS, target_spec

#: targets whose quantities annotate MD frames: every target but the potentials (targets
#: whose members predict forces)
TENSOR_TARGETS = tuple(name for name, spec in TARGETS.items() if not spec.forces)


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
    """One ``info`` row per frame from the target's spec: the value (flattened) and its
    ``_std``, the derived scalars and their ``_std``, then the member info (sequences joined
    by spaces)."""
    spec = target_spec(model.target)
    pred = model.predict(frames)
    rows: list[dict[str, Any]] = [{} for _ in frames]
    for n, r in enumerate(rows):
        r[spec.name] = np.asarray(pred[spec.name][n], float).reshape(-1)
        r[f"{spec.name}_std"] = np.asarray(pred[f"{spec.name}_std"][n], float).reshape(-1)
        for k in (*spec.derived, *(f"{d}_std" for d in spec.derived)):
            r[k] = float(pred[k][n])
        for k in spec.member_info:
            v = pred[k]
            r[k] = v if isinstance(v, str) else " ".join(v)
    return rows


def engine_row(calculator, atoms: Atoms) -> dict[str, Any]:
    """The ``info`` row of a reference engine's D tensor: the tensor (flattened) and the
    scalars the ``zfs_tensor`` spec derives from it (no ``_std``)."""
    spec = target_spec("zfs_tensor")
    a = atoms.copy()
    a.info = dict(atoms.info)
    t = np.asarray(calculator.get_property(spec.name, a), float).reshape(3, 3)
    row: dict[str, Any] = {spec.name: t.reshape(9)}
    if spec.derive is not None:
        row.update({k: float(v[0]) for k, v in spec.derive(t[None]).items()})
    return row


__all__ = ["TensorSource", "TENSOR_TARGETS", "committee_rows", "engine_row"]
