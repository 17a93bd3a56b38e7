"""molmag's learning targets, one :class:`TargetSpec` each, in one table (:data:`TARGETS`).

Every stage that depends on what a model learns reads the target's spec instead of branching
on its name: the training data (:func:`molmag.training.data.targets_of`: which labels a row
needs, their shape), the committee (:meth:`molmag.models.committee.Committee.predict`: the
mean, the derived scalars, the spreads and which of them are calibrated, the members'
individual predictions), the errors used for calibration
(:func:`molmag.models.committee.reference_errors`), the metrics and the headline numbers
(:mod:`molmag.training.metrics`), the parity plots (:mod:`molmag.training.plots`), the
learning-curve unit and the prediction rows (:mod:`molmag.training.run`) and the properties of
the ASE calculator (:class:`molmag.models.calculator.ModelCalculator`).

=================  ==========  =====  ============================  =========================
target             per         unit   derived / extra quantities    calibrated spreads
                   structure
=================  ==========  =====  ============================  =========================
``zfs_tensor``     (3, 3)      cm-1   ``zfs_D``, ``zfs_E`` (cm-1)   tensor, D, E
``energy``         ()          eV     ``forces`` (N, 3) eV/Å        energy, forces
``kd_energies``    (n_kd,)     cm-1   -                             levels above the ground
``cf_parameters``  (27,)       cm-1   -                             all 27 B_kq
=================  ==========  =====  ============================  =========================

Every predicted quantity ``q`` comes with ``q_std`` (the committee spread of Zaverkin et al.
2022, eq. 12, mapped by its calibration where the target calibrates it) and, on request
(``Committee.predict(..., ensemble=True)``; always in the ASE calculator), ``q_ensemble``:
the members' own raw predictions, with the member axis after the structure axis.

Adding a target
---------------
A new target (forces spreads for MD, spin-phonon couplings dD/dq, g tensors, ...) is added
here, once:

1. write a ``TargetSpec`` and add it to :data:`TARGETS`: its dataset label(s), the shape and
   unit of one structure's value, the scalars derived from it (``derive``, e.g. D and E of a
   tensor), whether members also predict forces, which quantities the committee calibrates,
   the parity-plot panels, the headline numbers and the metrics function
   (``"module:function"`` with the signature ``(pred, refs, frames) -> dict``; see
   :func:`molmag.training.metrics.zfs_metrics`);
2. register the calculator results (:attr:`TargetSpec.results`: the quantities, their
   ``_std`` and ``_ensemble``) with ASE in :mod:`molmag.physics.ase_properties`;
3. write the member class (``target = "<name>"``, see :mod:`molmag.models.base`) and add its
   kind to :data:`molmag.models.committee.KINDS`.

Nothing else branches on the target's name: training, calibration, evaluation, plots,
``molmag predict`` and the calculator follow the spec.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from ase import Atoms

#: unit of forces, the per-atom quantity of targets with ``forces=True``.
FORCES_UNIT = "eV/Å"


@dataclass(frozen=True)
class ParityPanel:
    """One panel of a parity plot: prediction ``key`` against its reference.

    ``label`` may name string entries of the prediction (``"{cf_convention}"``); values and
    the reference are multiplied by ``scale`` (e.g. 1000: eV -> meV) after subtracting the
    mean reference when ``centred``; ``std`` colours the points by the calibrated
    ``<key>_std`` (scaled alike)."""

    key: str
    label: str
    unit: str
    std: bool = False
    scale: float = 1.0
    centred: bool = False


@dataclass(frozen=True)
class TargetSpec:
    """Everything molmag needs to know about one learning target (see the module docstring).

    ``name``          the target, also the dataset label and the main predicted array;
    ``shape``         shape of one structure's value (str: a size that varies between
                      systems, e.g. ``"n_kd"``);
    ``unit``          unit of the value and of its derived scalars;
    ``labels``        dataset labels a row needs to be used for training;
    ``derived``       names of the scalars derived per structure from the value;
    ``derive``        ``(n, *shape) array -> {derived name: (n,) array}``, or None;
    ``forces``        members also predict forces (N, 3) eV/Å, and targets carry them when
                      every row has them;
    ``member_info``   member attributes copied into every prediction (crystal fields:
                      ``cf_keys``, ``cf_convention``);
    ``calibrated``    quantities whose committee spread gets a calibration map of its own
                      (:mod:`molmag.models.calibration`), fitted on the errors of
                      :func:`molmag.models.committee.reference_errors`;
    ``ground_columns`` leading columns fixed by definition (Kramers doublets: the ground
                      level, 0), left out of errors, calibration and plots;
    ``align``         for labels that are not plain arrays (crystal-field dicts in any
                      convention): ``(labels, pred, frames) -> (n, K)`` reference array in the
                      prediction's columns and convention; targets keep such labels as given;
    ``to_label``      ``(one structure's value, pred) -> label`` form of ``molmag predict``
                      rows (crystal fields: ``{"convention", "values"}``), or None;
    ``aliases``       extra calculator results equal to a quantity (``free_energy``);
    ``metrics``       ``"module:function"``: ``(pred, refs, frames) -> dict`` of error
                      metrics, ``refs`` from :func:`reference_values`;
    ``headline``      (column, "path.in.metrics") of the numbers a table shows; a missing
                      path is skipped;
    ``curve_unit``    unit of the learning-curve axis;
    ``panels``        the parity-plot panels (:class:`ParityPanel`);
    ``coverage``      (quantity, short name) pairs, in order of preference, of the quantity
                      whose calibration (coverage, Spearman rho) the metrics tables of
                      ``molmag train``/``evaluate``/``learning-curve`` show: the first one
                      the calibration has (energy models: the forces, else the energy);
    ``count_name``    what the entries of one value are called in messages;
    ``snap_rcutfac``, ``gm_r_cut``  default descriptor reach (Angstrom) of models of the
                      target (SNAP bispectrum, Gaussian moments).
    """

    name: str
    shape: tuple[int | str, ...]
    unit: str
    labels: tuple[str, ...]
    metrics: str
    headline: tuple[tuple[str, str], ...]
    curve_unit: str
    panels: tuple[ParityPanel, ...]
    calibrated: tuple[str, ...]
    derived: tuple[str, ...] = ()
    derive: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None
    forces: bool = False
    member_info: tuple[str, ...] = ()
    ground_columns: int = 0
    align: Callable[[Sequence[Any], dict[str, Any], Sequence[Atoms]], np.ndarray] | None = None
    to_label: Callable[[np.ndarray, dict[str, Any]], Any] | None = None
    aliases: tuple[tuple[str, str], ...] = ()
    count_name: str = "values"
    coverage: tuple[tuple[str, str], ...] = ()
    snap_rcutfac: float = 3.5
    gm_r_cut: float = 8.0

    @property
    def quantities(self) -> tuple[str, ...]:
        """The predicted quantities, each with a ``_std`` (and ``_ensemble``)."""
        return (self.name, *self.derived, *(("forces",) if self.forces else ()))

    @property
    def results(self) -> tuple[str, ...]:
        """The ASE calculator results of a model of this target (its
        ``implemented_properties``; the first is what a bare ``calculate`` computes)."""
        q = self.quantities
        return (*q, *(a for a, _ in self.aliases), *(f"{k}_std" for k in q),
                *(f"{k}_ensemble" for k in q))

    def unit_of(self, quantity: str) -> str:
        """Unit of one of :attr:`quantities` (or its ``_std``/``_ensemble``)."""
        base = quantity.removesuffix("_std").removesuffix("_ensemble")
        return FORCES_UNIT if base == "forces" else self.unit


def resolve(path: str) -> Callable[..., Any]:
    """The function ``"module:function"`` names (imported on first use)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


# -- the target-specific pieces ----------------------------------------------------------------
def _zfs_scalars(tensors: np.ndarray) -> dict[str, np.ndarray]:
    """D and E (cm-1) of each tensor of an (n, 3, 3) array."""
    from molmag.physics.zfs import zfs_DE

    t = np.asarray(tensors, float)
    d, e = zfs_DE(t.reshape(-1, 3, 3))
    return {"zfs_D": d.reshape(t.shape[:-2]), "zfs_E": e.reshape(t.shape[:-2])}


def _cf_align(labels: Sequence[Any], pred: dict[str, Any], frames: Sequence[Atoms]
              ) -> np.ndarray:
    """Crystal-field labels as an (n, K) array in the prediction's ``cf_keys`` and
    ``cf_convention`` (a label in another convention is converted, with the structure's ion
    where Wybourne parameters need it)."""
    from molmag.training.metrics import cf_vector

    return cf_vector(labels, pred["cf_keys"], pred["cf_convention"], frames)


def _cf_label(values: np.ndarray, pred: dict[str, Any]) -> dict[str, Any]:
    return {"convention": pred["cf_convention"],
            "values": dict(zip(pred["cf_keys"], map(float, np.ravel(values))))}


TARGETS: dict[str, TargetSpec] = {
    "zfs_tensor": TargetSpec(
        name="zfs_tensor", shape=(3, 3), unit="cm-1", labels=("zfs_tensor",),
        derived=("zfs_D", "zfs_E"), derive=_zfs_scalars,
        calibrated=("zfs_tensor", "zfs_D", "zfs_E"),
        metrics="molmag.training.metrics:zfs_metrics",
        headline=(("RMSE D_ij", "D_ij.rmse"), ("RMSE D", "D.rmse"), ("RMSE E", "E.rmse"),
                  ("axis angle", "easy_axis_angle_deg.mean")),
        curve_unit="cm-1",
        panels=(ParityPanel("zfs_tensor", "D_ij", "cm-1", std=True),
                ParityPanel("zfs_D", "D", "cm-1", std=True)),
        coverage=(("zfs_D", "D"),), count_name="tensor elements"),
    "energy": TargetSpec(
        name="energy", shape=(), unit="eV", labels=("energy",), forces=True,
        calibrated=("energy", "forces"), aliases=(("free_energy", "energy"),),
        metrics="molmag.training.metrics:energy_metrics",
        headline=(("RMSE E meV/atom", "energy_meV_per_atom.rmse"),
                  ("RMSE F eV/A", "forces_eV_per_A.rmse")),
        curve_unit="meV/atom | eV/Å",
        panels=(ParityPanel("energy", "E - <E_ref>", "meV", std=True, scale=1000.0,
                            centred=True),
                ParityPanel("forces", "F", FORCES_UNIT)),
        coverage=(("forces", "F"), ("energy", "E")), snap_rcutfac=3.1, gm_r_cut=6.5),
    "kd_energies": TargetSpec(
        name="kd_energies", shape=("n_kd",), unit="cm-1", labels=("kd_energies",),
        calibrated=("kd_energies",), ground_columns=1,
        metrics="molmag.training.metrics:kd_metrics",
        headline=(("RMSE levels", "all_levels.rmse"), ("RMSE E01", "gap_E01.rmse")),
        curve_unit="cm-1",
        panels=(ParityPanel("kd_energies", "Kramers-doublet energies", "cm-1"),),
        coverage=(("kd_energies", "KD"),), count_name="Kramers doublets"),
    "cf_parameters": TargetSpec(
        name="cf_parameters", shape=(27,), unit="cm-1", labels=("cf_parameters",),
        calibrated=("cf_parameters",), member_info=("cf_keys", "cf_convention"),
        align=_cf_align, to_label=_cf_label,
        metrics="molmag.training.metrics:cf_metrics",
        headline=(("RMSE B_kq", "all.rmse"),), curve_unit="cm-1",
        panels=(ParityPanel("cf_parameters", "B_kq ({cf_convention})", "cm-1"),),
        coverage=(("cf_parameters", "B_kq"),), count_name="crystal-field parameters"),
}


def target_spec(name: str) -> TargetSpec:
    """The spec of target ``name``; a ``ValueError`` listing the known targets otherwise."""
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown target {name!r}; known targets: "
                         f"{', '.join(TARGETS)}") from None


def quantity_unit(quantity: str) -> str:
    """Unit of any predicted quantity of any target (``""`` when none has it)."""
    for spec in TARGETS.values():
        if quantity.removesuffix("_std").removesuffix("_ensemble") in spec.quantities:
            return spec.unit_of(quantity)
    return ""


def reference_values(target: str, pred: dict[str, Any], targets: dict[str, Any],
                     frames: Sequence[Atoms]) -> dict[str, Any]:
    """The references of every quantity of a prediction, aligned with it: the target's
    array (labels converted by ``align``), its derived scalars and, for targets with forces,
    ``forces`` (a list of (N_i, 3) arrays, or None when the targets have none)."""
    spec = target_spec(target)
    raw = targets[spec.name]
    main = (spec.align(raw, pred, frames) if spec.align is not None
            else np.asarray(raw, float))
    out: dict[str, Any] = {spec.name: main}
    if spec.derive is not None:
        out.update(spec.derive(main))
    if spec.forces:
        out["forces"] = targets.get("forces")
    return out


__all__ = ["TargetSpec", "ParityPanel", "TARGETS", "target_spec", "reference_values",
           "quantity_unit", "resolve", "FORCES_UNIT"]
