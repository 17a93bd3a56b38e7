"""Builders of the complexes the papers study, relaxed with GFN2-xTB.

Every builder returns an :class:`ase.Atoms` with the metal first and ``atoms.info`` holding

=========================  ===============================================================
``charge``                 total charge (int)
``multiplicity``           the TRUE spin multiplicity 2S+1 of the complex (Fe(III) high
                           spin 6, Co(II) high spin 4, Dy(III) 4f9 6); xTB runs lanthanides
                           f-in-core, so a Dy(III) complex is an xTB singlet (see
                           :func:`molmag.chem.xtb.xtb_spin`): that is handled there
``metal_index``            index of the metal (0)
``donor_indices``          indices of the donor atoms (list of int)
``name``                   the builder's name (a key of :data:`BUILDERS`)
``relaxed``                whether GFN2-xTB relaxed the structure
``relax_energy_eV``        GFN2-xTB energy of the relaxed structure (eV) (relaxed only)
``relax_steps``            optimiser steps, all stages together (relaxed only)
``relax_fmax_eV_A``        largest residual force (eV/Angstrom) on the free atoms
``relax_fmax_target_eV_A`` the convergence threshold used (eV/Angstrom)
=========================  ===============================================================

and, for ``dy-h2o5l2``, ``ligand`` (the SMILES), ``donor_element``, ``ligand_charge``,
``axial_indices``, ``equatorial_indices`` (the water O), ``min_contact_A`` (smallest
ligand-rest distance of the start) and ``relax_steps_constrained`` (the first, constrained
stage); for ``co-pdms`` ``ligand``, ``arrangement`` and ``min_contact_A``; for ``fecl6``
``prism_constrained``.

Builders (:data:`BUILDERS`; :func:`build` is the entry point by name):

``fecl5``
    [FeCl5]2-, trigonal bipyramid (D3h), Fe(III) high spin: charge -2, multiplicity 6.
    Start: Fe-Cl 2.30 (axial) / 2.25 (equatorial) Angstrom.  The symmetric start keeps D3h
    under GFN2-xTB; xTB gives Fe-Cl(ax) ~2.51 and Fe-Cl(eq) ~2.27 Angstrom.
``fecl6``
    [FeCl6]3-, trigonal prism (D3h), Fe(III) high spin: charge -3, multiplicity 6.
    GFN2-xTB puts the octahedron 0.40 eV below the prism; the D3h prism is a stationary
    point that a small distortion (0.05 Angstrom) relaxes back to but a larger one (0.15
    Angstrom) leaves for the octahedron (twist 60 degrees).  So by default
    (``keep_prism=True``) each Cl moves only in its vertical plane through the C3 axis
    (:class:`ase.constraints.FixedPlane`, Fe fixed): the twist between the two Cl3 triangles
    stays exactly 0 while the Fe-Cl distances and the polar angle relax (xTB: Fe-Cl 2.525
    Angstrom, Cl-Fe-Cl between the triangles 78 degrees).  ``keep_prism=False`` relaxes
    freely; from the symmetric start it ends on the same prism.
``cocl4``
    [CoCl4]2-, tetrahedron (Td), Co(II) high spin: charge -2, multiplicity 4 (xTB: Co-Cl
    2.263 Angstrom).
``co-pdms``
    [Co(pdms)2]2-, pdms2- = doubly deprotonated 1,2-bis(methanesulfonamido)benzene
    (H2pdms :data:`H2PDMS_SMILES`): C16H20CoN4O8S4, charge -2, multiplicity 4.  The dianion
    is embedded with RDKit (ETKDG v3, fixed seed, MMFF94), its two arms set to the torsions
    of :data:`PDMS_TORSIONS_DEG`; two ligands chelate Co with the four N in a pseudo-
    tetrahedron (Co-N 2.0 Angstrom, chelate planes perpendicular; the D2 arrangement of the
    reference structure, or ``arrangement="D2d"``); then GFN2-xTB.
    Measured (GFN2-xTB, fmax 0.05 eV/Angstrom, 37 steps, ~12 s on one core): Co-N 2.026,
    2.019, 2.026, 2.019 Angstrom (mean 2.022); intraligand N-Co-N 81.0 and 81.0 degrees;
    interligand 124.1, 125.5, 125.5, 126.3 degrees.  Frame 0 of
    ``copdms_configurations_1200.xyz`` (vacuum optimum plus random distortions): Co-N 2.001,
    1.950, 1.975, 2.173 (mean 2.025) Angstrom; intraligand 82.6 and 83.0; interligand 120.5,
    123.7, 125.4, 127.3 degrees.  That frame relaxed with GFN2-xTB ends 0.7 meV lower, Co-N
    2.013-2.018 Angstrom, intraligand 81.7 degrees: the same minimum.  ``arrangement="D2d"``
    (66 steps): Co-N 2.019-2.031 Angstrom, intraligand 79.8/79.9 degrees, 18 meV lower.
``dy-h2o5l2``
    Dy(H2O)5L2 after the GAUSS-II template (Khatibi et al. 2026, Methods and Fig. 1): five
    equatorial waters, O in the xy plane at 72 degrees and 2.40 Angstrom, their H pointing
    away from Dy (water planes vertical); two trans axial ligands L from a SMILES whose
    FIRST atom is the donor, the donor on the z axis (:data:`DY_DONOR_DISTANCES`) and the
    ligand turned so that the donor's lone-pair direction points at Dy (its substituents
    away), each rotated about z to maximise the smallest distance to the rest.  Relaxation
    in two stages as in the paper: Dy and the five equatorial O fixed (planar, 72 degrees;
    :class:`ase.constraints.FixAtoms`), then free.  Charge = +3 + 2 x (formal charge of L,
    RDKit); multiplicity 6 (Dy(III) 4f9, S = 5/2).  Measured (one core): L = OPMe3 30
    steps, 2.3 s; phenolate 28 steps, 2.3 s; the paper's tBuPO(NHiPr)2 98 steps, 44 s.  The
    equatorial O stay planar at 72 +/- 1 degrees for these; a flat donor whose ortho H meet
    the water H (pyridine) tilts the waters in the free stage (O plane off by ~0.3 Angstrom,
    one gap 68.5 degrees).

``co-l4``
    Tetrahedral Co(II)L4 with monodentate donor-first ligands (one SMILES: CoL4; two joined
    by '.': CoL2L'2; four: CoL1L2L3L4), the donor's lone pair pointing at Co; high spin
    (multiplicity 4), charge +2 + the ligands' formal charges; GFN2-xTB relaxed, free.  The
    genetic algorithm's Co(II) template (:mod:`molmag.screening`).

``relax=False`` returns the (deterministic) starting geometry without calling xTB.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms, FixConstraint, FixedPlane

from molmag.chem.xtb import RelaxationError, XTBCalculator
from molmag.chem.xtb import relax as xtb_relax

#: Defaults of every builder's relaxation (eV/Angstrom, optimiser steps per stage).
DEFAULT_FMAX = 0.05
DEFAULT_STEPS = 500
#: Random seed of RDKit's ETKDG embedding (all builders are deterministic).
SEED = 20260
#: H2pdms, 1,2-bis(methanesulfonamido)benzene; pdms2- is it without the two N-H protons.
H2PDMS_SMILES = "CS(=O)(=O)Nc1ccccc1NS(C)(=O)=O"
PDMS_SMILES = "CS(=O)(=O)[N-]c1ccccc1[N-]S(C)(=O)=O"
#: Starting Dy(III)-donor distances (Angstrom) by donor element; anionic donors (formal
#: charge < 0 in the SMILES) use the first value, neutral ones the second.  xTB relaxes them.
DY_DONOR_DISTANCES: dict[str, tuple[float, float]] = {
    "O": (2.20, 2.30), "N": (2.35, 2.50), "S": (2.70, 2.85), "Se": (2.85, 2.95),
    "P": (2.85, 2.95), "F": (2.15, 2.30), "Cl": (2.60, 2.75), "Br": (2.75, 2.90),
    "I": (2.95, 3.10),
}
#: Dy-O(water) distance of the template (Angstrom), O-H (Angstrom) and H-O-H (degrees).
DY_WATER_DISTANCE = 2.40
WATER_OH = 0.96
WATER_HOH_DEG = 104.5
DY_CHARGE = 3
DY_MULTIPLICITY = 6


# ======================================================================================
# small geometry helpers
# ======================================================================================
def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _rot_z(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rotation_onto(a, b) -> np.ndarray:
    """Proper rotation matrix R with R @ unit(a) = unit(b) (Rodrigues; any axis if
    antiparallel)."""
    a, b = _unit(a), _unit(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if np.linalg.norm(v) < 1e-10:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(a, [0.0, 1.0, 0.0])
        perp = _unit(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)   # 180 degrees about perp
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k * (1.0 / (1.0 + c))


def _min_distance(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    return float(np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min())


# ======================================================================================
# relaxation
# ======================================================================================
def _relax_stages(atoms: Atoms, stages: list, *, fmax: float, steps: int, label: str,
                  donors_must_stay: float | None = 1.35) -> Atoms:
    """Relax ``atoms`` through ``stages`` (a list of ASE constraint lists, ``None`` = free)
    with one GFN2-xTB calculator; record energy and steps in ``info``.

    With ``donors_must_stay``, a donor that ends up farther than that factor times its
    starting distance from the metal is a failed relaxation (a ligand fell off)."""
    calc = XTBCalculator()
    current = atoms
    total = 0
    stage_steps = []
    for constraints in stages:
        res = xtb_relax(current, calculator=calc, fmax=fmax, steps=steps,
                        constraints=constraints, name=label)
        total += res.steps
        stage_steps.append(res.steps)
        current = res.atoms
    out = current
    out.info = dict(atoms.info)
    m = int(atoms.info["metal_index"])
    if donors_must_stay is not None:
        for j in atoms.info.get("donor_indices", []):
            d0 = atoms.get_distance(m, j)
            d1 = out.get_distance(m, j)
            if d1 > donors_must_stay * d0:
                raise RelaxationError(
                    f"relaxation of {label}: donor {out[j].symbol}{j} left the metal "
                    f"({d0:.2f} -> {d1:.2f} Angstrom)")
    out.info.update({"relaxed": True, "relax_energy_eV": float(res.energy),
                     "relax_steps": int(total), "relax_fmax_eV_A": float(res.fmax),
                     "relax_fmax_target_eV_A": float(fmax), "relax_method": "GFN2-xTB"})
    if len(stage_steps) > 1:
        out.info["relax_steps_constrained"] = int(sum(stage_steps[:-1]))
    return out


def _finish(atoms: Atoms, *, name: str, charge: int, multiplicity: int, donors,
            relax: bool, fmax: float, steps: int, stages=None, label: str | None = None,
            **extra) -> Atoms:
    if not fmax > 0:  # NaN too
        raise ValueError(f"fmax must be a positive number, got {fmax}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    atoms.info.update({"charge": int(charge), "multiplicity": int(multiplicity),
                       "metal_index": 0, "donor_indices": [int(i) for i in donors],
                       "name": name, "relaxed": False, **extra})
    _validate_built(atoms, label or name)
    if not relax:
        return atoms
    out = _relax_stages(atoms, stages or [None], fmax=fmax, steps=steps, label=label or name)
    _validate_built(out, f"{label or name} (relaxed)")
    return out


def _validate_built(atoms: Atoms, what: str) -> None:
    """Builders' output passes the one structure gate (finite, no clashes, a charge and
    multiplicity the metal can have) before xTB sees it and before anyone gets it."""
    from molmag.io.validation import validate_structure

    validate_structure(atoms, source=f"built {what}", charge=atoms.info.get("charge"),
                       multiplicity=atoms.info.get("multiplicity"),
                       metal_index=atoms.info.get("metal_index"))


# ======================================================================================
# metal halides
# ======================================================================================
def build_fecl5(*, relax: bool = True, fmax: float = DEFAULT_FMAX, steps: int = DEFAULT_STEPS,
                fe_cl_axial: float = 2.30, fe_cl_equatorial: float = 2.25) -> Atoms:
    """[FeCl5]2- trigonal bipyramid (Fe(III) high spin; charge -2, multiplicity 6).

    Atoms: Fe, two axial Cl (+z, -z), three equatorial Cl (xy plane, 120 degrees)."""
    pos = [[0.0, 0.0, 0.0], [0.0, 0.0, fe_cl_axial], [0.0, 0.0, -fe_cl_axial]]
    for k in range(3):
        t = 2.0 * math.pi * k / 3.0
        pos.append([fe_cl_equatorial * math.cos(t), fe_cl_equatorial * math.sin(t), 0.0])
    atoms = Atoms("FeCl5", positions=pos)
    return _finish(atoms, name="fecl5", charge=-2, multiplicity=6, donors=range(1, 6),
                   relax=relax, fmax=fmax, steps=steps, label="[FeCl5]2-")


def build_fecl6(*, relax: bool = True, fmax: float = DEFAULT_FMAX, steps: int = DEFAULT_STEPS,
                fe_cl: float = 2.40, keep_prism: bool = True) -> Atoms:
    """[FeCl6]3- trigonal prism (Fe(III) high spin; charge -3, multiplicity 6).

    Atoms: Fe, three Cl of the upper triangle (z > 0, azimuths 0/120/240 degrees), the three
    of the lower one below them (twist 0; an octahedron has twist 60).  Start: the prism with
    square side faces (polar angle 49.1 degrees) at ``fe_cl`` Angstrom.  With ``keep_prism``
    (default) the twist is held during the relaxation (each Cl moves in its vertical plane
    through the C3 axis, Fe fixed) - see the module docstring; ``info["prism_constrained"]``
    says which was done."""
    rho = 2.0 * fe_cl / math.sqrt(7.0)           # square faces: height = triangle edge
    half_h = rho * math.sqrt(3.0) / 2.0
    pos = [[0.0, 0.0, 0.0]]
    phis = []
    for z in (half_h, -half_h):
        for k in range(3):
            t = 2.0 * math.pi * k / 3.0
            pos.append([rho * math.cos(t), rho * math.sin(t), z])
            phis.append(t)
    atoms = Atoms("FeCl6", positions=pos)
    stages = None
    if keep_prism:
        cons: list[FixConstraint] = [FixAtoms(indices=[0])]
        cons += [FixedPlane(i + 1, [-math.sin(t), math.cos(t), 0.0]) for i, t in enumerate(phis)]
        stages = [cons]
    return _finish(atoms, name="fecl6", charge=-3, multiplicity=6, donors=range(1, 7),
                   relax=relax, fmax=fmax, steps=steps, stages=stages, label="[FeCl6]3-",
                   prism_constrained=bool(keep_prism))


def build_cocl4(*, relax: bool = True, fmax: float = DEFAULT_FMAX, steps: int = DEFAULT_STEPS,
                co_cl: float = 2.28) -> Atoms:
    """[CoCl4]2- tetrahedron (Co(II) high spin; charge -2, multiplicity 4)."""
    dirs = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / math.sqrt(3)
    atoms = Atoms("CoCl4", positions=np.vstack([[0.0, 0.0, 0.0], co_cl * dirs]))
    return _finish(atoms, name="cocl4", charge=-2, multiplicity=4, donors=range(1, 5),
                   relax=relax, fmax=fmax, steps=steps, label="[CoCl4]2-")


# ======================================================================================
# RDKit ligands
# ======================================================================================
@contextmanager
def quiet_rdkit():
    """Silence RDKit's logger inside the block (parse failures are reported by the caller).
    Nesting-safe: RDKit's ``BlockLogs`` restores the state it found, so an inner block (the
    valence filter inside a sampling loop) does not switch the logs back on for the outer one
    (which, with Disable/EnableLog, printed 43,000 parse errors in a dy-ligands campaign)."""
    from rdkit import rdBase

    block = rdBase.BlockLogs()
    try:
        yield
    finally:
        del block


def _embed(mol, *, seed: int = SEED, n_conformers: int = 1):
    """Add hydrogens, embed ``n_conformers`` conformers (ETKDG v3, ``seed``) and pre-optimise
    them with MMFF94 (else UFF, else not at all).  Returns (mol with H, list of (n, 3)
    coordinate arrays, force field used)."""
    from rdkit import Chem
    from rdkit.Chem import rdDistGeom, rdForceFieldHelpers

    mh = Chem.AddHs(mol)
    # Any: rdkit-stubs type the EmbedParameters properties as EmbedParameters
    params: Any = rdDistGeom.ETKDGv3()
    params.randomSeed = int(seed)
    params.numThreads = 1
    ids = list(rdDistGeom.EmbedMultipleConfs(mh, n_conformers, params))
    if not ids:
        params.useRandomCoords = True
        ids = list(rdDistGeom.EmbedMultipleConfs(mh, n_conformers, params))
    if not ids:
        raise ValueError(f"RDKit could not embed {Chem.MolToSmiles(mol)!r} in 3D")
    ff = "none"
    try:
        if rdForceFieldHelpers.MMFFHasAllMoleculeParams(mh):
            rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(mh, maxIters=2000, numThreads=1)
            ff = "MMFF94"
        elif rdForceFieldHelpers.UFFHasAllMoleculeParams(mh):
            rdForceFieldHelpers.UFFOptimizeMoleculeConfs(mh, maxIters=2000, numThreads=1)
            ff = "UFF"
    except Exception:  # pragma: no cover - keep the ETKDG geometry
        ff = "none"
    coords = [np.array(mh.GetConformer(i).GetPositions()) for i in ids]
    return mh, coords, ff


def _numbers(mol) -> np.ndarray:
    return np.array([a.GetAtomicNum() for a in mol.GetAtoms()])


# ======================================================================================
# [Co(pdms)2]2-
# ======================================================================================
def _chelate_frame(x: np.ndarray, n1: int, n2: int, ring: list[int], r_mn: float):
    """For one chelating ligand (coordinates ``x``): the metal position on the chelate's
    side of the N...N edge at ``r_mn`` from both N, and the frame (u along N1->N2, v from
    the ring towards the metal, w = u x v)."""
    mid = 0.5 * (x[n1] + x[n2])
    u = _unit(x[n2] - x[n1])
    v = mid - x[ring].mean(axis=0)
    v = _unit(v - np.dot(v, u) * u)
    half = 0.5 * float(np.linalg.norm(x[n2] - x[n1]))
    h = math.sqrt(max(r_mn**2 - half**2, 0.25))
    return mid + h * v, np.stack([u, v, np.cross(u, v)])


#: Conformation of each sulfonamide arm of pdms2- in [Co(pdms)2]2- (degrees): torsion
#: C(ortho, bearing the other N)-C(ipso)-N-S (the S anti to the chelate ring) and
#: C(ipso)-N-S-C(methyl), as in the vacuum-optimised reference structure (all four arms alike,
#: each ligand C2-symmetric).  xTB relaxes them.
PDMS_TORSIONS_DEG = (160.0, -63.0)
#: The two ways to put two C2-symmetric pdms2- ligands around Co: "D2" (the second ligand a
#: proper C2 image of the first; the reference structure) or "D2d" (a mirror image: S4 axis).
PDMS_ARRANGEMENTS = ("D2", "D2d")


def _pdms_ligand(seed: int):
    """pdms2- (RDKit, H added, ETKDG v3 + MMFF94) with :data:`PDMS_TORSIONS_DEG` set.
    Returns (atomic numbers, coordinates, (N1, N2), ring atoms, force field)."""
    from rdkit import Chem
    from rdkit.Chem import rdMolTransforms

    with quiet_rdkit():
        mh, confs, ff = _embed(Chem.MolFromSmiles(PDMS_SMILES), seed=seed, n_conformers=1)
    conf = mh.GetConformer(0)
    n_idx = [a.GetIdx() for a in mh.GetAtoms() if a.GetSymbol() == "N"]
    ring = [a.GetIdx() for a in mh.GetAtoms() if a.GetIsAromatic()]
    for n, other in ((n_idx[0], n_idx[1]), (n_idx[1], n_idx[0])):
        atom = mh.GetAtomWithIdx(n)
        ipso = next(a.GetIdx() for a in atom.GetNeighbors() if a.GetSymbol() == "C")
        s = next(a.GetIdx() for a in atom.GetNeighbors() if a.GetSymbol() == "S")
        ortho = next(a.GetIdx() for a in mh.GetAtomWithIdx(other).GetNeighbors()
                     if a.GetSymbol() == "C")
        me = next(a.GetIdx() for a in mh.GetAtomWithIdx(s).GetNeighbors()
                  if a.GetSymbol() == "C")
        rdMolTransforms.SetDihedralDeg(conf, ortho, ipso, n, s, PDMS_TORSIONS_DEG[0])
        rdMolTransforms.SetDihedralDeg(conf, ipso, n, s, me, PDMS_TORSIONS_DEG[1])
    return _numbers(mh), np.array(conf.GetPositions()), tuple(n_idx), ring, ff


def build_co_pdms(*, relax: bool = True, fmax: float = DEFAULT_FMAX,
                  steps: int = DEFAULT_STEPS, seed: int = SEED, arrangement: str = "D2",
                  co_n: float = 2.0) -> Atoms:
    """[Co(pdms)2]2- (Co(II) high spin; charge -2, multiplicity 4), C16H20CoN4O8S4.

    Atoms: Co, then ligand A (RDKit order of :data:`PDMS_SMILES` with H added), then ligand B.
    The four N are ``info["donor_indices"]`` (A's two first).  Start: one ETKDG+MMFF
    conformer of pdms2- with the arm torsions :data:`PDMS_TORSIONS_DEG`; ligand A's N in the
    xz plane (bisector +z), B's in the yz plane (bisector -z): a pseudo-tetrahedron with
    perpendicular chelate planes, Co-N ``co_n`` Angstrom.  ``arrangement`` "D2" (default,
    the reference structure: B is A turned by 180 degrees about (1, 1, 0)) or "D2d" (B is
    A's mirror image).  GFN2-xTB finds both as minima, D2d 18 meV lower with bite angles
    near 80 degrees against 81 for D2.  See the module docstring for the relaxed geometry
    against the reference structure."""
    if arrangement not in PDMS_ARRANGEMENTS:
        raise ValueError(f"arrangement must be one of {', '.join(PDMS_ARRANGEMENTS)}, "
                         f"got {arrangement!r}")
    z, x, (n1, n2), ring, ff = _pdms_ligand(seed)
    m, fr = _chelate_frame(x, n1, n2, ring, co_n)
    local = (x - m) @ fr.T                                  # coordinates in (u, v, w)
    a = local @ np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    if arrangement == "D2d":
        local = local * np.array([1.0, 1.0, -1.0])
    b = local @ np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    not_n = np.array([i for i in range(len(z)) if i not in (n1, n2)])
    contact = min(_min_distance(a, b), _min_distance(np.zeros((1, 3)), a[not_n]),
                  _min_distance(np.zeros((1, 3)), b[not_n]))
    atoms = Atoms(numbers=np.concatenate([[27], z, z]),
                  positions=np.vstack([[0.0, 0.0, 0.0], a, b]))
    na = len(z)
    donors = [1 + n1, 1 + n2, 1 + na + n1, 1 + na + n2]
    return _finish(atoms, name="co-pdms", charge=-2, multiplicity=4, donors=donors,
                   relax=relax, fmax=fmax, steps=steps, label="[Co(pdms)2]2-",
                   ligand=PDMS_SMILES, ligand_force_field=ff, arrangement=arrangement,
                   min_contact_A=float(contact))


# ======================================================================================
# Dy(H2O)5L2
# ======================================================================================
#: Elements that can be the donor atom of an axial ligand of the Dy template.
DONOR_ELEMENTS = frozenset(DY_DONOR_DISTANCES)


#: Largest |formal charge| of a ligand the builders accept unless told otherwise.
MAX_LIGAND_CHARGE = 3
#: Most heavy (non-hydrogen) atoms of a ligand the builders accept unless told otherwise
#: (embedding and xTB relaxation grow steeply; the GAUSS corpora have <= 9).
MAX_LIGAND_HEAVY_ATOMS = 60


def parse_ligand(smiles: str, *, max_charge: int | None = MAX_LIGAND_CHARGE,
                 max_heavy_atoms: int | None = MAX_LIGAND_HEAVY_ATOMS):
    """RDKit molecule of a monodentate ligand whose FIRST atom is the donor, validated.

    ValueError (naming the SMILES) if it does not parse, has several fragments, contains a
    metal, is a radical, its formal charge lies outside [-max_charge, +max_charge], it has
    more than ``max_heavy_atoms`` heavy atoms (``None``: no limit), or its first atom is not
    a usable donor (N, O, S, Se, P or a halogen with at least one lone pair: not C, not a
    quaternary N+, not a sulfone S).  All of this is checked before any geometry is made."""
    from rdkit import Chem

    from molmag.physics.elements import MAGNETIC_CENTRES

    if not isinstance(smiles, str) or not smiles.strip():
        raise ValueError("empty ligand SMILES")
    smiles = smiles.strip()
    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"invalid ligand SMILES {smiles!r}: RDKit cannot parse it")
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"ligand SMILES {smiles!r} has no atoms")
    frags = Chem.GetMolFrags(mol)
    if len(frags) > 1:
        raise ValueError(f"ligand SMILES {smiles!r} has {len(frags)} disconnected fragments; "
                         "give one connected ligand (no counter-ions, no '.')")
    metals = sorted({a.GetSymbol() for a in mol.GetAtoms()
                     if a.GetAtomicNum() in MAGNETIC_CENTRES})
    if metals:
        raise ValueError(f"ligand SMILES {smiles!r} contains metal atoms ({', '.join(metals)})")
    q = int(Chem.GetFormalCharge(mol))
    if max_charge is not None and abs(q) > max_charge:
        raise ValueError(f"ligand SMILES {smiles!r} has formal charge {q:+d}, outside "
                         f"[-{max_charge}, +{max_charge}]; raise the limit explicitly "
                         "(--max-ligand-charge) if you mean it")
    heavy = mol.GetNumHeavyAtoms()
    if max_heavy_atoms is not None and heavy > max_heavy_atoms:
        raise ValueError(f"ligand SMILES {smiles!r} has {heavy} heavy atoms, more than "
                         f"{max_heavy_atoms}; raise the limit explicitly (--max-heavy-atoms) "
                         "if you mean it (embedding and xTB take long)")
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        raise ValueError(f"ligand SMILES {smiles!r} is a radical; the Dy(III) template needs "
                         "closed-shell ligands (multiplicity 6 = the 4f9 ion alone)")
    donor = mol.GetAtomWithIdx(0)
    sym = donor.GetSymbol()
    if sym not in DONOR_ELEMENTS:
        raise ValueError(
            f"ligand SMILES {smiles!r}: its first atom, {sym}, is taken as the donor, and {sym} "
            f"is not a donor atom the Dy builder supports ({', '.join(sorted(DONOR_ELEMENTS))}); "
            "write the SMILES starting from the donor atom (e.g. 'O=P(C)(C)C', 'n1ccccc1', "
            "'[O-]c1ccccc1')")
    outer = Chem.GetPeriodicTable().GetNOuterElecs(donor.GetAtomicNum())
    lone = outer - donor.GetTotalValence() - donor.GetFormalCharge()
    if lone < 2:
        raise ValueError(
            f"ligand SMILES {smiles!r}: the donor {sym} (first atom; formal charge "
            f"{donor.GetFormalCharge():+d}, valence {donor.GetTotalValence()}) has no lone "
            "pair to give to Dy")
    return mol


def ligand_charge(smiles: str) -> int:
    """Formal charge of a ligand SMILES (RDKit)."""
    from rdkit import Chem

    return int(Chem.GetFormalCharge(parse_ligand(smiles)))


def _lone_pair_direction(x: np.ndarray, mol, i: int = 0) -> np.ndarray:
    """Unit vector from atom ``i`` away from its neighbours (minus the sum of the unit bond
    vectors): where its lone pair(s) point."""
    nbrs = [n.GetIdx() for n in mol.GetAtomWithIdx(i).GetNeighbors()]
    if not nbrs:
        return np.array([0.0, 0.0, -1.0])
    s = -sum(_unit(x[j] - x[i]) for j in nbrs)
    if np.linalg.norm(s) < 0.1:  # substituents around it cancel: any perpendicular
        s = np.cross(x[nbrs[0]] - x[i], [0.0, 0.0, 1.0])
        if np.linalg.norm(s) < 1e-6:
            s = np.cross(x[nbrs[0]] - x[i], [1.0, 0.0, 0.0])
    return _unit(s)


def _waters(r: float = DY_WATER_DISTANCE) -> tuple[list[int], np.ndarray]:
    half = math.radians(WATER_HOH_DEG) / 2.0
    z, pos = [], []
    for k in range(5):
        t = 2.0 * math.pi * k / 5.0
        radial = np.array([math.cos(t), math.sin(t), 0.0])
        o = r * radial
        z += [8, 1, 1]
        up = math.sin(half) * np.array([0, 0, 1.0])
        pos += [o, o + WATER_OH * (math.cos(half) * radial + up),
                o + WATER_OH * (math.cos(half) * radial - up)]
    return z, np.array(pos)


def _best_rotation(lig: np.ndarray, rest: np.ndarray, skip_first: bool = True,
                   n_angles: int = 72) -> tuple[float, np.ndarray, float]:
    """Rotate ``lig`` about z to maximise its smallest distance to ``rest`` (its first atom,
    the donor on the axis, left out).  Returns (angle, rotated coordinates, distance)."""
    probe = lig[1:] if skip_first else lig
    best = (-1.0, 0.0)
    for k in range(n_angles):
        t = 2.0 * math.pi * k / n_angles
        d = _min_distance(probe @ _rot_z(t).T, rest)
        if d > best[0] + 1e-9:
            best = (d, t)
    d, t = best
    return t, lig @ _rot_z(t).T, d


def build_dy_h2o5l2(ligand: str, *, relax: bool = True, fmax: float = DEFAULT_FMAX,
                    steps: int = DEFAULT_STEPS, seed: int = SEED,
                    dy_water: float = DY_WATER_DISTANCE, dy_donor: float | None = None,
                    max_ligand_charge: int | None = MAX_LIGAND_CHARGE,
                    max_heavy_atoms: int | None = MAX_LIGAND_HEAVY_ATOMS) -> Atoms:
    """Dy(H2O)5L2 (GAUSS-II template) with two axial ligands L = ``ligand`` (SMILES, FIRST
    atom = donor); charge +3 + 2 q(L), multiplicity 6.

    Atoms: Dy; five waters (O, H, H), O at indices 1, 4, 7, 10, 13 (azimuths 0, 72, ...
    degrees); ligand 1 (donor on +z) and ligand 2 (donor on -z), each in RDKit order with
    H added.  ``dy_donor`` overrides the starting Dy-donor distance
    (:data:`DY_DONOR_DISTANCES`).  Relaxed in two stages: Dy and the five O fixed, then free.
    Errors: ValueError for an unusable ligand (:func:`parse_ligand`), RelaxationError (with
    the SMILES) when xTB fails, does not converge or a ligand leaves Dy.
    ``max_ligand_charge`` and ``max_heavy_atoms`` bound the ligand (see :func:`parse_ligand`)."""
    mol = parse_ligand(ligand, max_charge=max_ligand_charge, max_heavy_atoms=max_heavy_atoms)
    smiles = ligand.strip()
    q_lig = int(sum(a.GetFormalCharge() for a in mol.GetAtoms()))
    donor = mol.GetAtomWithIdx(0)
    sym = donor.GetSymbol()
    if dy_donor is None:
        dy_donor = DY_DONOR_DISTANCES[sym][0 if donor.GetFormalCharge() < 0 else 1]
    with quiet_rdkit():
        if mol.GetNumAtoms() == 1 and donor.GetTotalNumHs() == 0:
            from rdkit import Chem
            mh, x, ff = Chem.AddHs(mol), np.zeros((1, 3)), "none"
        else:
            mh, confs, ff = _embed(mol, seed=seed, n_conformers=1)
            x = confs[0]
    zl = _numbers(mh)
    # donor at the origin, lone pair along -z (towards Dy), then lifted to +dy_donor
    local = (x - x[0]) @ _rotation_onto(_lone_pair_direction(x, mh, 0), [0.0, 0.0, -1.0]).T
    l1 = local + np.array([0.0, 0.0, dy_donor])
    zw, w = _waters(dy_water)
    core = np.vstack([[0.0, 0.0, 0.0], w])
    phi1, l1, d1 = _best_rotation(l1, core)
    l2 = l1 * np.array([1.0, -1.0, -1.0])           # C2 about x: the donor goes to -z
    phi2, l2, d2 = _best_rotation(l2, np.vstack([core, l1]))
    atoms = Atoms(numbers=np.concatenate([[66], zw, zl, zl]), positions=np.vstack([core, l1, l2]))
    nl = len(zl)
    n_core = 1 + len(zw)
    water_o = [1 + 3 * k for k in range(5)]
    donors = water_o + [n_core, n_core + nl]
    stages = [[FixAtoms(indices=[0] + water_o)], None]
    return _finish(atoms, name="dy-h2o5l2", charge=DY_CHARGE + 2 * q_lig,
                   multiplicity=DY_MULTIPLICITY, donors=donors, relax=relax, fmax=fmax,
                   steps=steps, stages=stages, label=f"Dy(H2O)5L2 with L = {smiles}",
                   ligand=smiles, donor_element=sym, ligand_charge=q_lig,
                   ligand_force_field=ff, axial_indices=[n_core, n_core + nl],
                   equatorial_indices=water_o, min_contact_A=float(min(d1, d2)))


def build_free_ligand(ligand: str, *, relax: bool = True, fmax: float = DEFAULT_FMAX,
                      steps: int = DEFAULT_STEPS, seed: int = SEED,
                      max_ligand_charge: int | None = MAX_LIGAND_CHARGE,
                      max_heavy_atoms: int | None = MAX_LIGAND_HEAVY_ATOMS) -> Atoms:
    """The free ligand L (SMILES, FIRST atom = donor, as for ``dy-h2o5l2``), alone: RDKit
    ETKDG + MMFF94 geometry, then GFN2-xTB relaxed (charge = the SMILES' formal charge,
    singlet).  Atom 0 is the donor (``info["donor_indices"] = [0]``, no metal).  Used for the
    GAUSS-II proxy labels (donor charge, atomic dipole, polarisability on the free ligand).
    Errors: ValueError for an unusable ligand (:func:`parse_ligand`), RelaxationError (with
    the SMILES) when xTB fails or does not converge."""
    from rdkit import Chem

    mol = parse_ligand(ligand, max_charge=max_ligand_charge, max_heavy_atoms=max_heavy_atoms)
    smiles = ligand.strip()
    q = int(Chem.GetFormalCharge(mol))
    with quiet_rdkit():
        if mol.GetNumAtoms() == 1 and mol.GetAtomWithIdx(0).GetTotalNumHs() == 0:
            mh, x, ff = Chem.AddHs(mol), np.zeros((1, 3)), "none"   # a bare ion (F-, O2-)
        else:
            mh, confs, ff = _embed(mol, seed=seed, n_conformers=1)
            x = confs[0]
    if not fmax > 0:  # NaN too
        raise ValueError(f"fmax must be a positive number, got {fmax}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    nel = int(sum(a.GetAtomicNum() for a in mh.GetAtoms())) - q
    atoms = Atoms(numbers=_numbers(mh), positions=x)
    atoms.info.update({"charge": q, "multiplicity": 1 + nel % 2, "metal_index": None,
                       "donor_indices": [0], "name": "ligand", "ligand": smiles,
                       "donor_element": mh.GetAtomWithIdx(0).GetSymbol(), "ligand_charge": q,
                       "ligand_force_field": ff, "relaxed": False})
    _validate_built(atoms, f"free ligand {smiles}")
    if not relax or len(atoms) == 1:
        return atoms
    res = xtb_relax(atoms, calculator=XTBCalculator(), fmax=fmax, steps=steps,
                    name=f"free ligand {smiles}")
    out = res.atoms
    out.info = dict(atoms.info)
    out.info.update({"relaxed": True, "relax_energy_eV": float(res.energy),
                     "relax_steps": int(res.steps), "relax_fmax_eV_A": float(res.fmax),
                     "relax_fmax_target_eV_A": float(fmax), "relax_method": "GFN2-xTB"})
    _validate_built(out, f"free ligand {smiles} (relaxed)")
    return out


# ======================================================================================
# tetrahedral Co(II)L4 (monodentate donors; the GA's Co(II) template)
# ======================================================================================
#: Starting Co(II)-donor distances (Angstrom) by donor element, (anionic, neutral); xTB
#: relaxes them.
CO_DONOR_DISTANCES: dict[str, tuple[float, float]] = {
    "O": (1.95, 2.05), "N": (2.00, 2.05), "S": (2.30, 2.40), "Se": (2.42, 2.50),
    "P": (2.35, 2.40), "F": (1.95, 2.05), "Cl": (2.28, 2.35), "Br": (2.40, 2.48),
    "I": (2.60, 2.68),
}
_TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) / math.sqrt(3)


def co_l4_ligands(ligand: str) -> list[str]:
    """The four ligand SMILES of ``co-l4`` from its ``ligand`` string: one SMILES (CoL4),
    two joined by '.' (L1, L1, L2, L2) or four (L1..L4)."""
    parts = [p.strip() for p in str(ligand).split(".")]
    if any(not p for p in parts) or len(parts) not in (1, 2, 4):
        raise ValueError(f"co-l4 ligand {ligand!r}: give 1, 2 or 4 donor-first SMILES joined "
                         "by '.' (CoL4, CoL2L'2, CoL1L2L3L4)")
    return parts * 4 if len(parts) == 1 else [parts[0], parts[0], parts[1], parts[1]] \
        if len(parts) == 2 else parts


def build_co_l4(ligand: str, *, relax: bool = True, fmax: float = DEFAULT_FMAX,
                steps: int = DEFAULT_STEPS, seed: int = SEED,
                max_ligand_charge: int | None = MAX_LIGAND_CHARGE,
                max_heavy_atoms: int | None = MAX_LIGAND_HEAVY_ATOMS) -> Atoms:
    """Tetrahedral Co(II)L4 (high spin: multiplicity 4; charge +2 + the ligands' formal
    charges) with monodentate donor-first ligands (``ligand``: see :func:`co_l4_ligands`).

    Atoms: Co, then the four ligands in order (RDKit order with H added).  Start: donor k on
    the tetrahedral direction k at :data:`CO_DONOR_DISTANCES`, the donor's lone pair pointing
    at Co, each ligand turned about its Co-donor axis to maximise its smallest distance to
    the atoms already placed (as for ``dy-h2o5l2``); then GFN2-xTB, free.  Errors as for
    ``dy-h2o5l2`` (ValueError for an unusable ligand, RelaxationError when xTB fails or a
    donor leaves Co)."""
    smiles = co_l4_ligands(ligand)
    placed_z: list = [[27]]
    placed_x: list = [np.zeros((1, 3))]
    donors, q, contact, ffs = [], 0, float("inf"), []
    cache: dict[str, tuple] = {}
    for k, smi in enumerate(smiles):
        if smi not in cache:
            mol = parse_ligand(smi, max_charge=max_ligand_charge, max_heavy_atoms=max_heavy_atoms)
            d = mol.GetAtomWithIdx(0)
            with quiet_rdkit():
                if mol.GetNumAtoms() == 1 and d.GetTotalNumHs() == 0:
                    from rdkit import Chem
                    mh, x, ff = Chem.AddHs(mol), np.zeros((1, 3)), "none"
                else:
                    mh, confs, ff = _embed(mol, seed=seed, n_conformers=1)
                    x = confs[0]
            r = CO_DONOR_DISTANCES[d.GetSymbol()][0 if d.GetFormalCharge() < 0 else 1]
            local = (x - x[0]) @ _rotation_onto(_lone_pair_direction(x, mh, 0),
                                                [0.0, 0.0, -1.0]).T
            cache[smi] = (_numbers(mh), local + np.array([0.0, 0.0, r]),
                          int(sum(a.GetFormalCharge() for a in mol.GetAtoms())), ff)
        zl, local, ql, ff = cache[smi]
        rot = _rotation_onto([0.0, 0.0, 1.0], _TETRAHEDRON[k])
        rest_local = np.vstack(placed_x) @ rot          # the placed atoms in the ligand's frame
        _, lig, dmin = _best_rotation(local, rest_local)
        donors.append(sum(len(z) for z in placed_z))
        placed_z.append(zl)
        placed_x.append(lig @ rot.T)
        q += ql
        contact = min(contact, dmin)
        ffs.append(ff)
    atoms = Atoms(numbers=np.concatenate(placed_z), positions=np.vstack(placed_x))
    label = f"Co(II)L4 with L = {'.'.join(smiles)}"
    return _finish(atoms, name="co-l4", charge=2 + q, multiplicity=4, donors=donors,
                   relax=relax, fmax=fmax, steps=steps, label=label, ligand=str(ligand).strip(),
                   ligand_charge=q, ligand_force_field=",".join(sorted(set(ffs))),
                   min_contact_A=float(contact))


# ======================================================================================
# registry
# ======================================================================================
#: Builders by name.  All take ``relax``, ``fmax`` and ``steps``; ``dy-h2o5l2`` and ``ligand``
#: (the free ligand) also ``ligand`` (SMILES, required).
BUILDERS: dict[str, Callable[..., Atoms]] = {
    "fecl5": build_fecl5,
    "fecl6": build_fecl6,
    "cocl4": build_cocl4,
    "co-pdms": build_co_pdms,
    "dy-h2o5l2": build_dy_h2o5l2,
    "ligand": build_free_ligand,
    "co-l4": build_co_l4,
}
#: Builders that need a ligand SMILES.
LIGAND_BUILDERS = frozenset({"dy-h2o5l2", "ligand", "co-l4"})


def build(name: str, **options) -> Atoms:
    """Build the complex ``name`` (a key of :data:`BUILDERS`; case and ``_``/``-`` do not
    matter) with the builder's keyword ``options`` (``relax``, ``fmax``, ``steps``,
    ``ligand`` for ``dy-h2o5l2``, ...)."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in BUILDERS:
        raise ValueError(f"unknown structure {name!r}; known: {', '.join(BUILDERS)}")
    if key in LIGAND_BUILDERS:
        if options.get("ligand") is None:
            raise ValueError(f"{key} needs a ligand SMILES (its first atom the donor), "
                             "e.g. ligand='O=P(C)(C)C'")
    elif options.get("ligand") is not None:
        raise ValueError(f"{key} takes no ligand (only {', '.join(sorted(LIGAND_BUILDERS))} does)")
    else:
        for k in ("ligand", "max_ligand_charge", "max_heavy_atoms"):
            options.pop(k, None)
    return BUILDERS[key](**options)


__all__ = ["BUILDERS", "quiet_rdkit", "LIGAND_BUILDERS", "build", "build_fecl5", "build_fecl6",
           "build_cocl4", "build_co_pdms", "build_dy_h2o5l2", "build_free_ligand", "build_co_l4",
           "co_l4_ligands", "CO_DONOR_DISTANCES", "parse_ligand", "ligand_charge",
           "DEFAULT_FMAX", "DEFAULT_STEPS", "SEED", "MAX_LIGAND_CHARGE", "MAX_LIGAND_HEAVY_ATOMS",
           "H2PDMS_SMILES",
           "PDMS_SMILES", "DY_DONOR_DISTANCES", "DONOR_ELEMENTS", "DY_WATER_DISTANCE"]
