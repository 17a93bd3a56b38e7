"""OpenMolcas: SINGLE_ANISO output and the ASCII ab initio data file (see
:mod:`molmag.io.molcas_aniso_data`)."""

from __future__ import annotations

import re
from pathlib import Path

from molmag.io.errors import DataFileError
from molmag.io.molcas_aniso_data import doublet_g, is_aniso_data_file, read_aniso_data
from molmag.io.qc_result import QCResult
from molmag.io.textscan import TextScan

_BANNER = re.compile(r"OpenMolcas|M O L C A S|MOLCAS executing module|pymolcas", re.IGNORECASE)


def is_molcas_output(scan: TextScan) -> bool:
    return scan.find(_BANNER, 0, 400) is not None


def parse_molcas_output(path: str | Path, scan: TextScan | None = None) -> QCResult:
    raise DataFileError(path, "OpenMolcas output parsing is being written")


__all__ = ["doublet_g", "is_aniso_data_file", "is_molcas_output", "parse_molcas_output",
           "read_aniso_data"]
