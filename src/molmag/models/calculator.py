"""Any trained molmag model (committee) as an ASE calculator.

Property names are molmag's (ARCHITECTURE.md), each with its uncertainty as ``<property>_std``:
a standard deviation in the property's own unit, the committee spread (Zaverkin et al. 2022,
eq. 12) calibrated on the model's validation split (:mod:`molmag.models.calibration`; a model
file without a calibration gives the raw spread, and ``calculator.model.calibration_note``
says so):

* D-tensor models: ``zfs_tensor`` (3x3, cm-1), ``zfs_D``, ``zfs_E`` (cm-1);
* energy models: ``energy`` (eV), ``forces`` (eV/Angstrom);
* Kramers-doublet models: ``kd_energies`` (cm-1, ground = 0);
* crystal-field models: ``cf_parameters`` ({"convention": ..., "values": {"k,q": B}}, cm-1),
  with ``cf_parameters_std`` in the same form.

The metal is ``metal_index`` when given, else ``atoms.info['metal_index']``, else the
structure's only d/f-block atom.  Every structure passes
:func:`molmag.io.validation.validate_structure` first (non-finite coordinates, atoms on top of
each other: a :class:`~molmag.io.errors.StructureError`, never a number).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from molmag.models.committee import Committee

PROPERTIES = {
    "zfs_tensor": ["zfs_tensor", "zfs_D", "zfs_E", "zfs_tensor_std", "zfs_D_std", "zfs_E_std"],
    "energy": ["energy", "forces", "energy_std", "forces_std", "free_energy"],
    "kd_energies": ["kd_energies", "kd_energies_std"],
    "cf_parameters": ["cf_parameters", "cf_parameters_std"],
}


class ModelCalculator(Calculator):
    """ASE calculator of a trained model file or :class:`~molmag.models.committee.Committee`."""

    def __init__(self, model: Committee | str | Path, metal_index: int | None = None,
                 **kwargs):
        self.model = model if isinstance(model, Committee) else Committee.load(model)
        self.implemented_properties = list(PROPERTIES[self.model.target])
        super().__init__(**kwargs)
        self.metal_index = metal_index

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        from molmag.io.validation import validate_structure

        super().calculate(atoms, properties or self.implemented_properties[:1], system_changes)
        a = self.atoms.copy()
        validate_structure(a)
        if self.metal_index is not None:
            a.info["metal_index"] = int(self.metal_index)
        target = self.model.target
        wanted = set(properties or self.implemented_properties[:1])
        if target == "energy" and not wanted & {"forces", "forces_std"}:
            out = self.model.predict([a], forces=False)  # SNAP skips its force rows
            e = float(out["energy"][0])
            self.results = {"energy": e, "free_energy": e,
                            "energy_std": float(out["energy_std"][0])}
            return
        out = self.model.predict([a])
        res: dict = {}
        if target == "zfs_tensor":
            for k in PROPERTIES[target]:
                v = out[k][0]
                res[k] = np.asarray(v) if np.ndim(v) else float(v)
        elif target == "energy":
            res = {"energy": float(out["energy"][0]), "free_energy": float(out["energy"][0]),
                   "energy_std": float(out["energy_std"][0]),
                   "forces": np.asarray(out["forces"][0]),
                   "forces_std": np.asarray(out["forces_std"][0])}
        elif target == "kd_energies":
            res = {"kd_energies": np.asarray(out["kd_energies"][0]),
                   "kd_energies_std": np.asarray(out["kd_energies_std"][0])}
        else:
            keys, conv = out["cf_keys"], out["cf_convention"]
            res = {"cf_parameters": {"convention": conv, "values": dict(
                       zip(keys, map(float, out["cf_parameters"][0])))},
                   "cf_parameters_std": {"convention": conv, "values": dict(
                       zip(keys, map(float, out["cf_parameters_std"][0])))}}
        self.results = res


__all__ = ["ModelCalculator", "PROPERTIES"]
