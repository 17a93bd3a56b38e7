"""The labels a molmag dataset row can hold: names, units, shapes and validation.

=================  =============  ==========================================================
label              unit           value
=================  =============  ==========================================================
``energy``         eV             float
``forces``         eV/Angstrom    (natoms, 3)
``zfs_tensor``     cm-1           (3, 3) D tensor of H = S.D.S
``kd_energies``    cm-1           (n,) Kramers-doublet energies, ascending, ground = 0
``g_tensors``      (none)         (n, 3) principal g values per doublet, or (n, 3, 3) tensors
``cf_parameters``  cm-1           {"convention": "stevens"|"wybourne"|"ito",
                                  "values": {"k,q": B_kq}}
``charges``        e              (natoms,) atomic partial charges (e.g. GFN2-xTB Mulliken)
``dipole``         e*Angstrom     (3,) molecular dipole moment (the ASE unit; 1 e*A = 4.803 D)
``polarizabilities`` Angstrom^3   (natoms,) static atomic dipole polarisabilities (D4)
``atomic_dipoles`` e*Angstrom     (natoms,) magnitudes of the atomic dipole moments
                                  (GFN2-xTB atomic multipoles, tblite's xtbml ``dipm_A``)
=================  =============  ==========================================================

The names are those of molmag's ASE calculators; in extxyz files each label is stored under
``REF_<name>`` (the MACE/apax convention).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from molmag.io.errors import LabelError

CF_CONVENTIONS = ("stevens", "wybourne", "ito")
#: Labels with one value per atom (stored as per-atom arrays in extxyz).
PER_ATOM_LABELS = ("forces", "charges", "polarizabilities", "atomic_dipoles")


@dataclass(frozen=True)
class LabelSpec:
    name: str
    unit: str
    description: str


LABELS: dict[str, LabelSpec] = {
    s.name: s
    for s in (
        LabelSpec("energy", "eV", "total or conformational energy"),
        LabelSpec("forces", "eV/Angstrom", "forces on the atoms"),
        LabelSpec("zfs_tensor", "cm-1", "zero-field-splitting D tensor (3x3)"),
        LabelSpec("kd_energies", "cm-1", "Kramers-doublet energies, ground = 0"),
        LabelSpec("g_tensors", "", "g values (or tensors) of each Kramers doublet"),
        LabelSpec("cf_parameters", "cm-1", "crystal-field parameters with their convention"),
        LabelSpec("charges", "e", "atomic partial charges"),
        LabelSpec("dipole", "e*Angstrom", "molecular dipole moment"),
        LabelSpec("polarizabilities", "Angstrom^3", "static atomic dipole polarisabilities"),
        LabelSpec("atomic_dipoles", "e*Angstrom", "magnitudes of the atomic dipole moments"),
    )
}


def _float_array(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise LabelError(name, f"not numeric ({exc})") from None
    if not np.all(np.isfinite(arr)):
        raise LabelError(name, "contains NaN or infinite values")
    return arr


_KQ = re.compile(r"^\s*\(?\s*(-?\d+)\s*,\s*(-?\d+)\s*\)?\s*$")


def _cf_parameters(value: Any) -> dict:
    name = "cf_parameters"
    if not isinstance(value, dict) or "convention" not in value or "values" not in value:
        raise LabelError(name, 'expected {"convention": ..., "values": {"k,q": value}}')
    conv = str(value["convention"]).strip().lower()
    if conv not in CF_CONVENTIONS:
        raise LabelError(name, f"unknown convention {value['convention']!r}; "
                               f"use one of {', '.join(CF_CONVENTIONS)}")
    values = value["values"]
    if not isinstance(values, dict) or not values:
        raise LabelError(name, "'values' must be a non-empty mapping 'k,q' -> number")
    out: dict[str, float] = {}
    for key, v in values.items():
        m = _KQ.match(",".join(map(str, key)) if isinstance(key, tuple) else str(key))
        if not m:
            raise LabelError(name, f"key {key!r} is not of the form 'k,q'")
        k, q = int(m.group(1)), int(m.group(2))
        if not (1 <= k <= 16 and abs(q) <= k):
            raise LabelError(name, f"rank/component ({k},{q}) out of range "
                                   "(1 <= k <= 16, |q| <= k)")
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise LabelError(name, f"value of ({k},{q}) is not a number: {v!r}") from None
        if not np.isfinite(fv):
            raise LabelError(name, f"value of ({k},{q}) is not finite")
        out[f"{k},{q}"] = fv
    extra = set(value) - {"convention", "values"}
    if extra:
        raise LabelError(name, f"unexpected keys {sorted(extra)}")
    return {"convention": conv, "values": out}


def validate_label(name: str, value: Any, natoms: int) -> Any:
    """Check a label's type and shape and return it normalised (float arrays, canonical
    cf_parameters).  Raises :class:`LabelError` naming the label."""
    if name not in LABELS:
        raise LabelError(name, f"unknown label; molmag labels are {', '.join(LABELS)}")
    if name == "cf_parameters":
        return _cf_parameters(value)
    arr = _float_array(name, value)
    if name == "energy":
        if arr.size != 1:
            raise LabelError(name, f"expected one number, got shape {arr.shape}")
        return float(arr.reshape(()))
    if name == "forces":
        if arr.shape != (natoms, 3):
            raise LabelError(name, f"expected shape ({natoms}, 3), got {arr.shape}")
        return arr
    if name == "zfs_tensor":
        if arr.shape == (9,):
            arr = arr.reshape(3, 3)
        if arr.shape != (3, 3):
            raise LabelError(name, f"expected a 3x3 tensor, got shape {arr.shape}")
        return arr
    if name == "kd_energies":
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.size == 0:
            raise LabelError(name, f"expected a 1-D list of energies, got shape {arr.shape}")
        if np.any(np.diff(arr) < -1e-9):
            raise LabelError(name, "energies must be in ascending order")
        return arr
    if name == "g_tensors":
        if arr.ndim == 1 and arr.size % 3 == 0 and arr.size > 0:
            arr = arr.reshape(-1, 3)
        if not (arr.ndim == 2 and arr.shape[1] == 3) \
                and not (arr.ndim == 3 and arr.shape[1:] == (3, 3)):
            raise LabelError(name, f"expected (n, 3) g values or (n, 3, 3) tensors, "
                                   f"got {arr.shape}")
        return arr
    if name in ("charges", "polarizabilities", "atomic_dipoles"):
        if arr.shape != (natoms,):
            raise LabelError(name, f"expected one value per atom ({natoms}), got shape {arr.shape}")
        return arr
    if name == "dipole":
        if arr.shape != (3,):
            raise LabelError(name, f"expected a 3-vector, got shape {arr.shape}")
        return arr
    raise AssertionError(name)  # every label is handled above


def labels_equal(name: str, a: Any, b: Any) -> bool:
    """Whether two validated values of a label are the same (to 1e-10 relative)."""
    if name == "cf_parameters":
        if a["convention"] != b["convention"] or set(a["values"]) != set(b["values"]):
            return False
        return all(np.isclose(a["values"][k], b["values"][k], rtol=1e-10, atol=1e-12)
                   for k in a["values"])
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-10, atol=1e-12))
