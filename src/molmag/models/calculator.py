"""Any trained molmag model (committee) as an ASE calculator.

Property names are molmag's (ARCHITECTURE.md; registered with ASE in
:mod:`molmag.physics.ase_properties`), one set per target
(:attr:`molmag.models.targets.TargetSpec.results`).  Each quantity comes with

* ``<property>_std``: a standard deviation in the property's own unit, the committee spread
  (Zaverkin et al. 2022, eq. 12) calibrated on the model's validation split
  (:mod:`molmag.models.calibration`; a model file without a calibration gives the raw spread,
  and ``calculator.model.calibration_note`` says so);
* ``<property>_ensemble``: the members' own (raw, uncalibrated) predictions, the member axis
  first, as apax and MACE give them (their mean is the property, up to rounding).

Per target:

* D-tensor models: ``zfs_tensor`` (3x3, cm-1), ``zfs_D``, ``zfs_E`` (cm-1);
* energy models: ``energy``, ``free_energy`` (eV), ``forces`` (eV/Angstrom);
* Kramers-doublet models: ``kd_energies`` (cm-1, ground = 0);
* crystal-field models: ``cf_parameters``, a (27,) float array (cm-1) in the fixed (k, q)
  order :data:`molmag.physics.ase_properties.CF_PARAMETER_KEYS`, in the model's convention
  ``calculator.cf_convention``; :meth:`ModelCalculator.cf_parameters_dict` (or
  :func:`molmag.physics.ase_properties.cf_parameters_dict`) gives the label dict
  ``{"convention": ..., "values": {"k,q": B}}``.

The metal is ``metal_index`` when given, else ``atoms.info['metal_index']``, else the
structure's only d/f-block atom.  Every structure passes
:func:`molmag.io.validation.validate_structure` first.  Bad input (non-finite coordinates,
atoms on top of each other, no metal, elements the model never saw) raises
:class:`~molmag.physics.ase_properties.CalculatorInputError` (ASE's ``InputError`` and a
``ValueError``), never a number; non-finite predictions raise
:class:`~molmag.physics.ase_properties.CalculatorFailed` (ASE's ``CalculationFailed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from molmag.models.committee import Committee
from molmag.models.targets import TARGETS, target_spec
from molmag.physics.ase_properties import (
    CalculatorFailed,
    CalculatorInputError,
    cf_parameters_dict,
)

#: target -> the calculator's ``implemented_properties`` (the spec's ``results``).
PROPERTIES = {name: list(spec.results) for name, spec in TARGETS.items()}


class ModelCalculator(Calculator):
    """ASE calculator of a trained model file or :class:`~molmag.models.committee.Committee`."""

    def __init__(self, model: Committee | str | Path, metal_index: int | None = None,
                 **kwargs):
        self.model = model if isinstance(model, Committee) else Committee.load(model)
        self.spec = target_spec(self.model.target)
        self.implemented_properties = list(self.spec.results)
        super().__init__(**kwargs)
        self.metal_index = metal_index

    @property
    def cf_convention(self) -> str | None:
        """Convention of ``cf_parameters`` (crystal-field models; None for others)."""
        if not self.model.members:
            return None
        return getattr(self.model.members[0], "cf_convention", None)

    def cf_parameters_dict(self, atoms: Atoms | None = None) -> dict[str, Any]:
        """``cf_parameters`` of ``atoms`` as the label dict ``{"convention", "values":
        {"k,q": B}}`` (cm-1) in :attr:`cf_convention`."""
        return cf_parameters_dict(self.get_property("cf_parameters", atoms),
                                  self.cf_convention or "stevens")

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        from molmag.io.validation import validate_structure

        wanted = list(properties or self.implemented_properties[:1])
        super().calculate(atoms, wanted, system_changes)
        a = self.atoms.copy()
        if self.metal_index is not None:
            a.info["metal_index"] = int(self.metal_index)
        spec = self.spec
        # SNAP skips its force rows when no force property is wanted
        forces = spec.forces and any(p.startswith("forces") for p in wanted)
        try:
            validate_structure(a)
        except ValueError as exc:
            raise CalculatorInputError(str(exc)) from exc
        try:
            out = self.model.predict([a], forces=forces, ensemble=True)
        except ValueError as exc:  # no metal, unseen elements; or non-finite member output
            failed = "non-finite" in str(exc) or isinstance(exc, np.linalg.LinAlgError)
            raise (CalculatorFailed if failed else CalculatorInputError)(str(exc)) from exc
        res: dict[str, Any] = {}
        for key in self.implemented_properties:
            if key in out:
                v = out[key][0]
                res[key] = np.asarray(v, float) if np.ndim(v) else float(v)
        for alias, key in spec.aliases:
            if key in res:
                res[alias] = res[key]
        bad = [k for k, v in res.items() if not np.all(np.isfinite(v))]
        if bad:
            raise CalculatorFailed(f"the {self.model.kind} model gave non-finite "
                                   f"{', '.join(bad)} for {a.get_chemical_formula()}")
        self.results = res

    def batch_forces(self, atoms: Atoms, positions) -> np.ndarray:
        """Forces (n, N, 3), eV/Å, of ``atoms`` moved to each of the frames ``positions``
        (n, N, 3) Å: the ``forces`` that :meth:`get_forces` gives frame by frame (the
        committee mean), to rounding, from one batched call of
        :meth:`~molmag.models.committee.Committee.mean_forces` (snap-energy: one LAMMPS
        ``pair_style snap`` run for all frames).  Finite-difference users
        (:func:`molmag.chem.sampling.normal_modes`) call it when a calculator has it.

        Energy models only (:class:`~ase.calculators.calculator.PropertyNotImplementedError`
        otherwise).  The structure (elements, ``info``, and every frame's geometry) passes
        :func:`molmag.io.validation.validate_structure` as in :meth:`calculate`; bad input
        raises :class:`CalculatorInputError`, non-finite forces :class:`CalculatorFailed`.
        ``self.results`` is left as it was."""
        from ase.calculators.calculator import PropertyNotImplementedError

        from molmag.io.validation import validate_structure

        if "forces" not in self.implemented_properties:
            raise PropertyNotImplementedError(f"{self.model.kind} models predict no forces")
        a = atoms.copy()
        a.calc = None
        a.set_constraint()
        if self.metal_index is not None:
            a.info["metal_index"] = int(self.metal_index)
        pos = np.asarray(positions, dtype=float)
        if pos.ndim != 3 or pos.shape[1:] != (len(a), 3):
            raise CalculatorInputError(f"positions have shape {pos.shape}, expected "
                                       f"(n, {len(a)}, 3)")
        try:
            for p in pos:
                a.positions = p
                validate_structure(a)
        except ValueError as exc:
            raise CalculatorInputError(str(exc)) from exc
        try:
            f = self.model.mean_forces(a, pos)
        except ValueError as exc:  # unseen elements; or non-finite member output
            failed = "non-finite" in str(exc) or isinstance(exc, np.linalg.LinAlgError)
            raise (CalculatorFailed if failed else CalculatorInputError)(str(exc)) from exc
        if not np.all(np.isfinite(f)):
            raise CalculatorFailed(f"the {self.model.kind} model gave non-finite forces for "
                                   f"{a.get_chemical_formula()}")
        return f


__all__ = ["ModelCalculator", "PROPERTIES"]
