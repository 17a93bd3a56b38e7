"""The one gate for structures entering molmag (file readers, record building, builders'
output, calculators' ``calculate``): :func:`validate_structure`.

Checked, in this order, each failure a :class:`~molmag.io.errors.StructureError` (a
``ValueError``) with a one-line message naming the file, the frame, the atoms and the field:

* the structure has atoms and every element is a real one;
* every coordinate (and a periodic cell) is finite, no coordinate exceeds
  :data:`MAX_COORDINATE` in magnitude and a molecule spans at most ``max_extent``;
* no two atoms are closer than ``min_distance`` (default 0.5 Angstrom; the shortest real bond,
  H-H, is 0.74);
* the charge is an integer no larger in magnitude than the atoms' formal charges can sum to
  (3 per non-metal atom, 8 per metal), the multiplicity an integer >= 1, the electron count
  (sum of Z - charge) is >= 0 and its parity fits the multiplicity (odd count <-> even 2S+1);
* with a d/f metal, the multiplicity does not exceed what the metal's shell can hold
  unpaired (d: 2S+1 <= 6, f: 2S+1 <= 9 for any oxidation state) plus
  :data:`LIGAND_RADICALS` unpaired electrons per metal on radical ligands (semiquinonates,
  nitronyl nitroxides, N2^3- bridges couple ferromagnetically to the metal), and, when the metal's
  oxidation state is known (``oxidation_state``), its d^n/f^n count exists (0 <= n <= 10 or 14)
  and 2S+1 <= min(n, 10 - n (14 - n)) + 1 plus one per other unpaired-capable metal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from molmag.io.errors import StructureError
from molmag.physics.elements import F_BLOCK, TRANSITION_METALS, metal_indices

#: Default shortest allowed interatomic distance (Angstrom).
MIN_DISTANCE = 0.5
#: Default largest span of a molecule along any Cartesian axis (Angstrom).
MAX_EXTENT = 1000.0
#: No coordinate may exceed this magnitude (Angstrom), periodic or not.
MAX_COORDINATE = 1.0e5
#: Largest |formal charge| of one non-metal atom (N3-, P3-) and of one metal atom (Os8+);
#: their sum over the atoms bounds |charge|.
MAX_ATOM_CHARGE = 3
MAX_METAL_CHARGE = 8
#: Multiplicity bound for any oxidation state: d^5 (2S+1 = 6), f^7 d^1 (2S+1 = 9, e.g. Gd2+
#: as 4f^7 5d^1; with an explicit oxidation state the f count is taken as f^n, Gd2+ = f^8).
_MAX_MULT_ANY_OX = {"d": 6, "f": 9}
#: Unpaired electrons allowed on radical ligands per metal when no oxidation state is known
#: (Fe3+ or Gd3+ with one or two coupled radicals are real high-spin molecules).
LIGAND_RADICALS = 2


def _sym(atoms: Atoms, i: int) -> str:
    return f"{i} ({atoms[i].symbol})"


def shell_of(z: int) -> tuple[str, int, int] | None:
    """(``"d"`` or ``"f"``, shell capacity, core electrons before the open shell) of a metal,
    so that n = Z - core - oxidation state is its d^n / f^n count; ``None`` for other
    elements.  La and Ac count as f-block (f^0 as 3+)."""
    z = int(z)
    if z in F_BLOCK:
        return ("f", 14, 54) if z < 89 else ("f", 14, 86)
    if z in TRANSITION_METALS:
        if z <= 30:
            return "d", 10, 18
        if z <= 48:
            return "d", 10, 36
        return "d", 10, 68
    return None


def open_shell_count(z: int, oxidation_state: int) -> int | None:
    """d^n / f^n electron count of element ``z`` in ``oxidation_state`` (e.g. Co2+ -> 7,
    Dy3+ -> 9, U4+ -> 2); ``None`` if ``z`` is not a d/f metal.  Can be out of range
    (negative or above the shell's capacity) for impossible oxidation states."""
    sh = shell_of(z)
    if sh is None:
        return None
    return int(z) - sh[2] - int(oxidation_state)


def max_unpaired(z: int, oxidation_state: int | None = None) -> int | None:
    """Most unpaired electrons the metal's open shell can hold: min(n, cap - n) for a known
    oxidation state, else the bound over all oxidation states (d: 5, f: 8)."""
    sh = shell_of(z)
    if sh is None:
        return None
    if oxidation_state is None:
        return _MAX_MULT_ANY_OX[sh[0]] - 1
    n = open_shell_count(z, oxidation_state)
    assert n is not None  # z has an open shell
    return max(0, min(n, sh[1] - n))


def _metal_max_unpaired(z: int) -> int:
    """:func:`max_unpaired` of a d/f metal (of :func:`metal_indices`), which has a value."""
    n = max_unpaired(z)
    assert n is not None, f"Z = {z} is not a d/f metal"
    return n


def _show(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


def _as_integer(value: Any, field: str, fail) -> int:
    if isinstance(value, bool):
        fail(f"must be an integer, got {_show(value)}", field)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            fail(f"must be an integer, got {_show(value)}", field)
    try:
        f = float(value)
    except (TypeError, ValueError):
        fail(f"must be an integer, got {_show(value)}", field)
    if not np.isfinite(f) or f != round(f):
        fail(f"must be an integer, got {_show(value)}", field)
    return int(round(f))


def validate_structure(atoms: Atoms, *, source=None, frame: int | None = None,
                       charge: Any = None, multiplicity: Any = None,
                       min_distance: float = MIN_DISTANCE, max_extent: float = MAX_EXTENT,
                       metal_index: int | None = None,
                       oxidation_state: int | None = None) -> None:
    """Check one structure; return ``None`` or raise :class:`StructureError`.

    ``source`` (a file name) and ``frame`` (0-based) only go into the message.  ``charge``
    and ``multiplicity`` are checked when given (``None``: not known).  ``metal_index`` names
    the metal whose shell bounds the multiplicity (default: every d/f atom);
    ``oxidation_state`` is that metal's, when the caller knows it (e.g. the charge minus the
    donors' formal charges), and enables the d^n/f^n check.  ``min_distance=0`` turns the
    close-contact check off, ``max_extent=None`` the span check.
    """

    def fail(message: str, field: str | None = None, idx: tuple[int, ...] = ()):
        raise StructureError(source, message, frame, field, idx)

    if not isinstance(atoms, Atoms):
        fail(f"expected an ase.Atoms structure, got {type(atoms).__name__}")
    n = len(atoms)
    if n == 0:
        fail("contains no atoms", "positions")
    numbers = np.asarray(atoms.numbers)
    bad = np.flatnonzero((numbers < 1) | (numbers > 118))
    if bad.size:
        i = int(bad[0])
        fail(f"atom {i} has no element (atomic number {int(numbers[i])})", "symbols", (i,))

    pos = np.asarray(atoms.positions, dtype=float)
    nonfinite = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
    if nonfinite.size:
        i = int(nonfinite[0])
        more = f" (and {nonfinite.size - 1} more atoms)" if nonfinite.size > 1 else ""
        fail(f"atom {_sym(atoms, i)} has a non-finite coordinate {pos[i].tolist()}{more}",
             "positions", (i,))
    huge = np.flatnonzero(np.max(np.abs(pos), axis=1) > MAX_COORDINATE)
    if huge.size:
        i = int(huge[0])
        fail(f"atom {_sym(atoms, i)} lies at {pos[i].tolist()}, beyond "
             f"{MAX_COORDINATE:g} Angstrom", "positions", (i,))
    pbc = bool(np.any(atoms.pbc))
    if pbc:
        cell = np.asarray(atoms.cell, dtype=float)
        if not np.all(np.isfinite(cell)) or np.max(np.abs(cell)) > MAX_COORDINATE:
            fail(f"the cell {cell.tolist()} is not finite or beyond {MAX_COORDINATE:g} Angstrom",
                 "cell")
        if abs(np.linalg.det(cell)) < 1e-6:
            fail("periodic structure with a degenerate (zero-volume) cell", "cell")
    elif max_extent is not None and n > 1:
        span = pos.max(axis=0) - pos.min(axis=0)
        axis = int(np.argmax(span))
        if span[axis] > max_extent:
            lo, hi = int(np.argmin(pos[:, axis])), int(np.argmax(pos[:, axis]))
            fail(f"spans {span[axis]:.4g} Angstrom along {'xyz'[axis]} (atoms {_sym(atoms, lo)} "
                 f"and {_sym(atoms, hi)}), more than {max_extent:g}", "positions", (lo, hi))

    if min_distance and n > 1:
        pair = _closest_pair_below(atoms, pos, float(min_distance), pbc)
        if pair is not None:
            i, j, d = pair
            fail(f"atoms {_sym(atoms, i)} and {_sym(atoms, j)} are {d:.3f} Angstrom apart "
                 f"(closer than {min_distance:g})", "positions", (i, j))

    if metal_index is not None:
        metal_index = _as_integer(metal_index, "metal_index", fail)
        if not 0 <= metal_index < n:
            fail(f"{metal_index} is not an atom index (0..{n - 1})", "metal_index")
    if charge is None and multiplicity is None:
        return
    nz = int(numbers.sum())
    if charge is not None:
        charge = _as_integer(charge, "charge", fail)
        if nz - charge < 0:
            fail(f"charge {charge:+d} leaves {nz - charge} electrons ({nz} protons)", "charge")
        if nz - charge == 0 and n > 1:
            fail(f"charge {charge:+d} leaves no electrons to bind {n} atoms", "charge")
        nmetal = int(sum(1 for z in numbers if shell_of(z) is not None))
        bound = MAX_ATOM_CHARGE * (n - nmetal) + MAX_METAL_CHARGE * nmetal
        if abs(charge) > bound:
            fail(f"charge {charge:+d} on {n} atoms is more than their formal charges can sum "
                 f"to (at most {bound}: {MAX_ATOM_CHARGE} per atom, {MAX_METAL_CHARGE} per "
                 "metal)", "charge")
    if multiplicity is not None:
        multiplicity = _as_integer(multiplicity, "multiplicity", fail)
        if multiplicity < 1:
            fail(f"must be >= 1, got {multiplicity}", "multiplicity")
    if charge is not None and multiplicity is not None:
        nelec = nz - charge
        if nelec % 2 == multiplicity % 2:
            fail(f"multiplicity {multiplicity} is impossible with {nelec} electrons (charge "
                 f"{charge:+d}): an {'even' if nelec % 2 == 0 else 'odd'} count needs an "
                 f"{'odd' if nelec % 2 == 0 else 'even'} multiplicity", "multiplicity")
        if multiplicity - 1 > nelec:
            fail(f"multiplicity {multiplicity} needs {multiplicity - 1} unpaired electrons; "
                 f"charge {charge:+d} leaves {nelec}", "multiplicity")
    if multiplicity is None:
        return
    metals = [metal_index] if metal_index is not None else metal_indices(atoms)
    metals = [m for m in metals if shell_of(numbers[m]) is not None]
    if not metals:
        return
    if oxidation_state is not None:
        m = metals[0]
        ox = _as_integer(oxidation_state, "oxidation_state", fail)
        shell = shell_of(numbers[m])
        nd = open_shell_count(numbers[m], ox)
        assert shell is not None and nd is not None  # metals were kept only with a shell
        kind, cap, _ = shell
        ion = f"{atoms[m].symbol}{ox:+d}"
        if not 0 <= nd <= cap:
            what = f" (charge {charge:+d})" if charge is not None else ""
            fail(f"the metal {_sym(atoms, m)} would be {ion}{what}, which has no {kind}^n "
                 f"configuration ({kind}^{nd})", "charge" if charge is not None else
                 "oxidation_state", (m,))
        bound = min(nd, cap - nd)
        others = sum(_metal_max_unpaired(numbers[k]) for k in metal_indices(atoms) if k != m)
        if multiplicity - 1 > bound + others:
            what = f"charge {charge:+d} makes " if charge is not None else ""
            fail(f"{what}the metal {_sym(atoms, m)} {ion} ({kind}^{nd}, at most {bound} "
                 f"unpaired electrons), which cannot have multiplicity {multiplicity} "
                 f"(at most {bound + others + 1})", "multiplicity", (m,))
        return
    metal_idx = metal_indices(atoms)
    bound = sum(_metal_max_unpaired(numbers[k]) for k in metal_idx)
    if multiplicity - 1 > bound + LIGAND_RADICALS * len(metal_idx):
        names = ", ".join(_sym(atoms, k) for k in metal_idx)
        fail(f"multiplicity {multiplicity} needs {multiplicity - 1} unpaired electrons; the "
             f"metal {names} can hold at most {bound} in any oxidation state, plus "
             f"{LIGAND_RADICALS * len(metal_idx)} on radical ligands",
             "multiplicity", tuple(metal_idx))


def _closest_pair_below(atoms: Atoms, pos: np.ndarray, cutoff: float,
                        pbc: bool) -> tuple[int, int, float] | None:
    """The closest pair of atoms nearer than ``cutoff`` (lowest indices first among ties), or
    ``None``.  Minimum image for periodic cells; an atom closer than ``cutoff`` to its own
    periodic image counts as a pair with itself."""
    if pbc:
        from ase.neighborlist import neighbor_list

        i, j, d = neighbor_list("ijd", atoms, cutoff, self_interaction=False)
        if not len(d):
            return None
        k = int(np.lexsort((j, i, np.round(d, 9)))[0])
        a, b = sorted((int(i[k]), int(j[k])))
        return a, b, float(d[k])
    from scipy.spatial import cKDTree  # O(N log N), no N^2 distance matrix

    pairs = cKDTree(pos).query_pairs(cutoff, output_type="ndarray")
    if not len(pairs):
        return None
    pairs = np.sort(pairs, axis=1)
    d = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)
    k = int(np.lexsort((pairs[:, 1], pairs[:, 0], np.round(d, 9)))[0])
    return int(pairs[k, 0]), int(pairs[k, 1]), float(d[k])


def checked_charge(value: Any, field: str = "charge", source=None) -> int:
    """An integer charge from a user value (``int``, integral ``float``, ``"-2"``); anything
    else raises :class:`StructureError` naming ``field``."""

    def fail(message, f=None, idx=()):
        raise StructureError(source, message, None, f, idx)

    return _as_integer(value, field, fail)
