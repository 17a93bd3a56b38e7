"""Read any supported quantum-chemistry file: ORCA outputs, OpenMolcas outputs and the
SINGLE_ANISO ab initio data files; the format is recognised from the content, not the name.

>>> from molmag.io.qc import parse_file
>>> result = parse_file("Dy_complex.out")          # -> molmag.io.qc_result.QCResult
>>> result.kd_energies, result.to_record()
"""

from __future__ import annotations

from pathlib import Path

from molmag.io import molcas
from molmag.io.errors import DataFileError
from molmag.io.orca.output import BANNER, is_orca_output, parse_orca_output
from molmag.io.qc_result import QCResult
from molmag.io.textscan import TextScan


def detect_format(scan: TextScan) -> str:
    """``"orca"``, ``"openmolcas"``, ``"aniso-data"`` (SINGLE_ANISO's ASCII input file) or
    ``"unknown"``."""
    if molcas.is_aniso_data_file(scan):
        return "aniso-data"
    if scan.find(BANNER, 0, 200) is not None:
        return "orca"
    if molcas.is_molcas_output(scan):
        return "openmolcas"
    if is_orca_output(scan):          # an excerpt: ORCA's ZFS/QDPT blocks without the banner
        return "orca"
    return "unknown"


def parse_file(path: str | Path) -> QCResult:
    """Parse one file into a :class:`QCResult`; :class:`DataFileError` (naming the file, the
    line and what is missing) for anything unreadable, truncated or unrecognised."""
    scan = TextScan.read(path)
    if not any(line.strip() for line in scan.lines):
        raise DataFileError(path, "the file is empty")
    kind = detect_format(scan)
    if kind == "orca":
        return parse_orca_output(path, scan)
    if kind == "openmolcas":
        return molcas.parse_molcas_output(path, scan)
    if kind == "aniso-data":
        return molcas.read_aniso_data(path, scan)
    raise DataFileError(path, "unrecognised file: not an ORCA output, an OpenMolcas output or a "
                              "SINGLE_ANISO ab initio data file (no ORCA banner or ZFS/QDPT block, "
                              "no OpenMolcas banner, no 'nstate nss' header)")


__all__ = ["detect_format", "parse_file"]
