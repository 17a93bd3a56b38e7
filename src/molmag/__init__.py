"""molmag: machine-learning design of single-molecule magnets.

Structures are :class:`ase.Atoms`; magnetic quantities are in cm-1, energies in eV and
forces in eV/Angstrom (see ``molmag.physics.units``).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("molmag")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
