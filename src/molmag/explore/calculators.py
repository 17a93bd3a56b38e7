"""Structures and calculators named in YAML, for ``molmag optimize``, ``molmag scan`` and the
campaigns.

A **structure** is either built (``{builder: co-pdms, relax: true}``, any name
``molmag build --help`` lists) or read from a file (``{file: start.xyz, index: -1, charge: -2,
multiplicity: 4}``).

A **calculator** is one of

* ``{model: path/model.npz}`` — a trained molmag committee
  (:class:`~molmag.models.calculator.ModelCalculator`: ``energy`` or ``zfs_D`` with its
  calibrated committee sigma ``*_std``, see molmag.models.calibration);
* ``{xtb: {accuracy: 1.0, ...}}`` — GFN2-xTB (tblite), energy and forces (eV, eV/Angstrom);
* ``{ligand_field: {ion: null, ...}}`` — molmag's ligand-field engine, ``zfs_D`` (cm-1).  The
  donors default to those of the start structure, so a displaced structure keeps its donor set;
* a list of the above — one calculator whose properties come from the first member that
  implements each (``[{model: energy.npz}, {model: tensor.npz}]``: ML energy and ML D).

Errors are ASE's: a property no member implements raises
``ase.calculators.calculator.PropertyNotImplementedError``; a member's failure that is not
already an ASE calculator error (a numerical error of a reference engine) raises
:class:`~molmag.physics.ase_properties.CalculatorFailed` (ASE's ``CalculationFailed``)
naming the member and the property.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import (
    Calculator,
    CalculatorError,
    PropertyNotImplementedError,
    all_changes,
)
from pydantic import Field, model_validator

from molmag.config_files import StrictModel as _Strict
from molmag.physics.ase_properties import CalculatorFailed


class StructureSpec(_Strict):
    """The start structure: exactly one of ``builder`` or ``file``."""

    builder: str | None = None
    ligand: str | None = Field(None, description="ligand SMILES (dy-h2o5l2 builder)")
    relax: bool = True
    fmax: float = Field(0.05, gt=0, description="relaxation threshold, eV/Angstrom")
    file: str | None = None
    index: int = Field(-1, description="frame of the file (default: the last)")
    charge: int | None = None
    multiplicity: int | None = None
    metal_index: int | None = None

    @model_validator(mode="after")
    def _one(self):
        if bool(self.builder) == bool(self.file):
            raise ValueError("a structure needs exactly one of 'builder' or 'file'")
        return self


class XTBSettings(_Strict):
    """Settings of :class:`molmag.chem.xtb.XTBCalculator` (GFN2-xTB through tblite)."""

    accuracy: float = Field(1.0, gt=0, description="tblite accuracy (smaller: tighter)")
    electronic_temperature: float = Field(300.0, gt=0, description="K")
    max_iterations: int = Field(250, ge=1, description="SCC iterations")
    retry: bool = Field(True, description="retry a failed SCC with damped mixing")
    charge: int | None = Field(None, description="default: the structure's charge")
    multiplicity: int | None = Field(None, ge=1, description="default: the structure's")


class LigandFieldSettings(_Strict):
    """Settings of :class:`molmag.physics.ligand_field.LigandFieldCalculator` (cm-1 for
    B, C, zeta; ``outer_cutoff`` Angstrom); ``donors`` default to the start structure's."""

    ion: str | None = Field(None, description="e.g. Co2+ (default: from charge and donors)")
    metal_index: int | None = Field(None, ge=0)
    donors: list[int] | None = Field(None, description="donor atom indices")
    donor_types: dict[int, str] | None = Field(None, description="donor index -> donor type "
                                               "(molmag.physics.ligand_field.DONOR_DEFAULTS)")
    charge: int | None = None
    multiplicity: int | None = Field(None, ge=1)
    B: float | None = Field(None, description="Racah B override (cm-1)")
    C: float | None = Field(None, description="Racah C override (cm-1)")
    zeta: float | None = Field(None, description="spin-orbit constant override (cm-1)")
    k: float | None = Field(None, description="orbital reduction factor override")
    outer_charges: list[float] | None = Field(None, description="per-atom point charges (e) "
                                              "of the atoms beyond the donors")
    outer_cutoff: float | None = Field(None, gt=0, description="Angstrom")


class CalculatorSpec(_Strict):
    """Exactly one of ``model`` (a model file), ``xtb`` or ``ligand_field`` (settings)."""

    model: str | None = None
    xtb: XTBSettings | None = None
    ligand_field: LigandFieldSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data):
        # "xtb:" with only comments under it reads as None: it still names the engine
        if isinstance(data, dict):
            return {k: ({} if v is None and k in ("xtb", "ligand_field") else v)
                    for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("model", "xtb", "ligand_field") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a calculator needs exactly one of 'model', 'xtb' or "
                             f"'ligand_field' (got {', '.join(given) or 'none'})")
        return self

    @property
    def label(self) -> str:
        if self.model is not None:
            return f"model {self.model}"
        return "GFN2-xTB" if self.xtb is not None else "ligand field"


def load_structure(spec: StructureSpec) -> Atoms:
    """Build or read the start structure; ``info`` gets charge, multiplicity and, where
    known, ``metal_index`` and ``donor_indices``."""
    if spec.builder:
        from molmag.chem.builders import build

        opts: dict[str, Any] = {"relax": spec.relax, "fmax": spec.fmax}
        if spec.ligand:
            opts["ligand"] = spec.ligand
        atoms = build(spec.builder, **opts)
    else:
        from molmag.io.frames import read_frames

        frames = read_frames(spec.file)
        try:
            atoms = frames[spec.index]
        except IndexError:
            raise ValueError(f"{spec.file}: no frame {spec.index} "
                             f"(the file has {len(frames)})") from None
        atoms.calc = None
    for key in ("charge", "multiplicity", "metal_index"):
        if getattr(spec, key) is not None:
            atoms.info[key] = int(getattr(spec, key))
    for key in ("charge", "multiplicity"):
        if key not in atoms.info:
            where = spec.file or spec.builder
            raise ValueError(f"structure {where}: no {key}; give structure.{key}")
    if "donor_indices" not in atoms.info:
        from molmag.chem.features import donor_indices

        try:
            atoms.info["donor_indices"] = [int(i) for i in donor_indices(
                atoms, atoms.info.get("metal_index"))]
        except ValueError:
            pass  # no metal: calculators that need one say so
    return atoms


def make_calculator(spec: CalculatorSpec | list[CalculatorSpec], start: Atoms) -> Calculator:
    """The ASE calculator ``spec`` names; ``start`` gives the donors of ligand-field runs."""
    if isinstance(spec, list):
        if not spec:
            raise ValueError("an empty list of calculators")
        return RoutedCalculator([make_calculator(s, start) for s in spec])
    if spec.model is not None:
        from molmag.models.calculator import ModelCalculator

        if not Path(spec.model).is_file() and "://" not in spec.model:
            raise FileNotFoundError(f"no model file at {spec.model}")
        return ModelCalculator(spec.model)
    if spec.xtb is not None:
        from molmag.chem.xtb import XTBCalculator

        return XTBCalculator(**spec.xtb.model_dump(exclude_unset=True))
    from molmag.physics.ligand_field import LigandFieldCalculator

    opts = spec.ligand_field.model_dump(exclude_unset=True) if spec.ligand_field else {}
    if opts.get("donors") is None and start.info.get("donor_indices") is not None:
        opts["donors"] = [int(i) for i in start.info["donor_indices"]]
    return LigandFieldCalculator(**opts)


class RoutedCalculator(Calculator):
    """Several calculators as one: each property comes from the first calculator that
    implements it (ML energy from one committee, ML D from another).  A property none of
    them implements raises ``PropertyNotImplementedError``."""

    def __init__(self, calculators: list[Calculator], **kwargs):
        self.calculators = list(calculators)
        props: list[str] = []
        for c in self.calculators:
            props += [p for p in c.implemented_properties if p not in props]
        self.implemented_properties = props
        super().__init__(**kwargs)

    def _owner(self, prop: str) -> Calculator:
        for c in self.calculators:
            if prop in c.implemented_properties:
                return c
        raise PropertyNotImplementedError(
            f"{prop} property not implemented by any of "
            f"{', '.join(type(c).__name__ for c in self.calculators)} (they give "
            f"{', '.join(self.implemented_properties)})")

    def calculate(self, atoms: Atoms | None = None, properties: Any = None,
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties or self.implemented_properties[:1], system_changes)
        res: dict = {}
        for prop in properties or self.implemented_properties[:1]:
            if prop in res:
                continue
            c = self._owner(prop)
            a = self.atoms.copy()
            try:
                v = c.get_property(prop, a)
            except (CalculatorError, NotImplementedError):
                raise                  # ASE's own errors (and PropertyNotImplementedError)
            except (RuntimeError, ArithmeticError, np.linalg.LinAlgError) as exc:
                raise CalculatorFailed(f"{type(c).__name__} failed to compute {prop}: "
                                       f"{exc}") from exc
            res[prop] = np.asarray(v) if np.ndim(v) else v
            for k, val in c.results.items():  # everything the owner computed on the way
                if k not in res and k in self.implemented_properties and self._owner(k) is c:
                    res[k] = val
        self.results = res


def calculator_spec_list(value) -> CalculatorSpec | list[CalculatorSpec]:
    """A YAML value (mapping or list of mappings) as calculator spec(s)."""
    if isinstance(value, list):
        return [CalculatorSpec.model_validate(v) for v in value]
    return CalculatorSpec.model_validate(value)


__all__ = ["StructureSpec", "CalculatorSpec", "RoutedCalculator", "load_structure",
           "make_calculator", "calculator_spec_list"]
