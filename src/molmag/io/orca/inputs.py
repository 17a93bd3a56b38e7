"""ORCA input writers that repeat the reference calculations of the seed papers.

Structures are :class:`ase.Atoms` with Cartesian coordinates in Angstrom (ORCA's default unit
for ``* xyz`` blocks, so they are written unchanged, 10 decimals).  ORCA numbers atoms from 0,
as ASE does, so every atom index written below (geometry constraints) is the ASE index.

Methods (:data:`METHODS`)
-------------------------
``co-casscf``
    Lunghi & Sanvito 2020, SI "Ab Initio Calculations" ([Co(pdms)2]2-): CASSCF(7,5) on the
    Co(II) 3d7 shell, state-averaged over *all* the d7 quartets (10) and doublets (40), spin-orbit
    coupling by quasi-degenerate perturbation theory (``rel dosoc true end``), which gives the D
    tensor; optional SC-NEVPT2 (``PTMethod SC_NEVPT2``).  Basis: def2-TZVP on Co, N, S and every
    other element except C and H, def2-SVP on C and H.  (The SI reads "def2-TZVP for C, N and S
    and def2-SVP for C and H"; the first "C" can only be Co.)  def2-TZVP/C for all elements as
    the correlation-fitting (AuxC) basis: ORCA uses the AuxC slot when the CASSCF integral
    transformation is done with RI (``TrafoStep RI``) and in NEVPT2, so that is what the paper's
    "def2-TZVP/C auxiliary basis" implies; the Fock builds stay exact (no RIJCOSX, which the
    paper does not mention).  ``actorbs dorbs`` keeps the five 3d-like orbitals in the active
    space (ORCA then also runs AILFT, which needs the AuxC basis that is present).
``dy-casscf``
    Khatibi et al. 2026 (GAUSS-II), Methods "Electronic structure simulations": DKH2 scalar
    relativity with picture-change corrections to second order in the SOC operator
    (``%rel method DKH picturechange 2 end``), DKH-def2-TZVPP on all elements but Dy,
    SARC2-DKH-QZVP on Dy, state-averaged CASSCF(9,7) over all 21 sextets of 4f9 (and, with
    ``quartets=True``, all 224 quartets), SOC by QDPT and SINGLE_ANISO for the J = 15/2
    multiplet: 8 Kramers doublets, ``mltp 2, 2, 2, 2, 2, 2, 2, 2``.  The ``aniso`` block
    repeats the syntax of a real ORCA 6.1 run (../shared/data/qc-outputs/
    orca610_ce3_axial_pointcharges_single_aniso.out, input echo lines 225-280), ``quax 4``
    included; SINGLE_ANISO inside ``%casscf`` needs ORCA >= 6 (``single_aniso=False`` leaves it
    out for ORCA 5, which still prints the QDPT Kramers-doublet energies).  ``! NoRI`` as in that
    run; ``! AutoAux`` only so that the AILFT step started by ``actorbs forbs`` finds an AuxC
    basis (the same run stops AILFT with "AuxC requested but not present", line 24949).
``dy-geometry`` / ``dy-geometry-relax``
    GAUSS-II geometry step: BP86-D3(BJ), DKH2, DKH-def2-TZVPP, SCF converged to 1e-8 Eh
    (``TightSCF``, TolE = 1e-8 Eh as the ORCA 6.1 output above prints, and ``TolE 1e-8``
    written out), with Dy(III) replaced by the f-free Y(III).  ``dy-geometry`` is the first,
    constrained optimisation (see :func:`pentagon_constraints`); ``dy-geometry-relax`` the
    second, unconstrained one.  They are two inputs rather than one ``$new_job`` file because a
    multi-job ORCA input may carry the ``%geom`` constraints of the first job into the second;
    :func:`write_orca_inputs` writes both, the second reading the first's final geometry
    (``<name>.xyz``) and orbitals (``<name>.gbw``).

    Basis for Y: ORCA's DKH-recontracted def2 sets (DKH-def2-*) exist for H-Kr only, so Y
    (Z = 39) gets SARC-DKH-TZVPP, the all-electron DKH basis of the same TZVPP quality that ORCA
    provides for Rb-Rn (Rolfes, Neese & Pantazis, J. Comput. Chem. 41, 1842 (2020); the ORCA 6
    basis-set table lists SARC-DKH-TZVP/TZVPP for Rb-Rn and Ac-Lr and DKH-def2-* for H-Kr); the
    GAUSS-II authors' own geometry script assigns the same ``NewGTO Y "SARC-DKH-TZVPP"``.  Any
    other element beyond Kr gets SARC-DKH-TZVPP too (lanthanides SARC2-DKH-QZVP).  RI-J (ORCA's
    default for a GGA) uses SARC/J, the general-purpose Coulomb-fitting basis ORCA recommends for
    all-electron scalar-relativistic calculations (H-Rn).

Not reproduced: GAUSS-II's fragment-built CASSCF starting orbitals (ligands without the metal by
DFT, the bare Dy(III) by DFT/CASSCF, combined); pass ``moinp="guess.gbw"`` to start from such
orbitals.

Charge and multiplicity
-----------------------
``charge`` and ``multiplicity`` default to ``atoms.info["charge"]`` (or ``"total_charge"``, the
key molmag datasets use) and ``atoms.info["multiplicity"]``; a charge can also come from ASE
initial charges.  The multiplicity defaults to the high-spin state of the metal shell: 4 for
Co(II) 3d7 (S = 3/2), 6 for Dy(III) 4f9 (S = 5/2).  Electron count N = sum(Z) - charge must
allow the multiplicity 2S + 1 (N odd <=> 2S + 1 even).  For the Y(III) surrogate the charge is
unchanged (Y3+ replaces Dy3+) and its multiplicity follows from removing the 4f9 shell's five
unpaired electrons: 2S + 1 = (6 - 1) - 5 + 1 = 1, which needs N(Y complex) = N - 27 even.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols, covalent_radii

from molmag.physics.elements import bonded_neighbours

log = logging.getLogger(__name__)

METHODS = ("co-casscf", "dy-casscf", "dy-geometry", "dy-geometry-relax")

#: Angle between neighbouring equatorial donors of a regular pentagon (degrees).
PENTAGON_ANGLE = 72.0


@dataclass(frozen=True)
class _Spec:
    metal: str          # element the method needs
    ion_charge: int     # oxidation state of that metal
    nel: int            # active electrons (d7 / f9)
    norb: int           # active orbitals (3d / 4f)
    mult: int           # high-spin multiplicity of the shell: the reference state


_SPECS = {
    "co-casscf": _Spec("Co", 2, 7, 5, 4),
    "dy-casscf": _Spec("Dy", 3, 9, 7, 6),
    "dy-geometry": _Spec("Dy", 3, 9, 7, 6),
    "dy-geometry-relax": _Spec("Dy", 3, 9, 7, 6),
}
_GEOMETRY = ("dy-geometry", "dy-geometry-relax")

_LANTHANIDES = range(57, 72)


# --- state counting ----------------------------------------------------------------------
def n_spin_states(norb: int, nel: int, multiplicity: int) -> int:
    """Number of spin-adapted states (CSFs) of ``nel`` electrons in ``norb`` orbitals with total
    spin S = (multiplicity - 1)/2: the Weyl-Paldus dimension

        N = (2S + 1)/(n + 1) * C(n + 1, nel/2 - S) * C(n + 1, nel/2 + S + 1),   n = norb.

    For a complete active space this is the number of CASSCF roots that exhausts the spin block:
    d7 quartets 10, doublets 40; f9 sextets 21, quartets 224, doublets 490.  Returns 0 when the
    multiplicity is impossible for ``nel`` (wrong parity or too high).
    """
    two_s = multiplicity - 1
    if norb < 0 or nel < 0 or nel > 2 * norb or two_s < 0 or (nel - two_s) % 2:
        return 0
    a = (nel - two_s) // 2          # nel/2 - S
    b = (nel + two_s) // 2 + 1      # nel/2 + S + 1
    if a < 0 or b > norb + 1:
        return 0
    return (two_s + 1) * math.comb(norb + 1, a) * math.comb(norb + 1, b) // (norb + 1)


# --- charge, multiplicity, metal ---------------------------------------------------------
def _label(atoms: Atoms, title: str | None) -> str:
    name = title or atoms.info.get("name")
    formula = atoms.get_chemical_formula()
    return f"{name!s} ({formula})" if name else formula


def _as_int(value: Any, what: str, label: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"structure {label}: {what} must be an integer, got {value!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"structure {label}: {what} must be an integer, got {value!r}")
    return int(f)


def _resolve_charge(atoms: Atoms, charge: int | None, label: str) -> int:
    if charge is not None:
        return _as_int(charge, "charge", label)
    for key in ("charge", "total_charge"):
        if atoms.info.get(key) is not None:
            return _as_int(atoms.info[key], f"atoms.info[{key!r}]", label)
    q = np.asarray(atoms.get_initial_charges(), dtype=float)
    if np.any(q != 0.0):
        return _as_int(round(float(q.sum()), 6), "sum of the initial charges", label)
    raise ValueError(
        f"structure {label}: the total charge is unknown (it depends on the ligands); "
        "set atoms.info['charge'] or pass charge=")


def _metal_index(atoms: Atoms, spec: _Spec, method: str, metal_index: int | None,
                 label: str) -> int:
    if metal_index is not None:
        i = _as_int(metal_index, "metal_index", label)
        if not 0 <= i < len(atoms):
            raise ValueError(f"structure {label}: metal_index {i} is not an atom index "
                             f"(0..{len(atoms) - 1})")
        if atoms[i].symbol != spec.metal:
            raise ValueError(f"structure {label}: method {method!r} needs a {spec.metal} centre "
                             f"but atom {i} is {atoms[i].symbol}")
        return i
    idx = [a.index for a in atoms if a.symbol == spec.metal]
    if not idx:
        raise ValueError(f"structure {label} has no {spec.metal} atom: method {method!r} needs a "
                         f"{spec.metal}({'I' * spec.ion_charge}) centre")
    if len(idx) > 1:
        raise ValueError(f"structure {label} has {len(idx)} {spec.metal} atoms ({idx}); "
                         "pass metal_index=")
    return idx[0]


def _electron_count(atoms: Atoms, charge: int) -> int:
    return int(np.sum(atoms.numbers)) - charge


def _check_parity(nelec: int, multiplicity: int, label: str, what: str) -> None:
    if nelec < 0:
        raise ValueError(f"structure {label}: {what} has a negative electron count ({nelec})")
    if nelec % 2 == multiplicity % 2:
        raise ValueError(
            f"structure {label}: multiplicity {multiplicity} is impossible for {what} with "
            f"{nelec} electrons (an {'even' if nelec % 2 == 0 else 'odd'} count needs an "
            f"{'odd' if nelec % 2 == 0 else 'even'} multiplicity); check the charge")


@dataclass(frozen=True)
class OrcaSystem:
    """What an input is written for: the atoms ORCA sees (Y for Dy in the geometry step), their
    charge and multiplicity, and those of the structure as given."""

    atoms: Atoms
    charge: int
    multiplicity: int
    metal_index: int
    structure_charge: int
    structure_multiplicity: int


def resolve_system(atoms: Atoms, method: str, *, charge: int | None = None,
                   multiplicity: int | None = None, metal_index: int | None = None,
                   title: str | None = None) -> OrcaSystem:
    """Check ``atoms`` for ``method`` and work out charge, multiplicity and the metal.

    ``charge``/``multiplicity`` are those of the structure as given (the Dy complex for the
    geometry methods); see the module docstring for the defaults and the Y(III) rule.  Raises
    ``ValueError`` naming the structure when the metal is missing, the charge is unknown or the
    electron count does not fit the multiplicity.
    """
    if method not in _SPECS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    spec = _SPECS[method]
    label = _label(atoms, title)
    if len(atoms) == 0:
        raise ValueError(f"structure {label} is empty")
    if atoms.pbc.any():
        raise ValueError(f"structure {label} is periodic; ORCA inputs are written for molecules")
    m = _metal_index(atoms, spec, method, metal_index, label)
    q = _resolve_charge(atoms, charge, label)
    if multiplicity is None:
        multiplicity = atoms.info.get("multiplicity", spec.mult)
    mult = _as_int(multiplicity, "multiplicity", label)
    nelec = _electron_count(atoms, q)
    _check_parity(nelec, mult, label, f"charge {q:+d}")
    if mult != spec.mult:
        raise ValueError(
            f"structure {label}: method {method!r} starts from the high-spin "
            f"{spec.metal}({'I' * spec.ion_charge}) {'3d' if spec.norb == 5 else '4f'}"
            f"{spec.nel} state, multiplicity {spec.mult}, not {mult}")
    if method not in _GEOMETRY:
        return OrcaSystem(atoms.copy(), q, mult, m, q, mult)
    # Y(III) surrogate: same charge, the five unpaired 4f electrons removed.
    y_atoms = substitute_metal(atoms, m, "Y")
    y_nelec = _electron_count(y_atoms, q)
    y_unpaired = (mult - 1) - (spec.mult - 1)
    y_mult = y_unpaired + 1
    if y_nelec % 2 == y_mult % 2:
        raise ValueError(
            f"structure {label}: the Y(III) substitute has {y_nelec} electrons, which cannot "
            f"form the closed-shell singlet the geometry step assumes")
    return OrcaSystem(y_atoms, q, y_mult, m, q, mult)


def substitute_metal(atoms: Atoms, index: int, symbol: str = "Y") -> Atoms:
    """A copy of ``atoms`` with atom ``index`` turned into ``symbol`` (positions, order, info and
    everything else unchanged); GAUSS-II optimises Dy(III) complexes as their Y(III) analogues."""
    new = atoms.copy()
    numbers = new.numbers.copy()
    numbers[index] = atomic_numbers[symbol]
    new.numbers = numbers
    return new


# --- basis sets -------------------------------------------------------------------------
def basis_assignment(atoms: Atoms, method: str) -> dict[str, str]:
    """Orbital basis of every element present, as ``{symbol: basis}``, for the atoms ORCA sees
    (for the geometry methods: after the Y substitution).

    co-casscf: def2-SVP for C and H, def2-TZVP for all other elements (H-Rn without Ce-Lu).
    DKH methods: DKH-def2-TZVPP for H-Kr, SARC2-DKH-QZVP for the lanthanides (Dy), SARC-DKH-TZVPP
    for the other elements Rb-Rn (Y included).  Raises ``ValueError`` for an element the family
    does not cover.
    """
    if method not in _SPECS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    out = {}
    for z in sorted(set(int(z) for z in atoms.numbers)):
        sym = chemical_symbols[z]
        if method == "co-casscf":
            if z in (1, 6):
                out[sym] = "def2-SVP"
            elif z <= 86 and z not in range(58, 72):
                out[sym] = "def2-TZVP"
            else:
                raise ValueError(f"no def2-TZVP basis for {sym} "
                                 "(co-casscf covers H-Rn without Ce-Lu)")
        else:
            if z <= 36:
                out[sym] = "DKH-def2-TZVPP"
            elif z in _LANTHANIDES:
                out[sym] = "SARC2-DKH-QZVP"
            elif z <= 86:
                out[sym] = "SARC-DKH-TZVPP"
            else:
                raise ValueError(f"no DKH basis chosen for {sym} (the DKH methods cover H-Rn)")
    return out


_GLOBAL_BASIS = {"co-casscf": "def2-SVP", "dy-casscf": "DKH-def2-TZVPP",
                 "dy-geometry": "DKH-def2-TZVPP", "dy-geometry-relax": "DKH-def2-TZVPP"}


def basis_block(atoms: Atoms, method: str) -> str:
    """The ``%basis`` block: one ``NewGTO <El> "<basis>" end`` line for every element whose basis
    differs from the method's global keyword basis (def2-SVP, DKH-def2-TZVPP), and for co-casscf
    ``NewECP <El> "def2-ECP" end`` for elements beyond Kr (the def2 sets are meant with those
    ECPs).  Empty string when no element needs one."""
    glob = _GLOBAL_BASIS[method]
    lines = []
    for sym, basis in basis_assignment(atoms, method).items():
        if basis != glob:
            lines.append(f'  NewGTO {sym} "{basis}" end')
            if method == "co-casscf" and atomic_numbers[sym] > 36:
                lines.append(f'  NewECP {sym} "def2-ECP" end')
    if not lines:
        return ""
    return "%basis\n" + "\n".join(lines) + "\nend\n"


# --- geometry constraints ----------------------------------------------------------------
def _water_oxygens(atoms: Atoms, metal: int, donors: list[int]) -> list[int]:
    out = []
    for i in donors:
        if atoms[i].symbol != "O":
            continue
        d = atoms.get_distances(i, range(len(atoms)))
        h = [j for j in range(len(atoms)) if atoms[j].symbol == "H"
             and d[j] < 1.2 * (covalent_radii[1] + covalent_radii[8])]
        if len(h) == 2:
            out.append(i)
    return out


def equatorial_donors(atoms: Atoms, metal_index: int) -> list[int]:
    """The five equatorial oxygens of a pentagonal-bipyramidal Dy(H2O)5L2-type complex, in
    cyclic order around the metal.

    Taken as the metal-bonded oxygens carrying two H (water); if there are not exactly five,
    the seven donors are split geometrically: the pair with the largest L-M-L angle is axial and
    the other five (which must be O) are equatorial.  Cyclic order: azimuth about the normal of
    the best plane through the five M->O unit vectors (smallest singular vector).
    """
    donors = bonded_neighbours(atoms, metal_index)
    eq = _water_oxygens(atoms, metal_index, donors)
    if len(eq) != 5:
        if len(donors) != 7:
            raise ValueError(
                f"{atoms.get_chemical_formula()}: found {len(eq)} water oxygens and "
                f"{len(donors)} donors on atom {metal_index}; cannot pick the five equatorial "
                "oxygens, pass equatorial= (0-based indices)")
        vec = atoms.positions[donors] - atoms.positions[metal_index]
        u = vec / np.linalg.norm(vec, axis=1)[:, None]
        cos = u @ u.T
        np.fill_diagonal(cos, 2.0)
        a, b = np.unravel_index(np.argmin(cos), cos.shape)
        eq = [d for k, d in enumerate(donors) if k not in (a, b)]
        if any(atoms[i].symbol != "O" for i in eq):
            raise ValueError(f"{atoms.get_chemical_formula()}: the equatorial donors {eq} are "
                             "not all oxygens; pass equatorial=")
    return _cyclic_order(atoms, metal_index, eq)


def _cyclic_order(atoms: Atoms, metal: int, idx: Sequence[int]) -> list[int]:
    vec = atoms.positions[list(idx)] - atoms.positions[metal]
    u = vec / np.linalg.norm(vec, axis=1)[:, None]
    normal = np.linalg.svd(u)[2][-1]
    e1 = u[0] - (u[0] @ normal) * normal
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    phi = np.arctan2(u @ e2, u @ e1)
    ring = [int(idx[k]) for k in np.argsort(phi)]
    start = ring.index(min(ring))            # start at the lowest index: stable, readable output
    return ring[start:] + ring[:start]


def pentagon_constraints(metal: int, ring: Sequence[int]) -> list[str]:
    """ORCA ``%geom Constraints`` lines that hold five donors O1..O5 (``ring``, in cyclic order,
    0-based indices) in one plane with the metal M at 72 degrees from their neighbours.

    Minimal set, 7 = the internal degrees of freedom of five directions about M (5 x 2 - 3):
      * 4 angles ``{ A Ok M Ok+1 72.0 C }`` (k = 1..4): in the plane these fix all five
        directions; the fifth angle O5-M-O1 = 360 - 4 x 72 = 72 follows and is left out (it
        would be redundant, i.e. linearly dependent, at the planar geometry);
      * 3 dihedrals ``{ D Ok+1 Ok M Ok-1 180.0 C }`` (k = 2..4) put O3, O4, O5 into the plane of
        the previous two donors and M (3 out-of-plane conditions: six coplanar points are three
        points plus three conditions).  About the axis Ok-M the neighbours Ok+1 and Ok-1 lie
        on opposite sides (azimuths +72 and -72), hence 180 degrees; no three atoms of a
        dihedral are collinear (angles 54 and 72 degrees).
    Bond lengths stay free.
    """
    ring = [int(i) for i in ring]
    if len(ring) != 5 or len(set(ring)) != 5 or metal in ring:
        raise ValueError(f"need five distinct donor indices other than the metal, got {ring}")
    a = PENTAGON_ANGLE
    lines = [f"{{ A {ring[k]} {metal} {ring[k + 1]} {a:.1f} C }}" for k in range(4)]
    lines += [f"{{ D {ring[k + 1]} {ring[k]} {metal} {ring[k - 1]} 180.0 C }}" for k in (1, 2, 3)]
    return lines


# --- input text --------------------------------------------------------------------------
def _xyz_block(atoms: Atoms, charge: int, mult: int, xyzfile: str | None) -> str:
    if xyzfile is not None:
        return f"* xyzfile {charge} {mult} {xyzfile}\n"
    lines = [f"* xyz {charge} {mult}"]
    for sym, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions):
        lines.append(f"{sym:<3s}{x:20.10f}{y:20.10f}{z:20.10f}")
    lines.append("*")
    return "\n".join(lines) + "\n"


def _resources(nprocs: int, maxcore: int) -> str:
    if int(nprocs) < 1 or int(maxcore) < 1:
        raise ValueError(f"nprocs and maxcore must be positive, got {nprocs}, {maxcore}")
    return f"%maxcore {int(maxcore)}\n%pal\n  nprocs {int(nprocs)}\nend\n"


def _casscf_block(method: str, nevpt2: bool, quartets: bool, single_aniso: bool) -> str:
    spec = _SPECS[method]
    if method == "co-casscf":
        mults = [4, 2]
    else:
        mults = [6, 4] if quartets else [6]
    roots = [n_spin_states(spec.norb, spec.nel, m) for m in mults]
    lines = ["%casscf",
             f"  nel {spec.nel}",
             f"  norb {spec.norb}",
             "  mult " + ", ".join(map(str, mults)),
             "  nroots " + ", ".join(map(str, roots)),
             "  actorbs " + ("dorbs" if spec.norb == 5 else "forbs")]
    if method == "co-casscf":
        lines.append("  trafostep ri")
    if nevpt2:
        lines.append("  PTMethod SC_NEVPT2")
    lines += ["  rel", "    dosoc true", "  end"]
    if method == "dy-casscf" and single_aniso:
        ndoublets = (int(2 * 7.5) + 1) // 2      # J = 15/2: 16 states, 8 Kramers doublets
        lines += ["  aniso",
                  "    doaniso true",
                  "    quax 4",
                  "    mltp " + ", ".join(["2"] * ndoublets),
                  '    CRYS_element "Dy"',
                  "    CRYS_charge 3",
                  "  end"]
    lines.append("end")
    return "\n".join(lines) + "\n"


_HEADERS = {
    "co-casscf": ("Co(II) 3d7 CASSCF(7,5){pt}, 10 quartets + 40 doublets, SOC by QDPT -> D tensor",
                  "Lunghi & Sanvito 2020 SI: def2-TZVP (Co, N, S, ...), def2-SVP (C, H), "
                  "def2-TZVP/C"),
    "dy-casscf": ("Dy(III) 4f9 SA-CASSCF(9,7){pt}, {roots}, SOC by QDPT{aniso}",
                  "GAUSS-II (Khatibi et al. 2026): DKH2 + picture change 2, DKH-def2-TZVPP, "
                  "Dy SARC2-DKH-QZVP"),
    "dy-geometry": ("geometry step 1 of 2: Y(III) for Dy(III), five equatorial O planar at 72 deg",
                    "GAUSS-II: BP86-D3(BJ), DKH2, DKH-def2-TZVPP (Y: SARC-DKH-TZVPP), SCF 1e-8 Eh"),
    "dy-geometry-relax": ("geometry step 2 of 2: Y(III) for Dy(III), full relaxation",
                          "GAUSS-II: BP86-D3(BJ), DKH2, DKH-def2-TZVPP (Y: SARC-DKH-TZVPP), "
                          "SCF 1e-8 Eh"),
}


def orca_input(atoms: Atoms, method: str, *, charge: int | None = None,
               multiplicity: int | None = None, nevpt2: bool = False, quartets: bool = False,
               nprocs: int = 1, maxcore: int = 2000, metal_index: int | None = None,
               title: str | None = None, single_aniso: bool = True,
               equatorial: Sequence[int] | None = None, xyzfile: str | None = None,
               moinp: str | None = None) -> str:
    """The full ORCA input text for ``atoms`` (Angstrom) and one of :data:`METHODS`.

    Parameters
    ----------
    charge, multiplicity
        Of the structure as given; default ``atoms.info`` or derived (module docstring).  For the
        geometry methods the ``* xyz`` line carries the Y(III) complex's values (same charge,
        multiplicity from the electron count: 1).
    nevpt2
        CASSCF methods: add SC-NEVPT2 (``PTMethod SC_NEVPT2``); its energies enter the QDPT.
    quartets
        dy-casscf: also average over the 224 quartets (``mult 6, 4``, ``nroots 21, 224``).
    nprocs, maxcore
        ``%pal nprocs`` and ``%maxcore`` (MB per process).
    metal_index
        The Co/Dy atom (0-based); needed only when there are several.
    title
        A comment line at the top; also names the structure in error messages.
    single_aniso
        dy-casscf: write the SINGLE_ANISO ``aniso`` block (ORCA >= 6).
    equatorial
        dy-geometry: the five equatorial donor indices, when they cannot be found
        (:func:`equatorial_donors`).
    xyzfile
        Read the coordinates from this file (``* xyzfile``) instead of writing them.
    moinp
        Start from these orbitals (``! MORead``, ``%moinp``).
    """
    if method not in _SPECS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    label = _label(atoms, title)
    if method in _GEOMETRY and (nevpt2 or quartets):
        raise ValueError(f"structure {label}: nevpt2/quartets apply to the CASSCF methods, "
                         f"not {method!r}")
    if method == "co-casscf" and quartets:
        raise ValueError(f"structure {label}: co-casscf always averages over all quartets and "
                         "doublets of d7; quartets= is a dy-casscf option")
    system = resolve_system(atoms, method, charge=charge, multiplicity=multiplicity,
                            metal_index=metal_index, title=title)
    orca_atoms = system.atoms
    spec = _SPECS[method]

    pt = " + SC-NEVPT2" if nevpt2 else ""
    head, source = _HEADERS[method]
    head = head.format(pt=pt, aniso=" + SINGLE_ANISO (8 Kramers doublets)" if single_aniso else "",
                       roots="21 sextets + 224 quartets" if quartets else "21 sextets")
    out = []
    if title:
        out.append("# " + " ".join(str(title).split()))
    out.append(f"# molmag {method}: {head}")
    out.append(f"# {source}")
    out.append(f"# {spec.metal} is atom {system.metal_index} (0-based); coordinates in Angstrom")
    if method in _GEOMETRY:
        out.append(f"# Dy complex: charge {system.structure_charge}, multiplicity "
                   f"{system.structure_multiplicity}; Y(III) analogue: charge {system.charge}, "
                   f"multiplicity {system.multiplicity}")
    text = "\n".join(out) + "\n"

    if method == "co-casscf":
        keywords = "! def2-SVP def2-TZVP/C TightSCF"
    elif method == "dy-casscf":
        keywords = "! DKH DKH-def2-TZVPP AutoAux NoRI TightSCF"
    else:
        keywords = "! BP86 D3BJ DKH DKH-def2-TZVPP SARC/J TightSCF Opt"
    if moinp:
        keywords += " MORead"
    text += keywords + "\n"
    if moinp:
        text += f'%moinp "{moinp}"\n'
    text += _resources(nprocs, maxcore)
    if method == "dy-casscf":
        text += "%rel\n  method DKH\n  picturechange 2\nend\n"
    text += basis_block(orca_atoms, method)
    if method in _GEOMETRY:
        text += "%scf\n  TolE 1e-8\nend\n"
        geom = ["%geom", "  MaxIter 200"]
        if method == "dy-geometry":
            ring = (_cyclic_order(orca_atoms, system.metal_index, [int(i) for i in equatorial])
                    if equatorial is not None
                    else equatorial_donors(orca_atoms, system.metal_index))
            geom.append("  Constraints")
            geom += ["    " + c for c in pentagon_constraints(system.metal_index, ring)]
            geom.append("  end")
        geom.append("end")
        text += "\n".join(geom) + "\n"
    else:
        text += _casscf_block(method, nevpt2, quartets, single_aniso)
    text += _xyz_block(orca_atoms, system.charge, system.multiplicity, xyzfile)
    return text


# --- many structures ---------------------------------------------------------------------
class WrittenInputs(list):
    """The main input file of every structure (a ``list[Path]``), with ``written`` and
    ``skipped`` (folders whose input existed and was kept)."""

    def __init__(self, paths=(), written=(), skipped=()):
        super().__init__(paths)
        self.written = list(written)
        self.skipped = list(skipped)


_NAME_OK = re.compile(r"^[A-Za-z0-9_.+-]+$")


def _structure_hash(atoms: Atoms, charge: int, mult: int) -> str | None:
    try:
        from molmag.io.records import structure_hash
    except Exception:  # pragma: no cover - records is part of molmag; keep writing without it
        return None
    return structure_hash(atoms, charge, mult)


def write_orca_inputs(structures: Iterable[Atoms], out_dir: str | Path, method: str, *,
                      names: Sequence[str] | None = None, ids: Sequence[int | None] | None = None,
                      overwrite: bool = False, **kwargs) -> WrittenInputs:
    """Write ``out_dir/<name>/<name>.inp`` and ``out_dir/<name>/molmag.json`` for every structure.

    Names default to ``s00000``, ``s00001``, ...; ``ids`` (dataset row ids) are recorded in
    ``molmag.json`` with the method, the options, charge and multiplicity (of the structure and
    of what ORCA computes), the metal index and the structure hash
    (:func:`molmag.io.records.structure_hash` of the structure as given).  For ``dy-geometry``
    the folder also gets ``<name>_relax.inp``, the unconstrained second step that reads
    ``<name>.xyz`` and ``<name>.gbw`` written by the first (run ``orca <name>.inp`` then
    ``orca <name>_relax.inp`` in the folder).

    A folder whose ``<name>.inp`` exists is left untouched unless ``overwrite=True``: re-running
    is safe, and the skipped folders are listed in ``.skipped`` of the result.  All inputs are
    generated (and checked) before any file is written.  ``kwargs`` go to :func:`orca_input`.
    """
    structures = list(structures)
    n = len(structures)
    names = [f"s{i:05d}" for i in range(n)] if names is None else [str(s) for s in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} structures")
    bad = [s for s in names if not _NAME_OK.match(s) or s in (".", "..")]
    if bad:
        raise ValueError(f"names must be plain file names (letters, digits, _ . + -): {bad}")
    if len(set(names)) != n:
        raise ValueError("names must be unique")
    if ids is not None and len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} structures")
    if "xyzfile" in kwargs or "title" in kwargs:
        raise ValueError("xyzfile= and title= are set per structure by write_orca_inputs")
    out_dir = Path(out_dir)

    from molmag import __version__

    jobs = []
    for i, (atoms, name) in enumerate(zip(structures, names)):
        try:
            text = orca_input(atoms, method, title=name, **kwargs)
            relax = None
            if method == "dy-geometry":
                relax_kw = {k: v for k, v in kwargs.items() if k not in ("equatorial", "moinp")}
                relax = orca_input(atoms, "dy-geometry-relax", title=f"{name} (step 2)",
                                   xyzfile=f"{name}.xyz", moinp=f"{name}.gbw", **relax_kw)
            system = resolve_system(atoms, method, charge=kwargs.get("charge"),
                                    multiplicity=kwargs.get("multiplicity"),
                                    metal_index=kwargs.get("metal_index"), title=name)
        except ValueError as exc:
            raise ValueError(f"structure #{i} ({name}): {exc}") from None
        options = {k: kwargs[k] for k in ("nevpt2", "quartets", "nprocs", "maxcore",
                                          "single_aniso", "moinp") if k in kwargs}
        row_id = None if ids is None else ids[i]
        record = {
            "molmag_version": __version__,
            "method": method,
            "options": options,
            "charge": system.structure_charge,
            "multiplicity": system.structure_multiplicity,
            "orca_charge": system.charge,
            "orca_multiplicity": system.multiplicity,
            "metal_index": system.metal_index,
            "formula": atoms.get_chemical_formula(),
            "structure_hash": _structure_hash(atoms, system.structure_charge,
                                              system.structure_multiplicity),
            "id": None if row_id is None else int(row_id),
            "inputs": [f"{name}.inp"] + ([f"{name}_relax.inp"] if relax else []),
        }
        jobs.append((name, text, relax, record))

    result = WrittenInputs()
    for name, text, relax, record in jobs:
        folder = out_dir / name
        inp = folder / f"{name}.inp"
        result.append(inp)
        if inp.exists() and not overwrite:
            result.skipped.append(inp)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        inp.write_text(text)
        if relax is not None:
            (folder / f"{name}_relax.inp").write_text(relax)
        (folder / "molmag.json").write_text(json.dumps(record, indent=2) + "\n")
        result.written.append(inp)
    if result.skipped:
        log.info("write_orca_inputs: kept %d existing input(s) in %s (overwrite=False)",
                 len(result.skipped), out_dir)
    return result


__all__ = [
    "METHODS",
    "OrcaSystem",
    "WrittenInputs",
    "basis_assignment",
    "basis_block",
    "equatorial_donors",
    "n_spin_states",
    "orca_input",
    "pentagon_constraints",
    "resolve_system",
    "substitute_metal",
    "write_orca_inputs",
]
