"""Data in and out of molmag: the dataset store (ASE database) and extxyz files.

>>> from molmag.io import Dataset, read_records
>>> ds = Dataset("data.db")
>>> summary = ds.add_many(read_records("train.extxyz"))
>>> from molmag.io import parse_file              # ORCA / OpenMolcas / SINGLE_ANISO files
>>> ds.add(parse_file("Dy_casscf.out").to_record())
"""

from molmag.io.dataset import Dataset, ImportSummary
from molmag.io.errors import DataFileError, LabelError
from molmag.io.extxyz import read_records, record_to_atoms, write_records
from molmag.io.labels import LABELS, validate_label
from molmag.io.provenance import Provenance
from molmag.io.qc import parse_file
from molmag.io.qc_result import QCResult, ZFSBlock
from molmag.io.records import Record, structure_hash

__all__ = [
    "LABELS",
    "DataFileError",
    "Dataset",
    "ImportSummary",
    "LabelError",
    "Provenance",
    "QCResult",
    "Record",
    "parse_file",
    "read_records",
    "record_to_atoms",
    "structure_hash",
    "validate_label",
    "write_records",
    "ZFSBlock",
]
