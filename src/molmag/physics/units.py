"""Energy-unit conversions used across molmag.

Every unit is expressed as an energy in joule, from CODATA 2018 constants
(``scipy.constants``):

=========  ==========================================  ===========================
unit       energy of 1 unit                            typical use
=========  ==========================================  ===========================
``cm-1``   h c (100 cm/m) * 1 cm-1                     ZFS, crystal-field levels
``meV``    1e-3 e * 1 V                                inelastic neutron scattering
``eV``     e * 1 V                                     ASE energies
``K``      k_B * 1 K                                   barriers U_eff, temperatures
``Hartree``E_h                                         quantum-chemistry output
``MHz``    h * 1e6 Hz                                  EPR, hyperfine
``GHz``    h * 1e9 Hz                                  EPR frequencies
``kJ/mol`` 1e3 J / N_A                                 conformational energies
``kcal/mol`` 4184 J / N_A                              conformational energies
=========  ==========================================  ===========================

So ``convert(1.0, "cm-1", "K")`` = h c 100 / k_B = 1.438777 K and
``convert(1.0, "Hartree", "cm-1")`` = 219474.63 cm-1.
"""

from __future__ import annotations

from typing import SupportsFloat, cast

import numpy as np
from scipy import constants as _c

#: Energy of one unit, in joule.
UNITS: dict[str, float] = {
    "cm-1": _c.h * _c.c * 100.0,
    "meV": _c.e * 1e-3,
    "eV": _c.e,
    "K": _c.k,
    "Hartree": _c.physical_constants["Hartree energy"][0],
    "MHz": _c.h * 1e6,
    "GHz": _c.h * 1e9,
    "kJ/mol": 1e3 / _c.N_A,
    "kcal/mol": 4184.0 / _c.N_A,
}

_ALIASES = {
    "cm^-1": "cm-1", "cm**-1": "cm-1", "1/cm": "cm-1", "wavenumber": "cm-1",
    "mev": "meV", "ev": "eV", "k": "K", "kelvin": "K",
    "hartree": "Hartree", "ha": "Hartree", "eh": "Hartree", "au": "Hartree",
    "mhz": "MHz", "ghz": "GHz", "kj/mol": "kJ/mol", "kcal/mol": "kcal/mol",
}


def _canonical(unit: str) -> str:
    if unit in UNITS:
        return unit
    key = _ALIASES.get(unit.strip().lower())
    if key is None:
        raise ValueError(f"unknown energy unit {unit!r}; known units: {', '.join(UNITS)}")
    return key


def factor(from_unit: str, to_unit: str) -> float:
    """Multiplicative factor f such that x [from_unit] = f * x [to_unit]."""
    return UNITS[_canonical(from_unit)] / UNITS[_canonical(to_unit)]


def convert(value, from_unit: str, to_unit: str):
    """Convert an energy (scalar or array) from ``from_unit`` to ``to_unit``.

    ``value_to = value_from * E(1 from_unit) / E(1 to_unit)`` with the joule values of
    :data:`UNITS`.  Arrays keep their shape; scalars come back as ``float``.
    """
    f = factor(from_unit, to_unit)
    if np.isscalar(value):
        return float(cast(SupportsFloat, value)) * f
    return np.asarray(value, dtype=float) * f
