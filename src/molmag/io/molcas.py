r"""OpenMolcas: the text log of a GATEWAY/SEWARD/RASSCF/RASSI/SINGLE_ANISO run, and
SINGLE_ANISO's ASCII ab initio data file (:mod:`molmag.io.molcas_aniso_data`).

What is read from a log (units: cm-1, Angstrom, e):

* SINGLE_ANISO (``&SINGLE_ANISO``): ``ENERGY OF THE SPIN-ORBIT STATE (   n) =`` (cm-1 from the
  lowest state), the g values and main magnetic axes of each pseudospin-1/2 doublet, the
  crystal-field parameters of the ground J multiplet in ESO and real-ITO form — the same text
  blocks as ORCA's port, read by :mod:`molmag.io.single_aniso`;
* without SINGLE_ANISO, the RASSI spin-orbit table (``SO State ... D:o, cm**(-1)``);
* the last ``Cartesian Coordinates / Bohr, Angstrom`` table of GATEWAY/SEWARD (the Angstrom
  columns; elements from the ``Basis set label:`` blocks, else from the atom labels such as
  ``CO1``, ``N2``), RASSCF's ``Total molecular charge`` and ``Spin quantum number`` S
  (multiplicity 2S + 1), the version line.

Every ``--- Start Module: X`` must be matched by ``--- Stop Module: X ... /rc=...`` with a
successful return code (``_RC_ALL_IS_WELL_`` or 0); otherwise the log is truncated or a module
failed, and :class:`molmag.io.errors.DataFileError` says which.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from molmag.io.errors import DataFileError
from molmag.io.molcas_aniso_data import doublet_g, is_aniso_data_file, read_aniso_data
from molmag.io.qc_result import QCResult
from molmag.io.single_aniso import parse_single_aniso
from molmag.io.textscan import FLOAT, TextScan, found

_BANNER = re.compile(r"This run of MOLCAS is using the pymolcas driver|OPENMOLCAS|"
                     r"MOLCAS executing module|--- Start Module:", re.IGNORECASE)
_VERSION = re.compile(r"^\s*OPENMOLCAS\S*\s+version:?\s*(\S+)|^\s*version:?\s+(\d+\.\d+\S*)")
_START = re.compile(r"--- Start Module:\s*(\S+)")
_STOP = re.compile(r"--- Stop Module:\s*(\S+).*?/rc=\s*(\S+)\s*---")
_ANISO = re.compile(r"^\s*&SINGLE_ANISO")
_COORDS = re.compile(r"Cartesian Coordinates / Bohr, Angstrom")
_BASIS_LABEL = re.compile(r"^\s*Basis set label:\s*([A-Za-z]+)\.")
_BASIS_ROW = re.compile(r"^\s*(\S+)\s+" + FLOAT + r"\s+" + FLOAT + r"\s+" + FLOAT + r"\s*$")
_CHARGE = re.compile(r"Total molecular charge\s+(" + FLOAT + ")")
_SPIN = re.compile(r"^\s*Spin quantum number\s+(" + FLOAT + ")")
_RASSI_HEAD = re.compile(r"SO State.*cm\*\*\(-1\)")
_RASSI_ROW = re.compile(r"^\s*(\d+)\s+(" + FLOAT + r")\s+(" + FLOAT + r")\s+(" + FLOAT + r")")
_OK_RC = {"_RC_ALL_IS_WELL_", "0"}


def is_molcas_output(scan: TextScan) -> bool:
    return scan.find(_BANNER, 0, 400) is not None


def _check_modules(scan: TextScan) -> list[str]:
    started = [(i, found(_START.search(scan.lines[i])).group(1).lower())
               for i in scan.find_all(_START)]
    stopped: list[tuple[int, str, str]] = []
    for i in scan.find_all(_STOP):
        name, rc = found(_STOP.search(scan.lines[i])).group(1, 2)
        stopped.append((i, name, rc))
    for i, name, rc in stopped:
        if rc not in _OK_RC:
            raise scan.error(f"module {name} stopped with rc={rc}", i)
    if len(stopped) < len(started):
        i, name = started[len(stopped)]
        raise scan.error(f"module {name} started here but the log ends before it stopped: the "
                         f"output is truncated or the run was killed", i)
    return [name for _, name in started]


def _element(label: str, basis_elements: dict[str, str]) -> str | None:
    if label.upper() in basis_elements:
        return basis_elements[label.upper()]
    letters = re.match(r"[A-Za-z]+", label)
    if not letters:
        return None
    s = letters.group(0)
    for cand in (s[:2], s[:1]):          # CO1 -> Co, N2 -> N, CL -> Cl
        c = cand.capitalize()
        if c in atomic_numbers:
            return c
    return None


def _basis_elements(scan: TextScan) -> dict[str, str]:
    """Atom label -> element from the ``Basis set label: XX.basis...`` blocks."""
    out = {}
    for i in scan.find_all(_BASIS_LABEL):
        elem = found(_BASIS_LABEL.match(scan.lines[i])).group(1).capitalize()
        head = scan.find(r"Label\s+Cartesian Coordinates / Bohr", i, i + 40)
        if head is None or elem not in atomic_numbers:
            continue
        j = head + 1
        while j < len(scan):
            m = _BASIS_ROW.match(scan.lines[j])
            if not m:
                break
            out[m.group(1).upper()] = elem
            j += 1
    return out


def _geometry(scan: TextScan) -> Atoms | None:
    heads = scan.find_all(_COORDS)
    if not heads:
        return None
    h = heads[-1]
    col = scan.require(r"Center\s+Label", h, "the column header of the coordinate table",
                       h + 6, field="structure")
    basis = _basis_elements(scan)
    symbols, pos = [], []
    j = col + 1
    while True:
        text = scan.line(j, f"the end of the coordinate table at line {h + 1}", field="structure")
        parts = text.split()
        if not parts or parts[0] in ("--", "++") or not parts[0].rstrip("*").isdigit():
            break
        if len(parts) != 8:
            raise scan.error(f"coordinate row {text.strip()!r}: expected 'center label x y z "
                             f"(bohr) x y z (Angstrom)'", j, field="structure")
        elem = _element(parts[1], basis)
        if elem is None:
            raise scan.error(f"cannot tell the element of atom label {parts[1]!r}", j,
                             field="structure")
        pos.append([scan.number(x, j, f"coordinate row {text.strip()!r}", "structure")
                    for x in parts[5:8]])
        symbols.append(elem)
        j += 1
    if not symbols:
        raise scan.error("empty coordinate table", h, field="structure")
    return Atoms(symbols, positions=np.array(pos))


def parse_molcas_output(path: str | Path, scan: TextScan | None = None) -> QCResult:
    """Read an OpenMolcas log (see the module docstring)."""
    scan = scan or TextScan.read(path)
    modules = _check_modules(scan)
    result = QCResult(file=str(path), program="openmolcas")
    v = scan.find(_VERSION, 0, 400)
    if v is not None:
        m = found(_VERSION.search(scan.lines[v]))
        result.version = m.group(1) or m.group(2)
    if modules:
        result.calculation["modules"] = modules

    a = scan.find_all(_ANISO)
    if a:
        data = parse_single_aniso(scan, a[-1])
        result.add_single_aniso(data, "CASSCF/RASSI-SO SINGLE_ANISO")
    else:
        heads = scan.find_all(_RASSI_HEAD)
        if heads:
            vals = []
            j = heads[-1] + 1
            while j < len(scan) and _RASSI_ROW.match(scan.lines[j]):
                vals.append(scan.number(found(_RASSI_ROW.match(scan.lines[j])).group(4), j,
                                        "RASSI spin-orbit energy", "so_energies"))
                j += 1
            if not vals:
                raise scan.error("RASSI spin-orbit table without rows", heads[-1],
                                 field="so_energies")
            result.so_energies = np.array(vals) - min(vals)
            result.so_method = "CASSCF/RASSI-SO"
            result.kinds.append("so-spectrum")

    atoms = _geometry(scan)
    charges = scan.find_all(_CHARGE)
    if charges:
        q = scan.number(found(_CHARGE.search(scan.lines[charges[-1]])).group(1), charges[-1],
                        "molecular charge", "charge")
        result.charge = int(round(q))
    spins = scan.find_all(_SPIN)
    if spins:
        s = scan.number(found(_SPIN.search(scan.lines[spins[-1]])).group(1), spins[-1],
                        "spin quantum number", "multiplicity")
        if s < 0 or abs(2 * s - round(2 * s)) > 1e-6:
            raise scan.error(f"spin quantum number {s} is not a non-negative multiple of 1/2",
                             spins[-1], field="multiplicity")
        result.multiplicity = int(round(2 * s + 1))
    if atoms is not None:
        result.atoms = atoms
        result.kinds.append("geometry")
    result.finish_spin_orbit()
    if result.so_energies is None and result.g_tensors is None and result.cf_parameters is None:
        raise DataFileError(path, "OpenMolcas log without SINGLE_ANISO or RASSI spin-orbit "
                                  "results: nothing molmag reads")
    return result


__all__ = ["doublet_g", "is_aniso_data_file", "is_molcas_output", "parse_molcas_output",
           "read_aniso_data"]
