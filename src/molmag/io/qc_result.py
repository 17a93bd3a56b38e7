"""What molmag reads from one quantum-chemistry output: labels, units, structure, provenance.

Parsers (:mod:`molmag.io.orca`, :mod:`molmag.io.molcas`) return a :class:`QCResult`.  Units:
energies and D in cm-1, g dimensionless, coordinates in Angstrom, charges in e.

:meth:`QCResult.to_json` gives the shape ``molmag parse --json`` prints::

    {"file", "program": "orca"|"openmolcas", "version", "kinds": [...],
     "zfs": {"D", "E", "E/D", "tensor", "axes", "eigenvalues", "method"} (or a list of them),
     "so_energies": [...], "kd_energies": [...], "g_tensors": [[gx, gy, gz], ...], "g_axes",
     "cf_parameters": {"convention": "stevens", "values": {"k,q": B}, "multiplet"},
     "cf_parameters_ito": {"convention": "ito", ...},
     "structure": {"symbols", "positions", "charge", "multiplicity", "point_charges"},
     "warnings": ["..."]}

Keys whose quantity the file does not hold are omitted.  Principal axes (``zfs.axes``,
``g_axes``) are *columns*, as in :func:`molmag.physics.zfs.zfs_from_tensor`.  When SINGLE_ANISO
names the ground J multiplet, ``kd_energies`` and ``g_tensors`` hold its doublets only (3 for
Ce3+ J = 5/2, 8 for Dy3+ J = 15/2: the states the crystal-field engine computes and GAUSS-II
labels), while ``so_energies`` keeps the whole spin-orbit spectrum.
:meth:`QCResult.to_record` makes a dataset row (:class:`molmag.io.Record`) with one
:class:`molmag.io.Provenance` per label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from molmag.io.errors import DataFileError, LabelError
from molmag.io.provenance import Provenance, now_iso
from molmag.io.records import Record
from molmag.io.single_aniso import AnisoData, kramers_doublets
from molmag.physics.zfs import zfs_from_tensor


@dataclass
class ZFSBlock:
    """One zero-field-splitting tensor as printed (cm-1).

    ``method`` is a label such as ``"CASSCF/QDPT 2nd-order SOC"`` or ``"NEVPT2/QDPT effective
    Hamiltonian"``; ``D`` and ``E_over_D`` are the program's printed values, ``E = E/D * D``;
    ``axes`` has the principal axes as columns (as printed), ``eigenvalues`` the printed
    eigenvalues of the raw matrix.
    """

    method: str
    tensor: np.ndarray
    D: float
    E_over_D: float
    axes: np.ndarray | None = None
    eigenvalues: np.ndarray | None = None
    level: str = ""
    treatment: str = ""
    job: int = 1
    line: int | None = None

    @property
    def E(self) -> float:
        return self.D * self.E_over_D

    def as_dict(self) -> dict[str, Any]:
        out = {"method": self.method, "D": self.D, "E": self.E, "E/D": self.E_over_D,
               "tensor": np.asarray(self.tensor).tolist()}
        if self.axes is not None:
            out["axes"] = np.asarray(self.axes).tolist()
        if self.eigenvalues is not None:
            out["eigenvalues"] = np.asarray(self.eigenvalues).tolist()
        if self.job != 1:
            out["job"] = self.job
        return out


#: Preference when one D tensor must be chosen for the dataset row: the most correlated level,
#: and the effective Hamiltonian (exact projection) over the 2nd-order expression.
_LEVEL_RANK = {"NEVPT2": 3, "DCD-CAS(2)": 3, "CASSCF": 2, "DFT": 1}
_TREATMENT_RANK = {"effective Hamiltonian": 2, "2nd order": 1}


@dataclass
class QCResult:
    """Everything read from one output file (see the module docstring for units)."""

    file: str
    program: str
    version: str = ""
    kinds: list[str] = field(default_factory=list)
    zfs: list[ZFSBlock] = field(default_factory=list)
    so_energies: np.ndarray | None = None
    so_method: str = ""
    kd_energies: np.ndarray | None = None
    g_tensors: np.ndarray | None = None
    g_axes: np.ndarray | None = None
    g_method: str = ""
    g_matrix: np.ndarray | None = None
    cf_parameters: dict | None = None
    cf_parameters_ito: dict | None = None
    cf_multiplet: str = ""
    cf_method: str = ""
    atoms: Atoms | None = None
    charge: int | None = None
    multiplicity: int | None = None
    point_charges: np.ndarray | None = None
    calculation: dict[str, Any] = field(default_factory=dict)
    #: What the parser read around or left out, one line each naming the block and the line
    #: (e.g. a ZFS block cut by the end of an excerpt); ``to_json`` gives them as "warnings".
    warnings: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------------------ JSON
    def structure_dict(self) -> dict[str, Any] | None:
        if self.atoms is None:
            return None
        out = {"symbols": self.atoms.get_chemical_symbols(),
               "positions": np.round(self.atoms.positions, 10).tolist(),
               "charge": self.charge, "multiplicity": self.multiplicity}
        if self.point_charges is not None and len(self.point_charges):
            out["point_charges"] = np.asarray(self.point_charges).tolist()
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "program": self.program}
        if self.version:
            out["version"] = self.version
        out["kinds"] = list(self.kinds)
        if self.calculation:
            out["calculation"] = self.calculation
        if self.warnings:
            out["warnings"] = list(self.warnings)
        if self.zfs:
            blocks = [z.as_dict() for z in self.zfs]
            out["zfs"] = blocks[0] if len(blocks) == 1 else blocks
        if self.so_energies is not None:
            out["so_energies"] = np.asarray(self.so_energies).tolist()
        if self.kd_energies is not None:
            out["kd_energies"] = np.asarray(self.kd_energies).tolist()
        if self.g_tensors is not None:
            out["g_tensors"] = np.asarray(self.g_tensors).tolist()
        if self.g_axes is not None:
            out["g_axes"] = np.asarray(self.g_axes).tolist()
        if self.g_matrix is not None:
            out["g_matrix"] = np.asarray(self.g_matrix).tolist()
        for key in ("cf_parameters", "cf_parameters_ito"):
            value = getattr(self, key)
            if value is not None:
                out[key] = {**value, "multiplet": self.cf_multiplet} if self.cf_multiplet else value
        structure = self.structure_dict()
        if structure is not None:
            out["structure"] = structure
        return out

    # ------------------------------------------------------------------------------ rows
    def select_zfs(self, method: str | None = None) -> ZFSBlock | None:
        """The D tensor for a dataset row: the block whose method contains ``method``
        (case-insensitive; an error if none or several do), else the most correlated level
        with the effective Hamiltonian preferred, the last job winning ties."""
        if not self.zfs:
            if method:
                raise DataFileError(self.file, f"no zero-field-splitting block to select "
                                               f"{method!r} from", field="zfs")
            return None
        if method:
            hits = [z for z in self.zfs if method.lower() in z.method.lower()]
            if len(hits) != 1:
                names = ", ".join(repr(z.method) for z in self.zfs)
                raise DataFileError(self.file, f"{'no' if not hits else 'several'} ZFS blocks "
                                               f"match {method!r}; the file has {names}",
                                    field="zfs")
            return hits[0]
        return max(self.zfs, key=lambda z: (_LEVEL_RANK.get(z.level, 0),
                                            _TREATMENT_RANK.get(z.treatment, 0), z.job))

    def provenance(self, method: str, **parameters) -> Provenance:
        params = {k: v for k, v in {**self.calculation, **parameters}.items() if v is not None}
        if self.point_charges is not None and len(self.point_charges):
            params["point_charges"] = np.asarray(self.point_charges).tolist()
        return Provenance(method=method, parameters=params,
                          program={"orca": "ORCA", "openmolcas": "OpenMolcas"}.get(self.program,
                                                                                  self.program),
                          version=self.version, source=str(Path(self.file).resolve()),
                          imported=now_iso())

    def labels(self, zfs_method: str | None = None) -> tuple[dict[str, Any], dict[str, Provenance]]:
        """molmag labels (see :mod:`molmag.io.labels`) and their provenance."""
        labels: dict[str, Any] = {}
        prov: dict[str, Provenance] = {}
        z = self.select_zfs(zfs_method)
        if z is not None:
            labels["zfs_tensor"] = np.asarray(z.tensor, dtype=float)
            prov["zfs_tensor"] = self.provenance(z.method, treatment=z.treatment or None,
                                                 job=z.job)
        if self.kd_energies is not None:
            labels["kd_energies"] = np.asarray(self.kd_energies, dtype=float)
            prov["kd_energies"] = self.provenance(self.so_method or "spin-orbit states")
        if self.g_tensors is not None:
            labels["g_tensors"] = np.asarray(self.g_tensors, dtype=float)
            prov["g_tensors"] = self.provenance(self.g_method or "pseudospin g tensors")
        if self.cf_parameters is not None:
            # ranks 2, 4, 6: the crystal field of f electrons (what molmag's engine and models
            # use); SINGLE_ANISO's higher-rank terms of a J multiplet are kept in the JSON only
            values = {k: v for k, v in self.cf_parameters["values"].items()
                      if int(k.split(",")[0]) in (2, 4, 6)}
            dropped = sorted({int(k.split(",")[0]) for k, v in self.cf_parameters["values"].items()
                              if int(k.split(",")[0]) not in (2, 4, 6) and v != 0.0})
            if values:
                labels["cf_parameters"] = {"convention": self.cf_parameters["convention"],
                                           "values": values}
                prov["cf_parameters"] = self.provenance(
                    self.cf_method or "ab initio crystal field",
                    multiplet=self.cf_multiplet or None, dropped_ranks=dropped or None)
        return labels, prov

    def to_record(self, zfs_method: str | None = None) -> Record:
        """A dataset row.  Needs the structure, charge and multiplicity from the file."""
        missing = [name for name, v in (("geometry", self.atoms), ("charge", self.charge),
                                        ("multiplicity", self.multiplicity)) if v is None]
        if missing:
            raise DataFileError(self.file, f"cannot make a dataset row: the file has no "
                                           f"{' / '.join(missing)} (an excerpt or a data file "
                                           f"without the calculation's input?)", field=missing[0])
        assert self.atoms is not None and self.charge is not None \
            and self.multiplicity is not None  # none is missing
        labels, prov = self.labels(zfs_method)
        if not labels:
            raise DataFileError(self.file, "no molmag labels (ZFS tensor, Kramers doublets, g, "
                                           "crystal-field parameters) found in the file")
        try:
            return Record(atoms=self.atoms.copy(), charge=self.charge,
                          multiplicity=self.multiplicity, labels=labels, provenance=prov)
        except LabelError as exc:
            raise DataFileError(self.file, exc.message, field=exc.field) from None

    def add_single_aniso(self, data: AnisoData, base: str) -> None:
        """Take what SINGLE_ANISO printed (``base`` names the level of theory): the spin-orbit
        spectrum, the ground multiplet's Kramers doublets and their g tensors (axes as columns),
        the crystal-field parameters (ESO as the label, ITO beside it)."""
        self.kinds.append("single-aniso")
        if data.so_energies is not None:
            self.so_energies = data.so_energies - data.so_energies.min()
            self.so_method = base
            if "so-spectrum" not in self.kinds:
                self.kinds.append("so-spectrum")
        self.kd_energies = data.kd_energies()
        if data.ground_multiplet:
            self.calculation["ground_multiplet"] = data.ground_multiplet
        if data.g_values:
            n = len(self.kd_energies) if self.kd_energies is not None else len(data.g_values)
            self.g_tensors = np.array(data.g_values)[:n]
            self.g_axes = np.transpose(np.array(data.g_axes), (0, 2, 1))[:n]
            self.g_method = base + " pseudospin S=1/2"
            self.g_matrix = None
        if data.cf_stevens is not None or data.cf_ito is not None:
            self.kinds.append("crystal-field")
            self.cf_multiplet = data.cf_multiplet
            self.cf_method = base + " ab initio crystal field"
            if data.cf_ito is not None:
                self.cf_parameters_ito = {"convention": "ito", "values": data.cf_ito}
            self.cf_parameters = ({"convention": "stevens", "values": data.cf_stevens}
                                  if data.cf_stevens is not None else self.cf_parameters_ito)

    def finish_spin_orbit(self) -> None:
        """Kramers doublets from a spin-orbit spectrum that SINGLE_ANISO did not group, and the
        check that an odd-electron (even-multiplicity) system has its states in degenerate
        pairs: otherwise the spectrum is garbled."""
        if (self.kd_energies is None and self.so_energies is not None and self.multiplicity
                and self.multiplicity % 2 == 0 and "single-aniso" not in self.kinds):
            self.kd_energies = kramers_doublets(self.so_energies)
        if (self.multiplicity and self.multiplicity % 2 == 0 and self.so_energies is not None
                and self.kd_energies is None):
            raise DataFileError(self.file, f"multiplicity {self.multiplicity} (odd electron "
                                           f"count) but the spin-orbit states are not in Kramers "
                                           f"pairs: the spectrum is garbled", field="so_energies")

    def check_zfs_consistency(self, tol: float = 2e-3) -> None:
        """Raise if a block's printed D, E/D disagree with its printed tensor (a garbled file).

        The printed values are rounded to 6 decimals; ``tol`` is relative to max(|D|, 1 cm-1).
        """
        for z in self.zfs:
            p = zfs_from_tensor(z.tensor)
            where = f"ZFS block {z.method!r} (line {(z.line or 0) + 1})"
            scale = max(abs(z.D), 1.0)
            # the sign of D is ambiguous only near the rhombic limit E/D = 1/3
            signed = abs(p.E_over_D) < 0.3
            dd = (p.D - z.D) if signed else (abs(p.D) - abs(z.D))
            de = (p.E - z.E) if signed else (abs(p.E) - abs(z.E))
            bad = abs(dd) > tol * scale or abs(de) > tol * scale
            if z.eigenvalues is not None and not bad:
                w = np.linalg.eigvalsh(0.5 * (z.tensor + z.tensor.T))
                bad = np.abs(np.sort(z.eigenvalues) - w).max() > tol * max(np.abs(w).max(), 1.0)
                if bad:
                    raise DataFileError(self.file, f"{where}: "
                                                   f"printed eigenvalues {z.eigenvalues} are not "
                                                   f"those of the printed matrix {w}", field="zfs")
            if z.axes is not None and not bad:
                if np.abs(z.axes.T @ z.axes - np.eye(3)).max() > 1e-3:
                    raise DataFileError(self.file, f"{where}: "
                                                   f"the printed eigenvectors are not orthonormal",
                                        field="zfs")
            if bad:
                raise DataFileError(self.file, f"{where}: "
                                               f"printed D = {z.D}, E = {z.E} but the printed "
                                               f"matrix gives D = {p.D:.6f}, E = {p.E:.6f}",
                                    field="zfs")


__all__ = ["QCResult", "ZFSBlock"]
