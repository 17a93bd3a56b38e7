r"""Read ORCA outputs (versions 3 to 6) into molmag labels.

What is read (units: cm-1, Angstrom, e):

* CASSCF/NEVPT2 QDPT zero-field splitting, both ``2ND ORDER SOC CONTRIBUTION`` and
  ``EFFECTIVE HAMILTONIAN SOC CONTRIBUTION`` blocks (also SSC and SOC+SSC ones): the raw D
  matrix, its eigenvalues and eigenvectors (columns), D and E/D as printed.  The level (CASSCF,
  NEVPT2, ...) is that of the preceding ``QDPT WITH <LEVEL> DIAGONAL ENERGIES`` header, CASSCF
  when the file has none (an excerpt); every block is kept, labelled with level, treatment and
  job number (``$new_job``).
* DFT zero-field splitting (``%eprnmr Dtensor``: ``ZERO-FIELD-SPLITTING TENSOR``) and the DFT
  ``ELECTRONIC G-MATRIX`` (principal values ``g(tot)`` and the orientation).
* The QDPT spin-orbit spectrum (``Eigenvalues: cm-1 eV Boltzmann ...``) of each level.
* SINGLE_ANISO (``Calling the SINGLE_ANISO program``): spin-orbit spectrum, Kramers doublets,
  g of each doublet, crystal-field parameters of the ground J multiplet in the ESO and ITO
  forms (:mod:`molmag.io.single_aniso`).
* The last geometry (``CARTESIAN COORDINATES (ANGSTROEM)``; ``Q`` entries are point charges,
  their charges taken from the a.u. table), the last ``Total Charge`` and ``Multiplicity``,
  the program version, the basis and the CASSCF active space.

A complete ORCA output (one that prints the ORCA banner) must end with
``****ORCA TERMINATED NORMALLY****``; otherwise :class:`molmag.io.errors.DataFileError` says the
run is truncated or failed.  Files without the banner are read as excerpts (a piece cut out of
an output): a block that the end of the excerpt cuts (a ZFS block without its closing ``E/D =``
line, a spin-orbit eigenvalue table running into the end of the file, a SINGLE_ANISO output
without its end, a coordinate block without its closing blank line) is left out and named with
its line in :attr:`QCResult.warnings` (``"warnings"`` in ``molmag parse --json``), so that an
excerpt never loses a block silently; when nothing complete is left the excerpt is an error
naming the cut block.  Blocks that are wrong before the end of the file are errors as always.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from molmag.io.errors import DataFileError
from molmag.io.qc_result import QCResult, ZFSBlock
from molmag.io.single_aniso import parse_single_aniso
from molmag.io.textscan import FLOAT, TextScan, found

BANNER = re.compile(r"\*\s+O\s+R\s+C\s+A\s+\*")
NORMAL_END = re.compile(r"\*\*\*\*ORCA TERMINATED NORMALLY\*\*\*\*")
ERROR_END = re.compile(r"ORCA finished by error termination|aborting the run"
                       r"|ORCA TERMINATED ABNORMALLY", re.IGNORECASE)
_VERSION = re.compile(r"Program Version\s+(\S+)")
_JOB = re.compile(r"JOB NUMBER\s+(\d+)")
_CAS_ZFS = re.compile(r"^\s*ZERO-FIELD SPLITTING\s*$")
_DFT_ZFS = re.compile(r"^\s*ZERO-FIELD-SPLITTING TENSOR\s*$")
_QDPT_LEVEL = re.compile(r"QDPT WITH\s+(\S+)\s+DIAGONAL ENERGIES")
_SO_EIGEN = re.compile(r"^\s*Eigenvalues:\s+cm-1\s+eV\s+Boltzmann")
_SO_ROW = re.compile(r"^\s*(\d+)\s*:\s*(" + FLOAT + r")\s+(" + FLOAT + r")")
_ANISO = re.compile(r"Calling the SINGLE_ANISO program")
_ANISO_END = re.compile(r"SINGLE_ANISO (?:ENDED|finished)")
_ZFS_CLOSE = re.compile(r"^\s*E/D\s+=")       # the last line of every ZFS block
_G_MATRIX = re.compile(r"^\s*ELECTRONIC G-MATRIX\s*$")
_COORDS = re.compile(r"^\s*CARTESIAN COORDINATES \(ANGSTROEM\)\s*$")
_COORDS_AU = re.compile(r"^\s*CARTESIAN COORDINATES \(A\.U\.\)\s*$")
_CHARGE = re.compile(r"Total Charge\s+Charge\s+\.+\s+(-?\d+)")
_MULT = re.compile(r"^\s*Multiplicity\s+Mult\s+\.+\s+(\d+)")
_NEL = re.compile(r"Number of active electrons\s+\.+\s+(\d+)")
_NORB = re.compile(r"Number of active orbitals\s+\.+\s+(\d+)")
_BASIS = re.compile(r"Your calculation utilizes the basis:\s*(\S+)")
_INPUT_KEYWORDS = re.compile(r"^\|\s*\d+>\s*!(.*)$")


def is_orca_output(scan: TextScan) -> bool:
    """True when the text looks like ORCA output (banner or any ORCA-specific block)."""
    head = scan.find(BANNER, 0, 200) is not None
    return head or any(scan.find(rx) is not None for rx in (_CAS_ZFS, _DFT_ZFS, _QDPT_LEVEL))


# ---------------------------------------------------------------------------------- blocks
def _job_at(jobs: list[tuple[int, int]], line: int) -> int:
    job = 1
    for start, number in jobs:
        if start <= line:
            job = number
    return job


def _level_at(levels: list[tuple[int, str]], line: int, default: str) -> str:
    level = default
    for start, name in levels:
        if start <= line:
            level = name
    return level


def _casscf_zfs(scan: TextScan, h: int, stop: int, level: str, active: str, job: int) -> ZFSBlock:
    title = " ".join(scan.lines[j].strip() for j in (h, h + 1) if j < len(scan)).upper()
    treatment = ("effective Hamiltonian" if "EFFECTIVE HAMILTONIAN" in title
                 else "2nd order" if "2ND ORDER" in title else "")
    m_contrib = re.search(r"(SOC\+SSC|SSC\+SOC|SOC|SSC)", title)
    contrib = m_contrib.group(1) if m_contrib else "SOC"
    what = f"{level} ZFS block ({treatment or 'unknown treatment'}) at line {h + 1}"
    raw = scan.require(r"^\s*Raw matrix", h, f"'Raw matrix' of the {what}", stop, field="zfs")
    tensor = scan.matrix(raw + 1, 3, 3, f"raw D matrix of the {what}", field="zfs")
    ev = scan.require(r"^\s*Eigenvalues \(cm-1\):", raw, f"eigenvalues of the {what}", stop,
                      field="zfs")
    eigenvalues = np.array(scan.floats(ev + 1, f"eigenvalues of the {what}", 3, field="zfs"))
    vec = scan.require(r"^\s*Eigenvectors:", ev, f"eigenvectors of the {what}", stop, field="zfs")
    axes = scan.matrix(vec + 1, 3, 3, f"eigenvectors of the {what}", field="zfs")
    d_line = scan.require(r"^\s*D\s+=", vec, f"'D =' of the {what}", stop, field="zfs")
    D = scan.value_after(d_line, r"D\s+=", f"D of the {what}", field="zfs")
    ed_line = scan.require(r"^\s*E/D\s+=", d_line, f"'E/D =' of the {what}", d_line + 3,
                           field="zfs")
    e_over_d = scan.value_after(ed_line, r"E/D\s+=", f"E/D of the {what}", field="zfs")
    lvl = f"{level}{active}" if level == "CASSCF" or level == "NEVPT2" else level
    method = f"{lvl}/QDPT {treatment} {contrib}".replace("  ", " ")
    return ZFSBlock(method=method, tensor=tensor, D=D, E_over_D=e_over_d, axes=axes,
                    eigenvalues=eigenvalues, level=level, treatment=treatment, job=job, line=h)


def _dft_zfs(scan: TextScan, h: int, stop: int, job: int) -> ZFSBlock:
    what = f"DFT ZFS tensor at line {h + 1}"
    raw = scan.require(r"^\s*raw-matrix\s*:", h, f"'raw-matrix' of the {what}", stop, field="zfs")
    tensor = scan.matrix(raw + 1, 3, 3, f"raw D matrix of the {what}", field="zfs")
    diag = scan.require(r"diagonalized D matrix", raw, f"'diagonalized D matrix' of the {what}",
                        stop, field="zfs")
    eigenvalues = np.array(scan.floats(diag + 1, f"eigenvalues of the {what}", 3, field="zfs"))
    first = diag + 2
    while first < len(scan) and not scan.lines[first].strip():
        first += 1
    axes = scan.matrix(first, 3, 3, f"eigenvectors of the {what}", field="zfs")
    d_line = scan.require(r"^\s*D\s+=", first, f"'D =' of the {what}", stop, field="zfs")
    D = scan.value_after(d_line, r"D\s+=", f"D of the {what}", field="zfs")
    ed_line = scan.require(r"^\s*E/D\s+=", d_line, f"'E/D =' of the {what}", d_line + 3,
                           field="zfs")
    e_over_d = scan.value_after(ed_line, r"E/D\s+=", f"E/D of the {what}", field="zfs")
    return ZFSBlock(method="DFT (CP-SCF SOC + SS)", tensor=tensor, D=D, E_over_D=e_over_d,
                    axes=axes, eigenvalues=eigenvalues, level="DFT", treatment="", job=job, line=h)


def _dft_g(scan: TextScan, h: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    what = f"DFT g-matrix at line {h + 1}"
    m = scan.require(r"The g-matrix:", h, f"'The g-matrix' of the {what}", stop, field="g_tensors")
    matrix = scan.matrix(m + 1, 3, 3, what, field="g_tensors")
    tot = scan.require(r"^\s*g\(tot\)", m, f"'g(tot)' of the {what}", stop, field="g_tensors")
    values = np.array(scan.floats(tot, f"g(tot) of the {what}", field="g_tensors"))
    if len(values) not in (3, 4) or (len(values) == 3 and "iso" in scan.lines[tot]):
        raise scan.error(f"g(tot) of the {what}: expected gx gy gz (iso=)", tot, field="g_tensors")
    values = values[:3]
    principal = np.sqrt(np.clip(np.linalg.eigvalsh(matrix.T @ matrix), 0, None))
    if np.abs(np.sort(values) - principal).max() > 1e-4:
        raise scan.error(f"g(tot) {values} of the {what} are not the principal values of the "
                         f"printed g-matrix {principal}", tot, field="g_tensors")
    ori = scan.require(r"^\s*Orientation:", tot, f"orientation of the {what}", tot + 5,
                       field="g_tensors")
    axes = np.array([scan.floats(ori + 1 + r, f"orientation of the {what}", 3, field="g_tensors")
                     for r in range(3)])
    return matrix, values, axes


def _zfs_block_name(scan: TextScan, h: int, levels: list[tuple[int, str]]) -> str:
    """'CASSCF ZFS block (effective Hamiltonian)'-style name of the block whose header is at h."""
    title = " ".join(scan.lines[j].strip() for j in (h, h + 1) if j < len(scan)).upper()
    treatment = ("effective Hamiltonian" if "EFFECTIVE HAMILTONIAN" in title
                 else "2nd order" if "2ND ORDER" in title else "unknown treatment")
    return f"{_level_at(levels, h, 'CASSCF')} ZFS block ({treatment})"


def _table_end(scan: TextScan, h: int) -> int:
    """Index of the first blank line after line h (len(scan) when the table runs to the end)."""
    j = h + 1
    while j < len(scan) and scan.lines[j].strip():
        j += 1
    return j


def _so_spectrum(scan: TextScan, h: int) -> np.ndarray:
    vals: list[float] = []
    j = h + 1
    while j < len(scan):
        m = _SO_ROW.match(scan.lines[j])
        if not m:
            break
        if int(m.group(1)) != len(vals):
            raise scan.error("spin-orbit eigenvalues out of order", j, field="so_energies")
        vals.append(scan.number(m.group(2), j, "spin-orbit eigenvalue", "so_energies"))
        j += 1
    if not vals:
        raise scan.error("spin-orbit eigenvalue table without rows", h, field="so_energies")
    return np.array(vals)


def _geometry(scan: TextScan) -> tuple[Atoms | None, np.ndarray | None]:
    heads = scan.find_all(_COORDS)
    if not heads:
        return None, None
    h = heads[-1]
    if not scan.line(h + 1, "the coordinates").strip().startswith("-"):
        raise scan.error("coordinate block without its underline", h + 1, field="structure")
    symbols: list[str] = []
    rows: list[list[float]] = []
    j = h + 2
    while True:
        text = scan.line(j, f"the end of the coordinate block at line {h + 1}", field="structure")
        if not text.strip():
            break
        parts = text.split()
        if len(parts) != 4:
            raise scan.error(f"coordinate line {text.strip()!r}: expected 'symbol x y z'", j,
                             field="structure")
        rows.append([scan.number(p, j, f"coordinate line {text.strip()!r}", "structure")
                     for p in parts[1:]])
        symbols.append(parts[0])
        j += 1
    if not symbols:
        raise scan.error("empty coordinate block", h, field="structure")
    positions = np.array(rows)
    point = [i for i, s in enumerate(symbols) if s.upper() == "Q"]
    charges = np.zeros(len(point))
    if point:
        au = scan.find(_COORDS_AU, h)
        if au is None:
            raise scan.error("point charges (Q) without the a.u. coordinate table giving their "
                             "charges", h, field="structure")
        n_au = 0
        while au + 3 + n_au < len(scan) and scan.lines[au + 3 + n_au].strip():
            n_au += 1
        if n_au != len(symbols):
            raise scan.error(f"the a.u. coordinate table has {n_au} rows, the Angstrom table "
                             f"{len(symbols)}", au, field="structure")
        for n, i in enumerate(point):
            row = scan.line(au + 3 + i, "the a.u. coordinate table").split()
            if len(row) < 3 or row[1].upper() != "Q":
                raise scan.error(f"a.u. coordinate table: row {i} is not the point charge",
                                 au + 3 + i, field="structure")
            charges[n] = scan.number(row[2], au + 3 + i, "point charge", "structure")
    atoms_idx = [i for i in range(len(symbols)) if i not in point]
    clean = []
    for i in atoms_idx:
        s = symbols[i].rstrip(":>").capitalize()
        s = re.sub(r"\d+$", "", s)
        if s not in atomic_numbers:
            raise scan.error(f"unknown element symbol {symbols[i]!r}", h + 2 + i, field="structure")
        clean.append(s)
    atoms = Atoms(clean, positions=positions[atoms_idx])
    pcs = np.column_stack([charges, positions[point]]) if point else None
    return atoms, pcs


def _last_int(scan: TextScan, rx: re.Pattern) -> int | None:
    hits = scan.find_all(rx)
    if not hits:
        return None
    return int(found(rx.search(scan.lines[hits[-1]])).group(1))


# ---------------------------------------------------------------------------------- entry
def parse_orca_output(path: str | Path, scan: TextScan | None = None) -> QCResult:
    """Read one ORCA output file (see the module docstring).

    Raises :class:`molmag.io.errors.DataFileError` for a truncated, failed, garbled or
    unrecognised file, naming the file, line and what is missing."""
    scan = scan or TextScan.read(path)
    banner = scan.find(BANNER, 0, 200) is not None
    errors = scan.find_all(ERROR_END)
    if banner and scan.find(NORMAL_END, max(0, len(scan) - 200)) is None:
        if errors:
            i = errors[-1]
            raise scan.error(f"ORCA stopped with an error: {scan.lines[i].strip()!r}", i)
        raise scan.error("no '****ORCA TERMINATED NORMALLY****': the output is truncated or the "
                         "run did not finish")
    version = ""
    v = scan.find(_VERSION, 0, 200)
    if v is not None:
        version = found(_VERSION.search(scan.lines[v])).group(1)
    result = QCResult(file=str(path), program="orca", version=version)

    jobs = [(i, int(found(_JOB.search(scan.lines[i])).group(1))) for i in scan.find_all(_JOB)]
    levels = [(i, found(_QDPT_LEVEL.search(scan.lines[i])).group(1).upper())
              for i in scan.find_all(_QDPT_LEVEL)]
    nel, norb = _last_int(scan, _NEL), _last_int(scan, _NORB)
    active = f"({nel},{norb})" if nel is not None and norb is not None else ""
    calc: dict = {}
    if active:
        calc["active_space"] = [nel, norb]
    b = scan.find_all(_BASIS)
    if b:
        calc["basis"] = found(_BASIS.search(scan.lines[b[-1]])).group(1)
    keywords: list[str] = []      # the "!" lines of the last job of the echoed input
    for i in scan.find_all(r"^\|\s*\d+>", 0, 5000):
        text = scan.lines[i]
        if re.match(r"^\|\s*\d+>\s*\$new_job", text, re.IGNORECASE):
            keywords = []
        elif _INPUT_KEYWORDS.match(text):
            keywords += found(_INPUT_KEYWORDS.match(text)).group(1).split("#")[0].split()
    if keywords:
        calc["keywords"] = keywords
    if len(jobs) > 1:
        calc["jobs"] = len(jobs)
    if errors:      # a module failed but ORCA went on ("trying to continue anyways")
        calc["warnings"] = [f"line {i + 1}: {scan.lines[i].strip()}" for i in errors]
    result.calculation = calc

    # zero-field splitting
    cas_heads = scan.find_all(_CAS_ZFS)
    dft_heads = scan.find_all(_DFT_ZFS)
    heads = sorted(cas_heads + dft_heads)
    for n, h in enumerate(heads):
        stop = heads[n + 1] if n + 1 < len(heads) else len(scan)
        job = _job_at(jobs, h)
        try:
            if h in cas_heads:
                level = _level_at(levels, h, "CASSCF")
                result.zfs.append(_casscf_zfs(scan, h, stop, level, active, job))
            else:
                result.zfs.append(_dft_zfs(scan, h, stop, job))
        except DataFileError:
            # an excerpt may end inside its last block: that block has no closing "E/D ="
            if banner or n + 1 < len(heads) or scan.find(_ZFS_CLOSE, h) is not None:
                raise
            name = "DFT ZFS tensor" if h in dft_heads else _zfs_block_name(scan, h, levels)
            result.warnings.append(f"line {h + 1}: the {name} is cut by the end of the excerpt "
                                   f"(line {len(scan)}) and was not read")
    if result.zfs:
        result.check_zfs_consistency()
        for z in result.zfs:
            kind = f"{z.level.lower()}-zfs"
            if kind not in result.kinds:
                result.kinds.append(kind)

    # DFT g
    g_heads = scan.find_all(_G_MATRIX)
    if g_heads:
        matrix, values, axes = _dft_g(scan, g_heads[-1], len(scan))
        result.g_matrix, result.g_tensors, result.g_axes = matrix, values[None, :], axes[None]
        result.g_method = "DFT g-matrix"
        result.kinds.append("dft-g-tensor")

    # QDPT spin-orbit spectra (the last one printed: the most correlated level comes last)
    so = scan.find_all(_SO_EIGEN)
    if so and not banner and _table_end(scan, so[-1]) >= len(scan):
        result.warnings.append(f"line {so[-1] + 1}: the spin-orbit eigenvalue table runs into the "
                               f"end of the excerpt (line {len(scan)}), so states may be missing: "
                               f"not read")
        so = so[:-1]
    if so:
        result.so_energies = _so_spectrum(scan, so[-1])
        level = _level_at(levels, so[-1], "CASSCF")
        result.so_method = f"{level}{active if level in ('CASSCF', 'NEVPT2') else ''}/QDPT-SOC"
        result.kinds.append("so-spectrum")

    # SINGLE_ANISO
    a = scan.find_all(_ANISO)
    if a:
        end = scan.find(_ANISO_END, a[-1])
        if end is None and not banner:
            result.warnings.append(f"line {a[-1] + 1}: the SINGLE_ANISO output is cut by the end "
                                   f"of the excerpt (line {len(scan)}) and was not read")
            a = []
        elif end is None:
            raise scan.error("SINGLE_ANISO output started but did not finish (no 'SINGLE_ANISO "
                             "ENDED OK'): the file is truncated", a[-1])
    if a:
        data = parse_single_aniso(scan, a[-1], end)
        level = _level_at(levels, a[-1], "CASSCF")
        base = f"{level}{active if level in ('CASSCF', 'NEVPT2') else ''}/QDPT-SOC SINGLE_ANISO"
        result.add_single_aniso(data, base)
    try:
        atoms, pcs = _geometry(scan)
    except DataFileError:
        coords = scan.find_all(_COORDS)
        if banner or not coords or _table_end(scan, coords[-1] + 1) < len(scan):
            raise
        result.warnings.append(f"line {coords[-1] + 1}: the coordinate block is cut by the end of "
                               f"the excerpt (line {len(scan)}) and was not read")
        atoms, pcs = None, None
    result.charge = _last_int(scan, _CHARGE)
    result.multiplicity = _last_int(scan, _MULT)
    if atoms is not None:
        result.atoms, result.point_charges = atoms, pcs
        result.kinds.append("geometry")
    result.finish_spin_orbit()
    if not (result.zfs or result.g_tensors is not None or result.so_energies is not None
            or result.cf_parameters is not None):
        if result.warnings:
            raise DataFileError(path, "nothing complete to read: " + "; ".join(result.warnings))
        raise DataFileError(path, "no zero-field splitting, g tensor, spin-orbit spectrum or "
                                  "SINGLE_ANISO output found: not a calculation molmag reads "
                                  "(or the file is truncated before them)")
    return result


__all__ = ["is_orca_output", "parse_orca_output"]
