r"""The printed output of SINGLE_ANISO (Ungur & Chibotaru), as run by ORCA and by OpenMolcas.

Both programs run the same SINGLE_ANISO code, so its text blocks are read here once:

* the spin-orbit spectrum (cm-1, ground = 0): ORCA's information block (``Number of
  spin-orbit states``, ``Spin-orbit energy spectra (cm-1)``, ``Dimension of the ground
  multiplet``, ``Multiplicity of each group``) or OpenMolcas' ``ENERGY OF THE SPIN-ORBIT STATE
  (   n) =`` lines (the ground multiplet's dimension then follows from the J of the
  crystal-field section);
* ``CALCULATION OF PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET n ( effective S = 1/2)``:
  the main values gX, gY, gZ of each Kramers doublet and its main magnetic axes Xm, Ym, Zm
  (rows, in the initial Cartesian frame);
* ``CALCULATION OF CRYSTAL-FIELD PARAMETERS OF THE GROUND ATOMIC MULTIPLET J = ...``: the
  parameters B(k,q) of ``H_cf = sum_kq B(k,q) O(k,q)`` with the extended Stevens operators
  (ESO; EasySpin's ``stev``, molmag's convention ``"stevens"``), and the real ITO parameters
  B(k,q), C(k,q) of Chibotaru & Ungur, J. Chem. Phys. 137, 064112 (2012) (molmag's convention
  ``"ito"``: key ``"k,q"`` holds B(k,q) for q >= 0 and ``"k,-q"`` holds C(k,q)).  The two are
  related by ``B_ESO(k, +-q) = K_kq [B or C](k, q)`` (:func:`molmag.physics.stevens.ito_factor`;
  the tests check it on real output).

Energies in cm-1.  Every table must be complete: a block that starts but does not end raises
:class:`molmag.io.errors.DataFileError` naming the line and the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from molmag.io.textscan import FLOAT, TextScan, to_float

_SO_SPECTRUM = re.compile(r"Spin-orbit energy spectra \(cm-1\)")
_N_SO = re.compile(r"Number of spin-orbit states\s*-*\s*:\s*(\d+)")
_SO_STATE = re.compile(r"ENERGY OF THE SPIN-ORBIT STATE\s*\(\s*(\d+)\)\s*=\s*(" + FLOAT + ")")
_GROUND_DIM = re.compile(r"Dimension of the ground multiplet\s*-*\s*:\s*(\d+)")
_GROUND_NAME = re.compile(r"Ground multiplet\s*-*\s*:\s*(\S+)")
_GROUPS = re.compile(r"Multiplicity of each group\s*-*\s*:\s*([\d\s]+)$")
_PSEUDOSPIN = re.compile(r"CALCULATION OF PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET\s+(\d+)"
                         r"\s*\(\s*effective S\s*=\s*([\d/]+)\s*\)")
_G_ROW = re.compile(r"^\s*g([XYZ])\s*=\s*(" + FLOAT + r")\s*\|\s*([XYZ])m\s*\|\s*(" + FLOAT +
                    r")\s+(" + FLOAT + r")\s+(" + FLOAT + r")\s*\|")
_CF_J = re.compile(r"CALCULATION OF CRYSTAL-FIELD PARAMETERS OF THE GROUND ATOMIC MULTIPLET"
                   r"\s*J\s*=\s*([\d/]+)")
_SECTION = re.compile(r"^\s*CALCULATION OF ")
_ESO_HEADER = re.compile(r"^\s*k\s*\|\s*q\s*\|\s*\(K\)\^2\s*\|\s*B\(k,q\)\s*\|")
_ESO_ROW = re.compile(r"^\s*(\d+)\s*\|\s*(-?\d+)\s*\|\s*(" + FLOAT + r")\s*\|\s*(" + FLOAT + r")\s*\|")
_ITO_HEADER = re.compile(r"^\s*k\s*\|\s*q\s*\|\s*B\(k,q\)\s*\|\s*C\(k,q\)\s*\|")
_ITO_ROW = re.compile(r"^\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(" + FLOAT + r")\s*\|\s*(" + FLOAT + r")\s*\|")
_TABLE_END = re.compile(r"^\s*-+\|\s*$")


@dataclass
class AnisoData:
    """What one SINGLE_ANISO run printed (cm-1; g dimensionless)."""

    line: int
    so_energies: np.ndarray | None = None
    groups: list[int] = field(default_factory=list)
    ground_dimension: int | None = None
    ground_multiplet: str = ""
    g_values: list[np.ndarray] = field(default_factory=list)      # per S=1/2 multiplet
    g_axes: list[np.ndarray] = field(default_factory=list)        # rows Xm, Ym, Zm
    g_multiplets: list[int] = field(default_factory=list)
    cf_multiplet: str = ""
    cf_stevens: dict[str, float] | None = None
    cf_ito: dict[str, float] | None = None

    def kd_energies(self) -> np.ndarray | None:
        """Kramers-doublet energies (pairs of the spin-orbit spectrum, averaged, ground = 0)
        of the ground multiplet when its dimension is printed, else of all the states."""
        if self.so_energies is None or len(self.so_energies) % 2:
            return None
        e = np.sort(self.so_energies)
        kd = e.reshape(-1, 2).mean(axis=1)
        if self.ground_dimension and self.ground_dimension % 2 == 0:
            kd = kd[: self.ground_dimension // 2]
        return kd - kd[0]


def _read_so_spectrum(scan: TextScan, i: int, n: int | None) -> np.ndarray:
    vals: list[float] = []
    j = i + 1
    while j < len(scan) and re.match(r"^\s*:\s*" + FLOAT, scan.lines[j]):
        vals += scan.floats(j, "spin-orbit energy spectrum")
        j += 1
    if n is not None and len(vals) != n:
        raise scan.error(f"spin-orbit energy spectrum: {n} states announced, {len(vals)} printed",
                         i, field="so_energies")
    if not vals:
        raise scan.error("spin-orbit energy spectrum without numbers", i, field="so_energies")
    return np.array(vals)


def _read_g_block(scan: TextScan, i: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    where = scan.require(r"g TENSOR:", i, "'g TENSOR:' of the pseudospin block", min(stop, i + 40),
                         field="g_tensors")
    g = np.zeros(3)
    axes = np.zeros((3, 3))
    seen = set()
    for j in range(where + 1, min(where + 12, len(scan))):
        m = _G_ROW.match(scan.lines[j])
        if m:
            k = "XYZ".index(m.group(1))
            g[k] = to_float(m.group(2))
            axes[k] = [to_float(m.group(x)) for x in (4, 5, 6)]
            seen.add(k)
    if len(seen) != 3:
        raise scan.error(f"g tensor of the pseudospin block at line {i + 1}: found rows "
                         f"{sorted('XYZ'[k] for k in seen)} of gX, gY, gZ", where, field="g_tensors")
    return g, axes


def _read_table(scan: TextScan, header: int, row: re.Pattern, what: str) -> list[re.Match]:
    rows = []
    j = header + 1
    while True:
        text = scan.line(j, f"the end of the {what} table that starts at line {header + 1}",
                         field="cf_parameters")
        if _TABLE_END.match(text) and rows:
            return rows
        m = row.match(text)
        if m:
            rows.append(m)
        elif not text.strip():
            raise scan.error(f"{what} table ends without its closing line", j, field="cf_parameters")
        j += 1


def _read_cf(scan: TextScan, start: int, stop: int, data: AnisoData) -> None:
    data.cf_multiplet = "J = " + scan.match(start, _CF_J.pattern, "crystal-field section").group(1)
    end = scan.find(_SECTION, start + 1, stop) or stop
    eso = scan.find(_ESO_HEADER, start, end)
    if eso is not None:
        data.cf_stevens = {f"{int(m.group(1))},{int(m.group(2))}": to_float(m.group(4))
                           for m in _read_table(scan, eso, _ESO_ROW, "ESO crystal-field")}
    ito = scan.find(_ITO_HEADER, start, end)
    if ito is not None:
        values: dict[str, float] = {}
        for m in _read_table(scan, ito, _ITO_ROW, "ITO crystal-field"):
            k, q = int(m.group(1)), int(m.group(2))
            values[f"{k},{q}"] = to_float(m.group(3))
            if q > 0:
                values[f"{k},{-q}"] = to_float(m.group(4))
        data.cf_ito = values
    if eso is None and ito is None:
        raise scan.error(f"crystal-field section of {data.cf_multiplet} has neither the ESO nor "
                         f"the ITO parameter table", start, field="cf_parameters")


def parse_single_aniso(scan: TextScan, start: int, stop: int | None = None) -> AnisoData:
    """Read the SINGLE_ANISO output between lines ``start`` and ``stop`` (0-based)."""
    stop = len(scan) if stop is None else stop
    data = AnisoData(line=start)
    i = scan.find(_N_SO, start, stop)
    n_so = int(scan.match(i, _N_SO.pattern, "number of spin-orbit states").group(1)) if i is not None else None
    i = scan.find(_SO_SPECTRUM, start, stop)
    if i is not None:                                   # ORCA's information block
        data.so_energies = _read_so_spectrum(scan, i, n_so)
    else:                                               # OpenMolcas: one line per state
        rows = scan.find_all(_SO_STATE, start, stop)
        if rows:
            vals = [to_float(_SO_STATE.search(scan.lines[j]).group(2)) for j in rows]
            idx = [int(_SO_STATE.search(scan.lines[j]).group(1)) for j in rows]
            if idx != list(range(1, len(idx) + 1)):
                raise scan.error("spin-orbit energies out of order", rows[0], field="so_energies")
            data.so_energies = np.array(vals)
    i = scan.find(_GROUND_DIM, start, stop)
    if i is not None:
        data.ground_dimension = int(scan.match(i, _GROUND_DIM.pattern, "ground multiplet").group(1))
    i = scan.find(_GROUND_NAME, start, stop)
    if i is not None:
        data.ground_multiplet = scan.match(i, _GROUND_NAME.pattern, "ground multiplet").group(1)
    i = scan.find(_GROUPS, start, stop)
    if i is not None:
        data.groups = [int(x) for x in scan.match(i, _GROUPS.pattern, "groups").group(1).split()]
    for i in scan.find_all(_PSEUDOSPIN, start, stop):
        m = scan.match(i, _PSEUDOSPIN.pattern, "pseudospin block")
        if Fraction(m.group(2)) != Fraction(1, 2):
            continue
        g, axes = _read_g_block(scan, i, stop)
        data.g_multiplets.append(int(m.group(1)))
        data.g_values.append(g)
        data.g_axes.append(axes)
    i = scan.find(_CF_J, start, stop)
    if i is not None:
        _read_cf(scan, i, stop, data)
        if data.ground_dimension is None:               # OpenMolcas prints only J
            data.ground_dimension = int(2 * ground_j(data.cf_multiplet) + 1)
    return data


def ground_j(multiplet: str) -> Fraction | None:
    """J of a SINGLE_ANISO multiplet label such as ``"J = 15/2"`` or ``"6H_15/2"``."""
    m = re.search(r"(\d+(?:/2)?)\s*$", multiplet.strip())
    return Fraction(m.group(1)) if m else None


__all__ = ["AnisoData", "ground_j", "parse_single_aniso"]
