"""ORCA: read its outputs into molmag labels (:mod:`.output`), write the seeds' reference
inputs (:mod:`.inputs`) and run them (:mod:`.runner`).

>>> from molmag.io.orca import parse_orca_output, orca_input, write_orca_inputs
"""

from molmag.io.orca.inputs import METHODS, orca_input, write_orca_inputs
from molmag.io.orca.output import parse_orca_output
from molmag.io.orca.runner import OrcaNotFound, find_orca, run_orca_folders

__all__ = ["METHODS", "OrcaNotFound", "find_orca", "orca_input", "parse_orca_output",
           "run_orca_folders", "write_orca_inputs"]
