r"""Two-dimensional scans of D and E along internal coordinates (Lunghi & Sanvito 2020, Fig. 4).

Lunghi & Sanvito scanned the axial anisotropy D (cm-1) and the conformational energy of
[Co(pdms)2]2- over a 21 x 21 grid of the Co-N distance and the intraligand N-Co-N angle and
found that shortening Co-N and closing N-Co-N make D more negative.  :func:`scan_2d` does
the same for any complex, any pair of :class:`InternalCoordinate` moves and any ASE
calculators (a trained :class:`~molmag.models.calculator.ModelCalculator` beside the
reference engines: :class:`~molmag.physics.ligand_field.LigandFieldCalculator` for D,
:class:`~molmag.chem.xtb.XTBCalculator` for E), and returns a :class:`Scan2DResult` with the
grids, the coordinates actually reached, ``save``/``load`` and contour plots.

Topology (fixed on the reference structure, used unchanged for every displaced one)
---------------------------------------------------------------------------------
* metal M: ``atoms.info["metal_index"]``, else the only d/f-block atom;
* donors X: ``atoms.info["donor_indices"]``, else :func:`molmag.chem.features.donor_indices`;
* bond graph: atoms i, j bonded when d_ij < f (r_i + r_j), r the covalent radii, f =
  :data:`molmag.chem.features.DONOR_FACTOR` = 1.2; the ligands are its connected fragments
  with M removed (:func:`molmag.chem.features.ligand_fragments`);
* the **arm** A(X) of a donor: X itself plus every connected piece of (ligand - X) that
  contains no other donor.  For a sulfonamide N of pdms2- that is N-S(=O)2-CH3 (the benzene
  backbone, which holds the other N, stays); for a monodentate ligand it is the whole ligand;
  for donors joined directly to each other just X.  Arms are disjoint.  The bonds between an
  arm and the rest of its ligand (for pdms N-C(ring)) are the *hinge* bonds
  (:meth:`InternalCoordinate.hinge_bonds`): the only ligand bonds a move changes.

Moves (rigid-body displacements of the arms; the backbone, all other atoms, and the internal
geometry of each arm are untouched)
-----------------------------------------------------------------------------------------
:class:`MetalDonorDistance` (symmetric stretch), coordinate the mean distance
:math:`\bar d = \frac1n\sum_k |\mathbf r_{X_k} - \mathbf r_M|` (Angstrom): to reach a target
:math:`\bar d'` every arm is translated along its own M->X unit vector
:math:`\hat u_k` by the same :math:`\Delta = \bar d' - \bar d`,

.. math:: \mathbf r_i \leftarrow \mathbf r_i + \Delta\,\hat u_k \qquad (i \in A(X_k)),

so every M-X distance changes by exactly Delta (their differences are kept) and no
X-M-X' angle changes (the directions :math:`\hat u_k` are unchanged).

:class:`ChelateBiteAngle` (symmetric opening), coordinate the mean intraligand angle
:math:`\bar\theta = \frac1p\sum_{(a,b)} \angle X_a M X_b` (degrees) over the donor pairs
that share a ligand (:func:`molmag.chem.features.intraligand_angles`): to reach
:math:`\bar\theta'` each pair is opened by :math:`\delta = \bar\theta' - \bar\theta`, arm
A(X_a) rotated by :math:`-\delta/2` and A(X_b) by :math:`+\delta/2` about the axis through
M along :math:`\hat n = \hat u_a \times \hat u_b / |\hat u_a \times \hat u_b|`
(Rodrigues, :math:`\mathbf r_i \leftarrow \mathbf r_M + R(\hat n, \pm\delta/2)
(\mathbf r_i - \mathbf r_M)`).  Both bonds lie in the plane normal to :math:`\hat n`, so
every pair's angle changes by exactly delta; rotations about an axis through M keep every
M-atom distance, so no M-X distance changes.  The angles between donors of different
ligands do change (that is the point: q of :mod:`molmag.chem.features` follows).

The two moves therefore commute on their coordinates: after the stretch and the opening the
structure has exactly the requested mean distance and mean angle (tested to 1e-6).  The
hinge bonds take the strain: for the xTB-relaxed [Co(pdms)2]2- the N-C(ring) bond (1.372
Angstrom) changes by -0.037/+0.043 Angstrom at Delta = +-0.1 Angstrom (about -0.4 Delta: Co-N-C
~ 112 deg) and by +0.082/-0.080 Angstrom at delta = +-5 deg (about r_CoN delta/2 cos 22 deg).
The scan is rigid (no relaxation of the other degrees of freedom), so its GFN2-xTB energies
(0.4-0.85 eV at the edges of the default grid) are upper bounds to a relaxed scan's.

Energies are relative to the unmodified reference structure,
:math:`\Delta E_{ij} = E(\mathbf r_{ij}) - E(\mathbf r_{\rm ref})` (eV); D is the calculator's
``zfs_D`` (cm-1, D = 3/2 Z: :mod:`molmag.physics.zfs`).
"""

from __future__ import annotations

import builtins
import itertools
import json
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols, covalent_radii
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist, squareform

from molmag.chem.features import (
    DONOR_FACTOR,
    donor_indices,
    features_table,
    intraligand_angles,
    ligand_fragments,
    metal_donor_distances,
)
from molmag.physics.elements import find_metal_index
from molmag.progress import ProgressFn

#: Default grid of Lunghi & Sanvito (2020), Fig. 4: 21 x 21 points.
DEFAULT_POINTS = 21
#: Default half-ranges of the offsets from the reference: Angstrom and degrees.
DEFAULT_DISTANCE_RANGE_A = 0.1
DEFAULT_ANGLE_RANGE_DEG = 5.0
#: Properties scanned by default and their units.
DEFAULT_PROPERTIES = ("zfs_D", "energy")
UNITS = {"zfs_D": "cm-1", "zfs_E": "cm-1", "energy": "eV", "zfs_D_std": "cm-1",
         "energy_std": "eV"}
#: Properties reported relative to the unmodified reference structure.
RELATIVE = ("energy",)


# ======================================================================================
# topology
# ======================================================================================
def _metal_of(atoms: Atoms, metal_index: int | None) -> int:
    if metal_index is not None:
        return int(metal_index)
    if "metal_index" in atoms.info:
        return int(atoms.info["metal_index"])
    m = find_metal_index(atoms)
    if m is None:
        raise ValueError(f"{atoms.get_chemical_formula()} has no d/f-block atom; give "
                         "metal_index")
    return m


def _donors_of(atoms: Atoms, metal: int, donors: Sequence[int] | None) -> np.ndarray:
    if donors is not None:
        return np.asarray(donors, dtype=int).ravel()
    if atoms.info.get("donor_indices") is not None:
        return np.asarray(atoms.info["donor_indices"], dtype=int).ravel()
    d = donor_indices(atoms, metal)
    if len(d) == 0:
        raise ValueError(f"{atoms.get_chemical_formula()}: no donor atom bonded to the metal "
                         f"{chemical_symbols[atoms.numbers[metal]]}{metal}; give donors")
    return d


def bond_graph(atoms: Atoms, factor: float = DONOR_FACTOR) -> np.ndarray:
    """Boolean adjacency (N, N): d_ij < factor (r_i + r_j), covalent radii (Angstrom)."""
    d = squareform(pdist(atoms.positions))
    r = covalent_radii[atoms.numbers]
    adj = d < factor * (r[:, None] + r[None, :])
    np.fill_diagonal(adj, False)
    return adj


def donor_arms(atoms: Atoms, metal: int, donors: Sequence[int] | np.ndarray,
               factor: float = DONOR_FACTOR) -> list[np.ndarray]:
    """The arm of each donor (see the module docstring): the donor plus the pieces of its
    ligand, metal removed, that stay connected to it and hold no other donor when the donor
    is removed.  One sorted index array per donor, in the order of ``donors``."""
    donors = [int(x) for x in donors]
    adj = bond_graph(atoms, factor)
    adj[metal, :] = adj[:, metal] = False
    lig = ligand_fragments(atoms, metal, factor)
    arms = []
    for x in donors:
        members = np.flatnonzero(lig == lig[x])
        rest = members[members != x]
        sub = adj[np.ix_(rest, rest)]
        _, lab = connected_components(csr_matrix(sub), directed=False)
        others = set(donors) - {x}
        arm = [x]
        for c in np.unique(lab):
            piece = rest[lab == c]
            if not others.intersection(piece.tolist()) and adj[x, piece].any():
                arm.extend(piece.tolist())
        arms.append(np.array(sorted(arm), dtype=int))
    return arms


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues: R = cos a I + sin a [n]x + (1 - cos a) n n^T (active, right-handed)."""
    n = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]])
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return c * np.eye(3) + s * k + (1.0 - c) * np.outer(n, n)


# ======================================================================================
# internal-coordinate moves
# ======================================================================================
class InternalCoordinate(ABC):
    """A scalar internal coordinate q(r) and a move that sets it.

    ``measure(atoms)`` gives q; ``set(atoms, value)`` returns a displaced copy with
    q = value (absolute); ``displace(atoms, delta)`` sets q(atoms) + delta.  Subclasses fix
    their topology (atom indices) on a reference structure and apply it to any structure
    with the same atom order.  ``name`` (a key with the unit in it), ``unit`` and ``label``
    (an axis label with the unit) describe it.
    """

    name: str
    unit: str
    label: str
    metal: int
    donors: np.ndarray
    arms: list[np.ndarray]
    _n_atoms: int  # atom count of the reference structure the move was set up on
    _adj: np.ndarray  # bond graph (n_atoms, n_atoms) of that reference

    @abstractmethod
    def measure(self, atoms: Atoms) -> float:
        """The coordinate of ``atoms`` (in ``unit``)."""

    @abstractmethod
    def set(self, atoms: Atoms, value: float) -> Atoms:
        """A copy of ``atoms`` moved so that :meth:`measure` gives ``value``."""

    def displace(self, atoms: Atoms, delta: float) -> Atoms:
        return self.set(atoms, self.measure(atoms) + float(delta))

    def _check(self, atoms: Atoms) -> None:
        if atoms.pbc.any():
            raise ValueError("internal-coordinate moves act on molecules: give a structure "
                             "without periodic boundary conditions")
        if len(atoms) != self._n_atoms:
            raise ValueError(f"{self.name}: the move was set up for {self._n_atoms} atoms, "
                             f"got {len(atoms)}")

    def moved_atoms(self) -> np.ndarray:
        """Indices of all atoms this move displaces (the union of the arms it uses)."""
        return np.unique(np.concatenate(self.arms)) if self.arms else np.zeros(0, int)

    def hinge_bonds(self) -> list[tuple[int, int]]:
        """Bonds (i, j), i in a moved arm, j in the same ligand outside it, on the reference
        structure: the only ligand bonds whose lengths the move changes."""
        moved = set(self.moved_atoms().tolist())
        out = []
        for arm in self.arms:
            for i in arm:
                for j in np.flatnonzero(self._adj[i]):
                    if int(j) not in moved and int(j) != self.metal:
                        out.append((int(i), int(j)))
        return sorted(set(out))

    def describe(self) -> dict:
        return {"type": type(self).__name__, "name": self.name, "unit": self.unit,
                "label": self.label, "metal_index": int(self.metal),
                "donor_indices": [int(i) for i in self.donors],
                "arms": [[int(i) for i in a] for a in self.arms]}


class MetalDonorDistance(InternalCoordinate):
    """Mean metal-donor distance (Angstrom), moved by the symmetric stretch: every donor arm
    translated along its own M->X bond by the same Delta (module docstring).

    ``MetalDonorDistance(reference)`` takes metal and donors from ``reference.info`` (or
    finds them) unless ``metal_index``/``donors`` are given.
    """

    unit = "Å"

    def __init__(self, reference: Atoms, metal_index: int | None = None,
                 donors: Sequence[int] | None = None, factor: float = DONOR_FACTOR):
        self.metal = _metal_of(reference, metal_index)
        self.donors = _donors_of(reference, self.metal, donors)
        self.arms = donor_arms(reference, self.metal, self.donors, factor)
        self._n_atoms = len(reference)
        self._adj = bond_graph(reference, factor)
        m = chemical_symbols[reference.numbers[self.metal]]
        xs = sorted({chemical_symbols[z] for z in reference.numbers[self.donors]})
        pair = f"{m}–{'/'.join(xs)}"
        self.name = "d_ML_mean_A"
        self.label = f"mean {pair} distance (Å)"

    def measure(self, atoms: Atoms) -> float:
        d, _ = metal_donor_distances(atoms, self.metal, self.donors.tolist())
        return float(d.mean())

    def set(self, atoms: Atoms, value: float) -> Atoms:
        self._check(atoms)
        out = atoms.copy()
        pos = out.positions
        vec = pos[self.donors] - pos[self.metal]
        d = np.linalg.norm(vec, axis=1)
        delta = float(value) - float(d.mean())
        if np.any(d + delta <= 0):
            raise ValueError(f"mean distance {value} would put a donor through the metal")
        for u, arm in zip(vec / d[:, None], self.arms):
            pos[arm] += delta * u
        out.positions = pos
        return out


class ChelateBiteAngle(InternalCoordinate):
    """Mean intraligand donor-M-donor ("bite") angle (degrees), moved by the symmetric
    opening of every chelate: arms of the pair rotated by -/+delta/2 about the normal of the
    X_a-M-X_b plane through M (module docstring).

    The pairs are those of :func:`molmag.chem.features.intraligand_angles` on the reference;
    each donor may belong to one pair only (bidentate ligands).
    """

    unit = "deg"

    def __init__(self, reference: Atoms, metal_index: int | None = None,
                 donors: Sequence[int] | None = None, factor: float = DONOR_FACTOR):
        self.metal = _metal_of(reference, metal_index)
        self.donors = _donors_of(reference, self.metal, donors)
        _, pairs = intraligand_angles(reference, self.metal, self.donors.tolist())
        if len(pairs) == 0:
            raise ValueError(f"{reference.get_chemical_formula()}: no two donors share a "
                             "ligand, so there is no chelate bite angle to scan")
        flat = pairs.ravel().tolist()
        if len(set(flat)) != len(flat):
            raise ValueError(f"donors {flat} belong to several intraligand pairs "
                             f"({pairs.tolist()}): the symmetric bite-angle move needs "
                             "bidentate ligands")
        self.pairs = np.asarray(pairs, dtype=int)
        arm_of = dict(zip(self.donors.tolist(), donor_arms(reference, self.metal,
                                                         self.donors, factor)))
        self.pair_arms = [(arm_of[int(a)], arm_of[int(b)]) for a, b in self.pairs]
        self.arms = [arm for pa in self.pair_arms for arm in pa]
        self._n_atoms = len(reference)
        self._adj = bond_graph(reference, factor)
        m = chemical_symbols[reference.numbers[self.metal]]
        xs = sorted({chemical_symbols[z] for z in reference.numbers[self.pairs.ravel()]})
        x = "/".join(xs)
        self.name = "angle_intra_mean_deg"
        self.label = f"mean intraligand {x}–{m}–{x} angle (deg)"

    def _angles(self, pos: np.ndarray) -> np.ndarray:
        u = pos[self.pairs] - pos[self.metal]
        u /= np.linalg.norm(u, axis=-1, keepdims=True)
        return np.degrees(np.arccos(np.clip(np.sum(u[:, 0] * u[:, 1], axis=1), -1.0, 1.0)))

    def measure(self, atoms: Atoms) -> float:
        ang, pairs = intraligand_angles(atoms, self.metal, self.donors.tolist())
        if pairs.shape != self.pairs.shape or not np.array_equal(np.sort(pairs, axis=1),
                                                               np.sort(self.pairs, axis=1)):
            raise ValueError(f"the intraligand donor pairs changed from {self.pairs.tolist()} to "
                             f"{pairs.tolist()}: the structure is too distorted (a bond broke)")
        return float(ang.mean())

    def set(self, atoms: Atoms, value: float) -> Atoms:
        self._check(atoms)
        out = atoms.copy()
        pos = out.positions.copy()
        theta = self._angles(pos)
        delta = float(value) - float(theta.mean())
        if np.any(theta + delta <= 0) or np.any(theta + delta >= 180):
            raise ValueError(f"mean bite angle {value} deg takes a pair outside (0, 180) deg")
        half = 0.5 * np.radians(delta)
        c = pos[self.metal]
        for (a, b), (arm_a, arm_b) in zip(self.pairs, self.pair_arms):
            n = np.cross(pos[a] - c, pos[b] - c)
            ra, rb = _rotation(n, -half), _rotation(n, half)
            pos[arm_a] = c + (pos[arm_a] - c) @ ra.T
            pos[arm_b] = c + (pos[arm_b] - c) @ rb.T
        out.positions = pos
        return out


def default_coordinates(reference: Atoms, metal_index: int | None = None,
                        donors: Sequence[int] | None = None) -> tuple[InternalCoordinate,
                                                                      InternalCoordinate]:
    """(mean metal-donor distance, mean chelate bite angle) of ``reference``: the two axes of
    Lunghi & Sanvito's Fig. 4 for [Co(pdms)2]2-."""
    return (MetalDonorDistance(reference, metal_index, donors),
            ChelateBiteAngle(reference, metal_index, donors))


def set_coordinates(atoms: Atoms, coordinates: Sequence[InternalCoordinate],
                    values: Sequence[float], *, tol: float = 1e-10,
                    max_sweeps: int = 20) -> tuple[Atoms, np.ndarray]:
    """Apply the moves in turn, repeating the sweep until every coordinate is within ``tol``
    of its target (one sweep for moves that leave each other's coordinates alone, as
    :class:`MetalDonorDistance` and :class:`ChelateBiteAngle` do).  Returns the structure and
    the coordinates it reached."""
    out = atoms
    target = np.asarray(values, float)
    for _ in range(max_sweeps):
        for c, v in zip(coordinates, target):
            out = c.set(out, v)
        got = np.array([c.measure(out) for c in coordinates])
        if np.all(np.abs(got - target) <= tol):
            break
    return out, got


# ======================================================================================
# evaluation
# ======================================================================================
def _properties_of(calc, properties: Sequence[str]) -> list[str]:
    impl = set(getattr(calc, "implemented_properties", ()))
    return [p for p in properties if p in impl]


def evaluate_point(task) -> dict:
    """Evaluate one structure with several calculators (what ``map`` runs; picklable).

    ``task = (atoms, {name: (calculator, [properties])})``.  Returns
    ``{name: {property: float}}`` with NaN and an entry in ``"_errors"`` for a failure.
    """
    atoms, calcs = task
    out: dict = {"_errors": []}
    for name, (calc, props) in calcs.items():
        a = atoms.copy()
        a.calc = calc
        res = {}
        try:
            for p in props:
                v = calc.get_property(p, a)
                res[p] = float(np.asarray(v).ravel()[0]) if np.ndim(v) else float(v)
        except Exception as exc:  # one failed point must not end a long scan; it is recorded
            text = str(exc).strip()
            last = text.splitlines()[-1] if text else ""
            out["_errors"].append(f"{name}: {type(exc).__name__}: {last}")
            res = {p: res.get(p, np.nan) for p in props}
        out[name] = res
    return out


def _name_calculators(calculators) -> dict:
    if isinstance(calculators, Mapping):
        return {str(k): v for k, v in calculators.items()}
    out: dict = {}
    for c in (calculators if isinstance(calculators, (list, tuple)) else [calculators]):
        base = type(c).__name__.replace("Calculator", "") or type(c).__name__
        name, k = base, 2
        while name in out:
            name, k = f"{base}{k}", k + 1
        out[name] = c
    return out


@dataclass
class Scan2DResult:
    r"""A 2D scan: ``data[calc][prop][i, j]`` at coordinate values ``values1[i]``,
    ``values2[j]`` (``offsets`` are the same minus the reference values).

    ``achieved1/achieved2[i, j]`` are the coordinates measured (with
    :mod:`molmag.chem.features`) on the generated structures; ``q_tet[i, j]`` the tetrahedral
    order parameter there (NaN unless 4 donors).  Properties in :data:`RELATIVE` (energy) are
    stored relative to the unmodified reference, whose absolute values are in ``reference``.
    ``done[i, j]`` marks computed points (a checkpoint may hold part of a grid).
    """

    coordinates: list[dict]
    offsets1: np.ndarray
    offsets2: np.ndarray
    values1: np.ndarray
    values2: np.ndarray
    data: dict[str, dict[str, np.ndarray]]
    reference: dict[str, dict[str, float]]
    achieved1: np.ndarray
    achieved2: np.ndarray
    q_tet: np.ndarray
    done: np.ndarray
    numbers: np.ndarray
    positions: np.ndarray
    errors: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.values1), len(self.values2))

    def grid(self, calculator: str, prop: str) -> np.ndarray:
        """``data[calculator][prop]`` (n1, n2)."""
        return self.data[calculator][prop]

    def coordinate_error(self) -> float:
        """max |achieved - requested| over the computed points (units of each coordinate)."""
        v1, v2 = np.meshgrid(self.values1, self.values2, indexing="ij")
        m = self.done
        if not m.any():
            return 0.0
        return float(max(np.max(np.abs(self.achieved1[m] - v1[m])),
                         np.max(np.abs(self.achieved2[m] - v2[m]))))

    def summary(self) -> dict:
        """Range and extremum location of every scanned grid (JSON-friendly)."""
        out = {}
        for cname, props in self.data.items():
            for p, g in props.items():
                if not np.isfinite(g).any():
                    continue
                i, j = np.unravel_index(np.nanargmin(g), g.shape)
                k, l = np.unravel_index(np.nanargmax(g), g.shape)
                out[f"{cname}/{p}"] = {
                    "unit": UNITS.get(p, ""), "min": float(g[i, j]), "max": float(g[k, l]),
                    "argmin": [float(self.values1[i]), float(self.values2[j])],
                    "argmax": [float(self.values1[k]), float(self.values2[l])]}
        return out

    # -- files ------------------------------------------------------------------------
    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (description, reference values,
        errors, summary); ``path`` with or without the suffix."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
        stem.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"offsets1": self.offsets1, "offsets2": self.offsets2,
                  "values1": self.values1, "values2": self.values2,
                  "achieved1": self.achieved1, "achieved2": self.achieved2,
                  "q_tet": self.q_tet, "done": self.done, "numbers": self.numbers,
                  "positions": self.positions}
        for cname, props in self.data.items():
            for p, g in props.items():
                arrays[f"data::{cname}::{p}"] = g
        npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
        tmp = stem.with_name(stem.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(npz)
        doc = {"format": "molmag.scan2d/1", "coordinates": self.coordinates,
               "shape": list(self.shape), "units": {p: UNITS.get(p, "") for props in
                                                    self.data.values() for p in props},
               "relative_to_reference": [p for p in RELATIVE],
               "calculators": {c: sorted(p) for c, p in self.data.items()},
               "reference": self.reference, "errors": self.errors, "meta": self.meta,
               "coordinate_error": self.coordinate_error(), "summary": self.summary()}
        js.write_text(json.dumps(doc, indent=1, default=float))
        return npz, js

    @classmethod
    def load(cls, path: str | Path) -> Scan2DResult:
        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
        doc = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz")) as z:
            arr = {k: z[k] for k in z.files}
        data: dict = {}
        for k, v in arr.items():
            if k.startswith("data::"):
                _, cname, p = k.split("::", 2)
                data.setdefault(cname, {})[p] = v
        return cls(coordinates=doc["coordinates"], offsets1=arr["offsets1"],
                   offsets2=arr["offsets2"], values1=arr["values1"], values2=arr["values2"],
                   data=data, reference=doc["reference"], achieved1=arr["achieved1"],
                   achieved2=arr["achieved2"], q_tet=arr["q_tet"],
                   done=arr["done"].astype(bool), numbers=arr["numbers"],
                   positions=arr["positions"], errors=list(doc.get("errors", [])),
                   meta=doc.get("meta", {}))

    def reference_atoms(self) -> Atoms:
        return Atoms(numbers=self.numbers, positions=self.positions)

    # -- plots ------------------------------------------------------------------------
    def plot(self, directory: str | Path, prefix: str = "scan",
             properties: Sequence[str] | None = None) -> list[Path]:
        """Contour PNGs, one per property (``<prefix>_<property>.png``): one panel per
        calculator that gives it, side by side on a common colour scale, and, with exactly
        two calculators, their difference.  x: coordinate 1, y: coordinate 2, with units;
        the cross marks the unmodified reference."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        props = list(properties) if properties is not None else list(dict.fromkeys(
            p for pr in self.data.values() for p in pr))
        x, y = self.values1, self.values2
        ref1, ref2 = (self.values1 - self.offsets1)[0], (self.values2 - self.offsets2)[0]
        written = []
        for p in props:
            panels = [(c, self.data[c][p]) for c in self.data if p in self.data[c]]
            if not panels:
                continue
            unit = UNITS.get(p, "")
            what = {"zfs_D": "D", "zfs_E": "E", "energy": "ΔE"}.get(p, p)
            stack = np.stack([g for _, g in panels])
            finite = stack[np.isfinite(stack)]
            if finite.size == 0:
                continue
            lo, hi = float(finite.min()), float(finite.max())
            levels = np.linspace(lo, hi if hi > lo else lo + 1e-12, 21)
            extra = len(panels) == 2
            n = len(panels) + int(extra)
            fig, axes = plt.subplots(1, n, figsize=(4.8 * n, 4.2), squeeze=False)
            for ax, (cname, g) in zip(axes[0], panels):
                cs = ax.contourf(x, y, g.T, levels=levels, cmap="viridis")
                ax.contour(x, y, g.T, levels=levels[::4], colors="k", linewidths=0.4)
                fig.colorbar(cs, ax=ax, label=f"{what} ({unit})")
                ax.set_title(f"{cname}: {what} ({unit})")
            if extra:
                ax = axes[0][-1]
                diff = panels[0][1] - panels[1][1]
                lim = float(np.nanmax(np.abs(diff))) if np.isfinite(diff).any() else 1.0
                cs = ax.contourf(x, y, diff.T, levels=np.linspace(-lim - 1e-12, lim + 1e-12, 21),
                                 cmap="RdBu_r")
                fig.colorbar(cs, ax=ax, label=f"Δ{what} ({unit})")
                ax.set_title(f"{panels[0][0]} − {panels[1][0]} ({unit})")
            for ax in axes[0]:
                ax.plot([ref1], [ref2], "w+", ms=12, mew=2, label="reference")
                ax.set_xlabel(self.coordinates[0]["label"])
                ax.set_ylabel(self.coordinates[1]["label"])
            axes[0][0].legend(loc="upper right", fontsize=8)
            fig.tight_layout()
            out = directory / f"{prefix}_{p}.png"
            fig.savefig(out, dpi=120)
            plt.close(fig)
            written.append(out)
        return written


# ======================================================================================
# the scan
# ======================================================================================
def scan_2d(reference: Atoms, calculators, *,
            coordinates: Sequence[InternalCoordinate] | None = None,
            offsets1: Sequence[float] | np.ndarray | None = None,
            offsets2: Sequence[float] | np.ndarray | None = None,
            properties: Sequence[str] = DEFAULT_PROPERTIES,
            map: Callable[[Callable, Iterable], Iterable] | None = None,
            checkpoint: str | Path | None = None, checkpoint_every: int = 50,
            progress: ProgressFn | None = None, tol: float = 1e-10) -> Scan2DResult:
    r"""Scan ``properties`` over a 2D grid of two internal coordinates.

    Parameters
    ----------
    reference : ase.Atoms
        The unmodified structure (``info`` may hold ``metal_index``, ``donor_indices``,
        ``charge``, ``multiplicity``: they are kept on every displaced copy, so calculators
        that read them see them).
    calculators : ASE calculator, list of them, or {name: calculator}
        Each computes the ``properties`` it implements (``implemented_properties``), e.g.
        ``{"ML": ModelCalculator("d.npz"), "LF": LigandFieldCalculator(),
        "xTB": XTBCalculator()}``.  Unnamed ones are named by class (``LigandField``).
    coordinates : two :class:`InternalCoordinate`
        Default :func:`default_coordinates`: mean metal-donor distance (Angstrom) and mean
        chelate bite angle (degrees).
    offsets1, offsets2 : grids of offsets from the reference coordinates
        Defaults: 21 points over +-0.1 Angstrom and +-5 degrees (Lunghi & Sanvito, Fig. 4).
        Point (i, j) has coordinates q1_ref + offsets1[i], q2_ref + offsets2[j].
    properties : property names, default ("zfs_D", "energy") (cm-1, eV).  ``energy`` is
        reported relative to the reference: Delta E_ij = E_ij - E_ref (eV).
    map : a ``map(func, iterable)`` returning results in order, for parallel evaluation
        (``multiprocessing.Pool(4).map``, ``ProcessPoolExecutor().map``; for Dask
        ``lambda f, xs: client.gather(client.map(f, list(xs)))``).  The calculators are
        pickled into each task, so give fresh ones (an XTBCalculator that has run holds a
        tblite handle that does not pickle); the reference structure is the first task.
        Default: the built-in ``map`` in this process (calculators reused, so xTB restarts
        each SCF from the previous point's wavefunction).
    checkpoint : path (without suffix) of a partial result, written every
        ``checkpoint_every`` points; an existing one with the same reference, grid and
        calculators is resumed (its computed points are not recomputed).
    tol : tolerance of :func:`set_coordinates` (coordinate units).

    Returns
    -------
    Scan2DResult
    """
    t0 = time.perf_counter()
    calcs = _name_calculators(calculators)
    if not calcs:
        raise ValueError("give at least one calculator")
    plan = {}
    for cname, c in calcs.items():
        props = _properties_of(c, properties)
        if not props:
            have = getattr(c, "implemented_properties", [])
            raise ValueError(f"calculator {cname} ({type(c).__name__}) implements none of "
                             f"{list(properties)} (it has {have})")
        plan[cname] = (c, props)
    coords = tuple(coordinates) if coordinates is not None else default_coordinates(reference)
    if len(coords) != 2:
        raise ValueError(f"a 2D scan needs two coordinates, got {len(coords)}")
    o1 = np.asarray(offsets1 if offsets1 is not None else np.linspace(
        -DEFAULT_DISTANCE_RANGE_A, DEFAULT_DISTANCE_RANGE_A, DEFAULT_POINTS), float)
    o2 = np.asarray(offsets2 if offsets2 is not None else np.linspace(
        -DEFAULT_ANGLE_RANGE_DEG, DEFAULT_ANGLE_RANGE_DEG, DEFAULT_POINTS), float)
    q0 = np.array([c.measure(reference) for c in coords])
    v1, v2 = q0[0] + o1, q0[1] + o2
    shape = (len(o1), len(o2))

    res = None
    if checkpoint is not None and Path(checkpoint).with_suffix(".npz").exists():
        old = Scan2DResult.load(checkpoint)
        same = (old.shape == shape and np.allclose(old.offsets1, o1) and
                np.allclose(old.offsets2, o2) and np.array_equal(old.numbers, reference.numbers)
                and np.allclose(old.positions, reference.positions, atol=1e-10)
                and all(sorted(old.data.get(c, {})) == sorted(p) for c, (_, p) in plan.items())
                and sorted(old.data) == sorted(plan))
        if same:
            res = old
        else:
            warnings.warn(f"checkpoint {checkpoint} is of another scan; starting afresh")
    if res is None:
        nan = np.full(shape, np.nan)
        res = Scan2DResult(
            coordinates=[{**c.describe(), "reference_value": float(q)} for c, q in zip(coords, q0)],
            offsets1=o1, offsets2=o2, values1=v1, values2=v2,
            data={c: {p: nan.copy() for p in props} for c, (_, props) in plan.items()},
            reference={}, achieved1=nan.copy(), achieved2=nan.copy(), q_tet=nan.copy(),
            done=np.zeros(shape, bool), numbers=reference.numbers.copy(),
            positions=reference.positions.copy())

    # structures and their coordinates (cheap; here, in order)
    todo = [(i, j) for i in range(shape[0]) for j in range(shape[1]) if not res.done[i, j]]
    structures = []
    for i, j in todo:
        s, got = set_coordinates(reference, coords, (v1[i], v2[j]), tol=tol)
        s.info = dict(reference.info)
        structures.append(s)
        res.achieved1[i, j], res.achieved2[i, j] = got
    if structures:
        donors = coords[0].donors
        rows = features_table(structures, metal_index=coords[0].metal, donors=list(donors))
        for (i, j), row in zip(todo, rows):
            res.q_tet[i, j] = row.get("q_tet", np.nan)

    mapper = map if map is not None else builtins.map
    ref_atoms = reference.copy()
    ref_atoms.info = dict(reference.info)
    # The reference goes through the same map as the grid (first task), so that with a
    # process map the calculators here are never run: a used XTBCalculator holds a tblite
    # handle that cannot be pickled into the tasks.
    need_ref = not res.reference
    tasks = itertools.chain([(ref_atoms, plan)] if need_ref else [],
                            ((s, plan) for s in structures))
    it = iter(mapper(evaluate_point, tasks))
    if need_ref:
        r = next(it)
        if r["_errors"]:
            raise RuntimeError("the reference structure failed: " + "; ".join(r["_errors"]))
        res.reference = {c: r[c] for c in plan}
    if progress is not None:
        progress(0, len(todo), "2D scan")
    for n, ((i, j), r) in enumerate(zip(todo, it), 1):
        for cname, (_, props) in plan.items():
            for p in props:
                v = r[cname][p]
                if p in RELATIVE:
                    v = v - res.reference[cname][p]
                res.data[cname][p][i, j] = v
        for e in r["_errors"]:
            res.errors.append(f"({i}, {j}) {e}")
        res.done[i, j] = True
        if checkpoint is not None and n % max(1, checkpoint_every) == 0:
            res.save(checkpoint)
        if progress is not None:
            progress(n, len(todo), "2D scan")

    res.meta = {**res.meta, "formula": reference.get_chemical_formula(),
                "calculators": {c: type(k).__name__ for c, (k, _) in plan.items()},
                "properties": {c: p for c, (_, p) in plan.items()},
                "n_points": int(shape[0] * shape[1]), "n_computed_now": len(todo),
                "wall_s": float(res.meta.get("wall_s", 0.0) + time.perf_counter() - t0),
                "construction": "rigid arm moves (molmag.explore.scan module docstring)"}
    if res.errors:
        warnings.warn(f"{len(res.errors)} failed evaluations (NaN in the grids): {res.errors[0]}")
    err = res.coordinate_error()
    if err > 1e-6:
        warnings.warn(f"the moves missed the requested coordinates by up to {err:.3g}")
    if checkpoint is not None:
        res.save(checkpoint)
    return res


__all__ = [
    "ChelateBiteAngle",
    "DEFAULT_PROPERTIES",
    "InternalCoordinate",
    "MetalDonorDistance",
    "Scan2DResult",
    "bond_graph",
    "default_coordinates",
    "donor_arms",
    "evaluate_point",
    "scan_2d",
    "set_coordinates",
]
