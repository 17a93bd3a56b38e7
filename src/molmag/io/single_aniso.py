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

from molmag.io.textscan import FLOAT, TextScan, found

_SO_SPECTRUM = re.compile(r"Spin-orbit energy spectra \(cm-1\)")
_N_SO = re.compile(r"Number of spin-orbit states\s*-*\s*:\s*(\d+)")
_SO_STATE = re.compile(r"ENERGY OF THE SPIN-ORBIT STATE\s*\(\s*(\d+)\)\s*=\s*(" + FLOAT + ")")
_GROUND_DIM = re.compile(r"Dimension of the ground multiplet\s*-*\s*:\s*(\d+)")
_GROUND_NAME = re.compile(r"Ground multiplet\s*-*\s*:\s*(\S+)")
_GROUPS = re.compile(r"Multiplicity of each group\s*-*\s*:\s*([\d\s]+)$")
_PSEUDOSPIN = re.compile(r"CALCULATION OF PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET\s+(\d+)"
                         r"\s*\(\s*effective S\s*=\s*(\S+?)\s*\)")
_G_ROW = re.compile(r"^\s*g([XYZ])\s*=\s*(" + FLOAT + r")\s*\|\s*([XYZ])m\s*\|\s*(" + FLOAT +
                    r")\s+(" + FLOAT + r")\s+(" + FLOAT + r")\s*\|")
_CF_J = re.compile(r"CALCULATION OF CRYSTAL-FIELD PARAMETERS OF THE GROUND ATOMIC MULTIPLET"
                   r"\s*J\s*=\s*([^\s.]+(?:\.\d+)?)")
_SECTION = re.compile(r"^\s*CALCULATION OF ")
_ESO_HEADER = re.compile(r"^\s*k\s*\|\s*q\s*\|\s*\(K\)\^2\s*\|\s*B\(k,q\)\s*\|")
_ESO_ROW = re.compile(r"^\s*(\d+)\s*\|\s*(-?\d+)\s*\|\s*(" + FLOAT + r")\s*\|\s*("
                      + FLOAT + r")\s*\|")
_ITO_HEADER = re.compile(r"^\s*k\s*\|\s*q\s*\|\s*B\(k,q\)\s*\|\s*C\(k,q\)\s*\|")
_ITO_ROW = re.compile(r"^\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(" + FLOAT + r")\s*\|\s*("
                      + FLOAT + r")\s*\|")
_TABLE_END = re.compile(r"^\s*-+\|\s*$")


#: Largest splitting (cm-1) of two spin-orbit states taken as one Kramers doublet (the printed
#: energies have 4 decimals; numerical Kramers splittings are ~1e-5 cm-1).
KRAMERS_TOL = 0.01


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
        if self.so_energies is None:
            return None
        kd = kramers_doublets(self.so_energies)
        if kd is not None and self.ground_dimension and self.ground_dimension % 2 == 0:
            kd = kd[: self.ground_dimension // 2]
        return kd


def kramers_doublets(so_energies) -> np.ndarray | None:
    """Energies of the degenerate pairs of a spin-orbit spectrum (cm-1, ground = 0); None when
    the states do not come in pairs within :data:`KRAMERS_TOL` (an even-electron system)."""
    e = np.sort(np.asarray(so_energies, dtype=float))
    if len(e) % 2:
        return None
    pairs = e.reshape(-1, 2)
    if np.any(pairs[:, 1] - pairs[:, 0] > KRAMERS_TOL):
        return None
    kd = pairs.mean(axis=1)
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
            g[k] = scan.number(m.group(2), j, "g value", "g_tensors")
            axes[k] = [scan.number(m.group(x), j, "magnetic axis", "g_tensors") for x in (4, 5, 6)]
            seen.add(k)
    if len(seen) != 3:
        raise scan.error(f"g tensor of the pseudospin block at line {i + 1}: found rows "
                         f"{sorted('XYZ'[k] for k in seen)} of gX, gY, gZ", where,
                         field="g_tensors")
    return g, axes


def _read_table(scan: TextScan, header: int, row: re.Pattern,
                what: str) -> list[tuple[int, re.Match]]:
    rows: list[tuple[int, re.Match]] = []
    j = header + 1
    while True:
        text = scan.line(j, f"the end of the {what} table that starts at line {header + 1}",
                         field="cf_parameters")
        if _TABLE_END.match(text) and rows:
            return rows
        m = row.match(text)
        if m:
            rows.append((j, m))
        elif not text.strip():
            raise scan.error(f"{what} table ends without its closing line", j,
                             field="cf_parameters")
        j += 1


def _check_ranks(scan: TextScan, header: int, values: dict[str, float], what: str) -> None:
    """Every rank printed must have all its components (2k+1 keys)."""
    ranks: dict[int, int] = {}
    for key in values:
        k = int(key.split(",")[0])
        ranks[k] = ranks.get(k, 0) + 1
    for k, n in ranks.items():
        if n != 2 * k + 1:
            raise scan.error(f"{what} crystal-field table: rank {k} has {n} of its {2 * k + 1} "
                             f"components (a row is missing)", header, field="cf_parameters")


def _half_integer(scan: TextScan, text: str, i: int, what: str) -> Fraction:
    """'5/2' or '3' -> Fraction; anything else is an error at line i."""
    if not re.fullmatch(r"\d+(?:/2)?", text):
        raise scan.error(f"{what}: {text!r} is not an integer or half-integer", i)
    return Fraction(text)


def _read_cf(scan: TextScan, start: int, stop: int, data: AnisoData) -> None:
    j_text = scan.match(start, _CF_J.pattern, "crystal-field section").group(1)
    j_value = _half_integer(scan, j_text, start, "J of the crystal-field section")
    data.cf_multiplet = f"J = {j_value}"
    end = scan.find(_SECTION, start + 1, stop) or stop
    eso = scan.find(_ESO_HEADER, start, end)
    if eso is not None:
        data.cf_stevens = {}
        for j, m in _read_table(scan, eso, _ESO_ROW, "ESO crystal-field"):
            key = f"{int(m.group(1))},{int(m.group(2))}"
            if key in data.cf_stevens:
                raise scan.error(f"ESO parameter ({key}) printed twice", j, field="cf_parameters")
            data.cf_stevens[key] = scan.number(m.group(4), j, "ESO parameter", "cf_parameters")
        _check_ranks(scan, eso, data.cf_stevens, "ESO")
    ito = scan.find(_ITO_HEADER, start, end)
    if ito is not None:
        values: dict[str, float] = {}
        for j, m in _read_table(scan, ito, _ITO_ROW, "ITO crystal-field"):
            k, q = int(m.group(1)), int(m.group(2))
            if f"{k},{q}" in values:
                raise scan.error(f"ITO parameter ({k},{q}) printed twice", j, field="cf_parameters")
            values[f"{k},{q}"] = scan.number(m.group(3), j, "ITO parameter B", "cf_parameters")
            if q > 0:
                values[f"{k},{-q}"] = scan.number(m.group(4), j, "ITO parameter C", "cf_parameters")
        _check_ranks(scan, ito, values, "ITO")
        data.cf_ito = values
    for table, params in (("ESO", data.cf_stevens), ("ITO", data.cf_ito)):
        if params and max(int(key.split(",")[0]) for key in params) > 2 * j_value:
            raise scan.error(f"{table} crystal-field table has ranks above 2J = {2 * j_value}",
                             start, field="cf_parameters")
    if data.cf_stevens and data.cf_ito:          # B_ESO(k, +-q) = K_kq [B or C](k, q)
        from molmag.physics.stevens import ito_factor

        if set(data.cf_stevens) != set(data.cf_ito):
            raise scan.error("the ESO and ITO crystal-field tables list different (k, q)", start,
                             field="cf_parameters")
        scale = max(abs(v) for v in data.cf_stevens.values())
        for key, b in data.cf_stevens.items():
            k, q = (int(x) for x in key.split(","))
            expect = ito_factor(k, abs(q)) * data.cf_ito[key]
            if abs(b - expect) > 1e-6 * max(abs(b), abs(expect)) + 1e-9 * scale:
                raise scan.error(f"ESO B({key}) = {b} disagrees with the ITO table "
                                 f"(K_kq * {data.cf_ito[key]} = {expect})", start,
                                 field="cf_parameters")
    if eso is None and ito is None:
        raise scan.error(f"crystal-field section of {data.cf_multiplet} has neither the ESO nor "
                         f"the ITO parameter table", start, field="cf_parameters")


def parse_single_aniso(scan: TextScan, start: int, stop: int | None = None) -> AnisoData:
    """Read the SINGLE_ANISO output between lines ``start`` and ``stop`` (0-based)."""
    stop = len(scan) if stop is None else stop
    data = AnisoData(line=start)
    i = scan.find(_N_SO, start, stop)
    n_so = int(scan.match(i, _N_SO.pattern, "number of spin-orbit states").group(1)) \
        if i is not None else None
    i = scan.find(_SO_SPECTRUM, start, stop)
    if i is not None:                                   # ORCA's information block
        data.so_energies = _read_so_spectrum(scan, i, n_so)
    else:                                               # OpenMolcas: one line per state
        rows = scan.find_all(_SO_STATE, start, stop)
        if rows:
            vals = [scan.number(found(_SO_STATE.search(scan.lines[j])).group(2), j,
                                "spin-orbit energy", "so_energies") for j in rows]
            idx = [int(found(_SO_STATE.search(scan.lines[j])).group(1)) for j in rows]
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
        if _half_integer(scan, m.group(2), i, "effective S") != Fraction(1, 2):
            continue
        if data.g_multiplets and int(m.group(1)) != data.g_multiplets[-1] + 1:
            raise scan.error(f"pseudospin multiplet {m.group(1)} follows multiplet "
                             f"{data.g_multiplets[-1]} (a block is missing)", i, field="g_tensors")
        if not data.g_multiplets and int(m.group(1)) != 1:
            raise scan.error(f"the first pseudospin block is multiplet {m.group(1)}, not 1", i,
                             field="g_tensors")
        g, axes = _read_g_block(scan, i, stop)
        data.g_multiplets.append(int(m.group(1)))
        data.g_values.append(g)
        data.g_axes.append(axes)
    i = scan.find(_CF_J, start, stop)
    if i is not None:
        _read_cf(scan, i, stop, data)
        j_cf = ground_j(data.cf_multiplet)
        assert j_cf is not None  # _read_cf writes "J = ..."
        dim = int(2 * j_cf + 1)
        if data.ground_dimension is None:               # OpenMolcas prints only J
            data.ground_dimension = dim
        elif data.ground_dimension != dim:
            raise scan.error(f"ground multiplet dimension {data.ground_dimension} but the "
                             f"crystal-field section is for {data.cf_multiplet}", i,
                             field="kd_energies")
    if data.ground_multiplet and data.ground_dimension is not None:
        j = ground_j(data.ground_multiplet)
        if j is None or int(2 * j + 1) != data.ground_dimension:
            raise scan.error(f"ground multiplet {data.ground_multiplet!r} does not have dimension "
                             f"{data.ground_dimension}", start, field="kd_energies")
    if data.so_energies is not None and data.ground_dimension and \
            len(data.so_energies) < data.ground_dimension:
        raise scan.error(f"{len(data.so_energies)} spin-orbit states printed, fewer than the "
                         f"{data.ground_dimension} of the ground multiplet", start,
                         field="so_energies")
    return data


def ground_j(multiplet: str) -> Fraction | None:
    """J of a SINGLE_ANISO multiplet label such as ``"J = 15/2"`` or ``"6H_15/2"``."""
    m = re.search(r"(\d+(?:/2)?)\s*$", multiplet.strip())
    return Fraction(m.group(1)) if m else None


__all__ = ["AnisoData", "ground_j", "parse_single_aniso"]
