r"""Particle-swarm optimisation of :math:`\chi(r) = E(r) + \gamma D(r)` over all Cartesian
coordinates of a complex (Lunghi & Sanvito 2020, eq. 6 and the SI "Particle Swarm
Optimization").

Target function
---------------
For a structure with Cartesian coordinates r (Angstrom)

.. math::

    \chi(r) = [E(r) - E(r_0)] + \gamma\, D(r) + P_\mathrm{clash}(r) \quad [\mathrm{eV}]

* E: the ``energy`` property of any ASE calculator (eV), taken relative to the start
  structure r0, so chi(r0) = gamma D(r0) (+ the clash penalty of r0, normally 0).
* D: the axial zero-field-splitting parameter, the ``zfs_D`` property (cm-1) of any ASE
  calculator (molmag's :class:`~molmag.physics.ligand_field.LigandFieldCalculator`, a
  :class:`~molmag.models.calculator.ModelCalculator` of a D-tensor committee, ...).
  molmag's convention (:mod:`molmag.physics.zfs`): D = 3/2 Z, Z the largest-magnitude
  eigenvalue of the traceless tensor; **axial (easy-axis) anisotropy has D < 0**.
* gamma: **eV per cm-1**.  The paper gives chi without units (its figures show E in
  kcal/mol and D in cm-1); molmag keeps ASE's eV for energies and cm-1 for D, so gamma
  converts cm-1 of D into eV of chi.  ``gamma = 1.24e-4 eV/cm-1`` (:data:`CM1_IN_EV`) weighs one
  cm-1 of D like one cm-1 of energy; :func:`gamma_to_eV_per_cm1` converts a gamma given
  per kcal/mol (or any molmag energy unit) per cm-1.
* The optimiser **minimises** chi.  With gamma > 0 a more negative D (larger axial |D|)
  lowers chi, so the optimum trades energy for axial anisotropy: D(optimum) <= D(r0) and,
  when r0 is an energy minimum, E(optimum) - E(r0) >= 0; the larger gamma, the more
  negative D.  gamma = 0 is a plain (global) energy minimisation; gamma < 0 would favour
  easy-plane (D > 0) structures.
* P_clash (eV): a steep penalty against atoms that come too close,

  .. math::

      P_\mathrm{clash} = k_\mathrm{clash} \sum_{i<j}
      \max\!\left(0,\ 1 - \frac{d_{ij}}{f (R_i + R_j)}\right)^{2},

  R the ASE covalent radii (Angstrom), f = ``clash_factor`` (0.7) and k = ``clash_strength``
  (100 eV: a pair at 0.9 f (R_i + R_j) costs 1 eV, at half of it 25 eV).  It keeps cheap
  energy models (ML, analytic) out of unphysical, collapsed geometries.

Swarm update (SI, PSO section)
------------------------------
Particle alpha is the vector p_alpha of all 3 N coordinates.  Each step, for every
particle, two random numbers c1, c2 ~ U[0, 1) are drawn (one pair per particle per step,
shared by its coordinates) and

.. math::

    v_\alpha \leftarrow \omega v_\alpha + \Gamma\,[c_1 (p^\alpha_\mathrm{best} - p_\alpha)
    + c_2 (p_\mathrm{best} - p_\alpha)], \qquad p_\alpha \leftarrow p_\alpha + v_\alpha,

with omega = 0.7 and Gamma = 1.70 (the SI's values; ``omega``, ``acceleration``),
p_best^alpha the best position particle alpha has visited and p_best the best of the whole
swarm (Kennedy & Eberhart 1995).  The SI prints the update as
``omega v + Gamma [c1 p_best^alpha + c2 p_best]``, without the differences to the current
position; as printed it would push every particle along the absolute coordinates, so we use
the standard form above, which is what the cited PSO (ref. 23) is.

Settings the paper does not give, and ours:

* number of particles and steps: the paper only says that PSO "requires the evaluation of
  the function chi at least 1000 times"; defaults 20 particles x 50 steps (1000 + 20
  evaluations).
* initial swarm: particle 0 is the start structure (``include_start``), the others
  r0 + U[-a, a] on every coordinate with a = ``init_displacement`` (0.01 Angstrom);
  initial velocities U[-a, a].  Measured on [Co(pdms)2]2- (53 atoms, GFN2-xTB): random
  0.05 Angstrom displacements of all 159 coordinates cost 1.9 eV on average, far above
  gamma x (change of D) for any sensible gamma, so a swarm started that wide stays behind
  the start structure for tens of steps; a = 0.01 Angstrom lets it improve from step 1.
  Small molecules tolerate (and explore better with) larger a.
  Random numbers, in this order from one ``numpy.random.Generator``: the initial
  displacements (P, N, 3) (particle 0's then overwritten by r0), the initial velocities
  (P, N, 3), then every step c1 (P,) and c2 (P,).
* bounds: every coordinate stays within r0 +/- ``max_displacement`` (0.2 Angstrom, the
  largest displacement of the paper's training set: beyond it an ML model extrapolates).
  A coordinate that leaves the box is put back on the wall and that velocity component is
  set to zero ("absorbing walls").  Atoms listed in ``fixed`` do not move.  ``v_max``
  (Angstrom per step, default none) optionally clips each velocity component.

Committee uncertainty: when a calculator implements ``energy_std`` (eV) or ``zfs_D_std``
(cm-1) (:class:`~molmag.models.calculator.ModelCalculator`), they are recorded for the
global best at every step and for the swarm (the largest of the step); ``std_threshold_E``
(eV) and ``std_threshold_D`` (cm-1) flag the steps whose best lies beyond them (an ML model
outside its training domain: label such structures, retrain).

Checkpoints (``checkpoint=``, a ``.npz`` written atomically every ``checkpoint_every``
steps and at the end) hold positions, velocities, personal and global bests, the
generator's state, the step and the history; running again with the same checkpoint
continues where the run stopped and gives the result of an uninterrupted run, bit for bit
for deterministic calculators (GFN2-xTB restarts its SCF from the previous wavefunction, so
there the agreement is to the SCF tolerance).

Parallel evaluation: the particles of one step are evaluated through ``map(func, list)``
(builtin ``map`` by default); ``func`` is a picklable :class:`ChiEvaluator` and each item a
(N, 3) position array, so e.g. Dask can run them:
``map=lambda f, xs: client.gather(client.map(f, list(xs)))``.  A calculator error for one
structure (SCF failure, no donors within bonding distance, ...) gives that particle
chi = +inf and is counted in ``n_failed``; the start structure itself must evaluate.
molmag's :class:`~molmag.physics.ligand_field.LigandFieldCalculator` finds the donors
anew for every structure; give it the start's donors
(``LigandFieldCalculator(donors=atoms.info["donor_indices"])``) so that an atom drifting
into bonding distance (a sulfonamide S of [Co(pdms)2]2- did) does not change the model.

Analysis: :func:`pso_gamma_scan` runs several gammas with common random numbers;
:func:`rank_coordinate_changes` ranks the bonds and the donor-metal-donor angles by their
relative change between the start and the optimum (the paper finds the Co-N distances and
intraligand N-Co-N angles of [Co(pdms)2]2-); a ``reference_d_calc`` re-evaluates D at the
optimum (the paper's CASSCF check found a ~7 % extrapolation error of its ML D).
"""

from __future__ import annotations

import builtins
import csv
import json
import logging
import math
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import ase.io
import numpy as np
from ase import Atoms
from ase.data import covalent_radii

from molmag.physics.elements import bonded_neighbours, find_metal_index
from molmag.physics.units import convert, factor
from molmag.progress import ProgressFn

log = logging.getLogger(__name__)

#: One cm-1 in eV (h c 100 cm/m / e): gamma = CM1_IN_EV weighs D like an energy.
CM1_IN_EV = float(convert(1.0, "cm-1", "eV"))

#: Defaults; paper = Lunghi & Sanvito 2020 SI, "Particle Swarm Optimization".
DEFAULT_OMEGA = 0.7              # inertia omega (paper)
DEFAULT_ACCELERATION = 1.7       # Gamma (paper)
DEFAULT_N_PARTICLES = 20         # not in the paper (>= 1000 chi evaluations: main text)
DEFAULT_N_STEPS = 50
DEFAULT_MAX_DISPLACEMENT = 0.2   # Angstrom; the paper's largest training displacement
DEFAULT_INIT_DISPLACEMENT = 0.01  # Angstrom; not in the paper (see the module docstring)
DEFAULT_CLASH_FACTOR = 0.7       # fraction of the sum of covalent radii
DEFAULT_CLASH_STRENGTH = 100.0   # eV

CHECKPOINT_FORMAT = "molmag-pso-checkpoint"
CHECKPOINT_VERSION = 1

# Columns of the per-particle value rows (personal bests) and their units.
_VALUES = ("chi", "energy", "zfs_D", "zfs_E", "energy_std", "zfs_D_std", "penalty")
_CHI, _EN, _D, _ZE, _ESTD, _DSTD, _PEN = range(len(_VALUES))

#: History columns (one row per step, step 0 = the initial swarm), unit in each name.
HISTORY_COLUMNS = ("step", "chi_eV", "energy_eV", "zfs_D_cm-1", "zfs_E_cm-1", "energy_std_eV",
                   "zfs_D_std_cm-1", "penalty_eV", "swarm_mean_chi_eV",
                   "swarm_max_energy_std_eV", "swarm_max_zfs_D_std_cm-1", "n_evaluations",
                   "n_failed")
_BEST_COLUMNS = {"chi_eV": _CHI, "energy_eV": _EN, "zfs_D_cm-1": _D, "zfs_E_cm-1": _ZE,
                 "energy_std_eV": _ESTD, "zfs_D_std_cm-1": _DSTD, "penalty_eV": _PEN}
_MAX_ERRORS_KEPT = 20


def gamma_to_eV_per_cm1(gamma: float, energy_unit: str) -> float:
    """gamma given in ``energy_unit`` per cm-1 (e.g. "kcal/mol", as the paper's figures
    use) -> eV per cm-1, the unit of :func:`pso_optimize`'s ``gamma``."""
    return float(gamma) * factor(energy_unit, "eV")


# ======================================================================================
# the update rule, bounds and clash penalty (pure functions)
# ======================================================================================
def velocity_update(v, x, p_best, g_best, c1, c2, omega: float = DEFAULT_OMEGA,
                    acceleration: float = DEFAULT_ACCELERATION) -> np.ndarray:
    """v <- omega v + Gamma [c1 (p_best - x) + c2 (g_best - x)] (Angstrom per step).

    ``v``, ``x``, ``p_best``: (P, N, 3); ``g_best``: (N, 3); ``c1``, ``c2``: (P,), one
    random number per particle."""
    x = np.asarray(x, float)
    shape = (-1,) + (1,) * (x.ndim - 1)
    c1 = np.asarray(c1, float).reshape(shape)
    c2 = np.asarray(c2, float).reshape(shape)
    return omega * np.asarray(v, float) + acceleration * (
        c1 * (np.asarray(p_best, float) - x) + c2 * (np.asarray(g_best, float) - x))


def apply_bounds(x, v, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Absorbing walls: coordinates outside [lower, upper] are put on the wall and their
    velocity components set to zero.  Returns new (x, v)."""
    x = np.asarray(x, float)
    hit = (x < lower) | (x > upper)
    return np.clip(x, lower, upper), np.where(hit, 0.0, v)


def clash_penalty(positions, numbers, clash_factor: float = DEFAULT_CLASH_FACTOR,
                  strength: float = DEFAULT_CLASH_STRENGTH) -> np.ndarray | float:
    """P = strength * sum_{i<j} max(0, 1 - d_ij / (f (R_i + R_j)))^2 (eV), R the ASE
    covalent radii (Angstrom), f = ``clash_factor``.  ``positions``: (N, 3) -> float, or
    (P, N, 3) -> (P,)."""
    pos = np.asarray(positions, float)
    single = pos.ndim == 2
    pos = pos.reshape(-1, pos.shape[-2], 3)
    n = pos.shape[1]
    if n < 2 or strength == 0:
        out = np.zeros(len(pos))
        return float(out[0]) if single else out
    i, j = np.triu_indices(n, 1)
    r = covalent_radii[np.asarray(numbers)]
    d_min = clash_factor * (r[i] + r[j])
    d = np.linalg.norm(pos[:, i] - pos[:, j], axis=-1)
    out = strength * np.sum(np.maximum(0.0, 1.0 - d / d_min) ** 2, axis=-1)
    return float(out[0]) if single else out


# ======================================================================================
# evaluation of one structure
# ======================================================================================
@dataclass(frozen=True)
class Evaluation:
    """E (eV, absolute), D and the rhombic E (cm-1), committee spreads (NaN when the
    calculator has none) of one structure; ``error`` says why it failed (then NaN values)."""

    energy: float = math.nan
    zfs_D: float = math.nan
    zfs_E: float = math.nan
    energy_std: float = math.nan
    zfs_D_std: float = math.nan
    error: str | None = None


def _optional(calc, name: str, atoms: Atoms) -> float:
    if name not in getattr(calc, "implemented_properties", ()):
        return math.nan
    return float(calc.get_property(name, atoms))


def _portable(calc):
    """``calc`` if it pickles, else a fresh ``type(calc)(**calc.parameters)`` (a used
    GFN2-xTB calculator holds a tblite object that does not pickle; a new one does)."""
    try:
        pickle.dumps(calc)
        return calc
    except Exception:
        pass
    try:
        fresh = type(calc)(**dict(getattr(calc, "parameters", {})))
        pickle.dumps(fresh)
        return fresh
    except Exception as exc:
        raise TypeError(f"{type(calc).__name__} cannot be sent to another process ({exc}); "
                        "evaluate serially or give a map that builds it on the worker") from exc


class ChiEvaluator:
    """Evaluates E and D of one conformer of ``atoms`` (positions (N, 3), Angstrom).

    Used through ``map``; picklable for process pools and Dask: a calculator that does not
    pickle as it is travels as a new instance with the same ``parameters``."""

    def __init__(self, atoms: Atoms, energy_calc, d_calc):
        self.template = atoms.copy()
        self.template.calc = None
        self.energy_calc = energy_calc
        self.d_calc = d_calc

    def __getstate__(self):
        state = self.__dict__.copy()
        state["energy_calc"] = _portable(self.energy_calc)
        state["d_calc"] = _portable(self.d_calc)
        return state

    def atoms(self, positions) -> Atoms:
        a = self.template.copy()
        a.positions = np.asarray(positions, float).reshape(len(a), 3)
        return a

    def evaluate(self, positions) -> Evaluation:
        """Like calling, but calculator errors propagate."""
        a = self.atoms(positions)
        e = float(self.energy_calc.get_property("energy", a))
        e_std = _optional(self.energy_calc, "energy_std", a)
        d = float(self.d_calc.get_property("zfs_D", a))
        ze = _optional(self.d_calc, "zfs_E", a)
        d_std = _optional(self.d_calc, "zfs_D_std", a)
        if not (math.isfinite(e) and math.isfinite(d)):
            raise FloatingPointError(f"non-finite energy ({e}) or D ({d})")
        return Evaluation(e, d, ze, e_std, d_std)

    def __call__(self, positions) -> Evaluation:
        try:
            return self.evaluate(positions)
        except Exception as exc:  # any calculator failure: this particle gets chi = inf
            return Evaluation(error=f"{type(exc).__name__}: {exc}")

    def evaluate_many(self, positions: Sequence) -> list[Evaluation]:
        """Evaluations of many conformers (a whole swarm step): where a calculator is a
        molmag model calculator (``calc.model.predict``), one batched
        :meth:`~molmag.models.committee.Committee.predict` over all of them (descriptors and
        networks evaluated as one batch), else one call per conformer.  The same numbers as
        calling the evaluator per conformer; a structure that fails validation gets its
        error, and if the batch itself fails every conformer is retried on its own (so a bad
        particle costs only itself)."""
        positions = list(positions)
        models = [_batch_model(c) for c in (self.energy_calc, self.d_calc)]
        if len(positions) < 2 or all(m is None for m in models):
            return [self(p) for p in positions]
        from molmag.io.validation import validate_structure

        out: list[Evaluation | None] = [None] * len(positions)
        frames, ok = [], []
        for i, p in enumerate(positions):
            a = self.atoms(p)
            try:
                validate_structure(a)
            except Exception as exc:
                out[i] = Evaluation(error=f"{type(exc).__name__}: {exc}")
                continue
            frames.append(a)
            ok.append(i)
        if not frames:
            return _all_set(out)
        try:
            em, dm = models
            if em is not None:
                pe = em.predict(_with_metal(frames, self.energy_calc), forces=False)
                energy = np.asarray(pe["energy"], float)
                e_std = np.asarray(pe.get("energy_std", np.full(len(frames), np.nan)), float)
            else:
                energy = np.array([float(self.energy_calc.get_property("energy", a))
                                   for a in frames])
                e_std = np.array([_optional(self.energy_calc, "energy_std", a) for a in frames])
            if dm is not None:
                pd = dm.predict(_with_metal(frames, self.d_calc))
                d, ze, d_std = (np.asarray(pd[k], float) for k in ("zfs_D", "zfs_E",
                                                                     "zfs_D_std"))
            else:
                d = np.array([float(self.d_calc.get_property("zfs_D", a)) for a in frames])
                ze = np.array([_optional(self.d_calc, "zfs_E", a) for a in frames])
                d_std = np.array([_optional(self.d_calc, "zfs_D_std", a) for a in frames])
        except Exception:
            return [e if e is not None else self(positions[i]) for i, e in enumerate(out)]
        for k, i in enumerate(ok):
            if not (math.isfinite(energy[k]) and math.isfinite(d[k])):
                out[i] = Evaluation(error=f"FloatingPointError: non-finite energy "
                                          f"({energy[k]}) or D ({d[k]})")
            else:
                out[i] = Evaluation(float(energy[k]), float(d[k]), float(ze[k]),
                                    float(e_std[k]), float(d_std[k]))
        return _all_set(out)


def _all_set(out: list[Evaluation | None]) -> list[Evaluation]:
    """``out`` once every slot holds an :class:`Evaluation` (checked)."""
    done = [e for e in out if e is not None]
    assert len(done) == len(out), "an evaluation slot was left unset"
    return done


def _batch_model(calc):
    """The committee behind a molmag model calculator (``calc.model.predict``), else None."""
    model = getattr(calc, "model", None)
    return model if callable(getattr(model, "predict", None)) and hasattr(model, "target") \
        else None


def _with_metal(frames: list[Atoms], calc) -> list[Atoms]:
    """``frames`` with the calculator's ``metal_index`` (if it has one) in their info, as
    the calculator itself would set it."""
    m = getattr(calc, "metal_index", None)
    if m is None:
        return frames
    out = []
    for a in frames:
        b = a.copy()
        b.info["metal_index"] = int(m)
        out.append(b)
    return out


# ======================================================================================
# internal coordinates
# ======================================================================================
@dataclass(frozen=True)
class CoordinateChange:
    """An internal coordinate at the start and at the optimum: a bond (Angstrom) or a
    donor-metal-donor angle (degree)."""

    kind: str
    atoms: tuple[int, ...]
    label: str
    unit: str
    start: float
    end: float

    @property
    def change(self) -> float:
        return self.end - self.start

    @property
    def relative_change(self) -> float:
        """(end - start) / start (dimensionless)."""
        return self.change / self.start

    def as_dict(self) -> dict:
        return {"kind": self.kind, "atoms": list(self.atoms), "label": self.label,
                "unit": self.unit, "start": self.start, "end": self.end,
                "change": self.change, "relative_change": self.relative_change}

    def __str__(self) -> str:
        u = "A" if self.unit == "Angstrom" else "deg"
        return (f"{self.label} {100 * self.relative_change:+.1f}% "
                f"({self.start:.3f} -> {self.end:.3f} {u})")


def _metal(atoms: Atoms, metal_index: int | None) -> int | None:
    if metal_index is not None:
        return int(metal_index)
    m = atoms.info.get("metal_index")
    if m is not None and 0 <= int(m) < len(atoms):
        return int(m)
    try:
        return find_metal_index(atoms)
    except ValueError:
        return None


def internal_coordinates(atoms: Atoms, *, metal_index: int | None = None,
                         factor: float = 1.2, metal_only: bool = False,
                         include_hydrogen: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    """The bonds and the angles around the metal of a structure.

    Bonds: pairs closer than ``factor`` x (sum of covalent radii)
    (:func:`molmag.physics.elements.bonded_neighbours`) plus metal-donor pairs.  Angles:
    donor-metal-donor for every pair of donors; the donors are ``atoms.info['donor_indices']``
    (molmag's builders set it) or else the metal's bonded non-hydrogen neighbours.  The metal
    is ``metal_index``, else ``atoms.info['metal_index']``, else the only d/f-block atom
    (no angles without one).  ``metal_only`` keeps the metal's bonds and angles only."""
    metal = _metal(atoms, metal_index)
    donors: list[int] = []
    if metal is not None:
        donors = [int(i) for i in atoms.info.get("donor_indices", ())
                  if 0 <= int(i) < len(atoms) and int(i) != metal]
        if not donors:
            donors = [j for j in bonded_neighbours(atoms, metal, factor=factor)
                      if atoms.numbers[j] != 1]
    pairs: set[tuple[int, int]] = set()
    for i in range(len(atoms)):
        for j in bonded_neighbours(atoms, i, factor=factor):
            if j > i:
                pairs.add((i, j))
    if metal is not None:
        pairs |= {(min(metal, d), max(metal, d)) for d in donors}
    out: list[tuple[str, tuple[int, ...]]] = []
    for i, j in sorted(pairs):
        if metal_only and metal not in (i, j):
            continue
        if not include_hydrogen and 1 in (atoms.numbers[i], atoms.numbers[j]):
            continue
        out.append(("bond", (int(i), int(j))))
    donors = sorted(donors)
    if metal is not None:  # no donors (hence no angles) without a metal
        for a in range(len(donors)):
            for b in range(a + 1, len(donors)):
                out.append(("angle", (donors[a], int(metal), donors[b])))
    return out


def coordinate_values(atoms: Atoms, coords: Sequence[tuple[str, tuple[int, ...]]]) -> np.ndarray:
    """Values of internal coordinates: bonds in Angstrom, angles in degrees."""
    pos = atoms.positions
    out = np.empty(len(coords))
    for k, (kind, idx) in enumerate(coords):
        if kind == "bond":
            out[k] = np.linalg.norm(pos[idx[1]] - pos[idx[0]])
        else:
            u = pos[idx[0]] - pos[idx[1]]
            w = pos[idx[2]] - pos[idx[1]]
            c = np.dot(u, w) / (np.linalg.norm(u) * np.linalg.norm(w))
            out[k] = np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))
    return out


def rank_coordinate_changes(start: Atoms, end: Atoms, *, top: int | None = None,
                            metal_index: int | None = None, factor: float = 1.2,
                            metal_only: bool = False,
                            include_hydrogen: bool = True) -> list[CoordinateChange]:
    """Internal coordinates of ``start`` (:func:`internal_coordinates`, the topology of the
    start) ranked by their relative change |q_end - q_start| / q_start, largest first
    (bonds and angles have different units, so the ranking is by relative change, as the
    paper quotes "a 5 % change ... leads to a 50 % increase"); the first ``top``."""
    if len(start) != len(end) or np.any(start.numbers != end.numbers):
        raise ValueError("start and end must be the same molecule (same atoms, same order)")
    coords = internal_coordinates(start, metal_index=metal_index, factor=factor,
                                  metal_only=metal_only, include_hydrogen=include_hydrogen)
    q0, q1 = coordinate_values(start, coords), coordinate_values(end, coords)
    sym = start.get_chemical_symbols()
    changes = [CoordinateChange(kind, idx, "-".join(f"{sym[i]}{i}" for i in idx),
                                "Angstrom" if kind == "bond" else "degree", float(a), float(b))
               for (kind, idx), a, b in zip(coords, q0, q1)]
    changes.sort(key=lambda c: -abs(c.relative_change))
    return changes if top is None else changes[:top]


# ======================================================================================
# result
# ======================================================================================
def _nan_to_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _relative_error(value: float, reference: float | None) -> float | None:
    if reference is None or reference == 0 or not math.isfinite(value):
        return None
    return abs(value - reference) / abs(reference)


@dataclass
class PSOResult:
    """Outcome of :func:`pso_optimize`.

    ``chi`` (eV), ``energy`` (E(best) - E(r0), eV), ``energy_start`` (E(r0), absolute eV),
    ``zfs_D``/``zfs_D_start`` and ``zfs_E`` (cm-1), ``energy_std`` (eV) and ``zfs_D_std``
    (cm-1) of the global best (NaN without a committee), ``penalty`` (clash, eV);
    ``history`` maps :data:`HISTORY_COLUMNS` to arrays (one entry per step, 0 = initial
    swarm) and ``best_positions`` (n_steps + 1, N, 3) is the path of the global best.
    ``reference_D``/``reference_D_start`` (cm-1): D of a reference calculator at the optimum
    and at the start (:meth:`evaluate_reference`)."""

    gamma: float
    start_atoms: Atoms
    best_atoms: Atoms
    chi: float
    energy: float
    energy_start: float
    zfs_D: float
    zfs_D_start: float
    zfs_E: float
    energy_std: float
    zfs_D_std: float
    penalty: float
    history: dict[str, np.ndarray]
    best_positions: np.ndarray
    settings: dict
    n_evaluations: int
    n_failed: int
    errors: list[str]
    wall_time_s: float
    std_threshold_E: float | None = None
    std_threshold_D: float | None = None
    reference_D: float | None = None
    reference_D_start: float | None = None

    # --- flags ----------------------------------------------------------------------
    @property
    def flag_energy_std(self) -> np.ndarray:
        """Per step: the global best's energy_std exceeds ``std_threshold_E`` (eV)."""
        s = self.history["energy_std_eV"]
        if self.std_threshold_E is None:
            return np.zeros(len(s), bool)
        return np.nan_to_num(s, nan=-np.inf) > self.std_threshold_E

    @property
    def flag_zfs_D_std(self) -> np.ndarray:
        """Per step: the global best's zfs_D_std exceeds ``std_threshold_D`` (cm-1)."""
        s = self.history["zfs_D_std_cm-1"]
        if self.std_threshold_D is None:
            return np.zeros(len(s), bool)
        return np.nan_to_num(s, nan=-np.inf) > self.std_threshold_D

    @property
    def flags(self) -> np.ndarray:
        """Per step: the global best lies beyond either committee threshold."""
        return self.flag_energy_std | self.flag_zfs_D_std

    @property
    def flagged(self) -> bool:
        """The final optimum lies beyond a committee threshold (do not trust it unlabelled)."""
        return bool(self.flags[-1])

    # --- derived numbers -----------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return len(self.history["step"]) - 1

    @property
    def evaluations_per_second(self) -> float:
        return self.n_evaluations / self.wall_time_s if self.wall_time_s > 0 else math.nan

    @property
    def delta_D(self) -> float:
        """D(optimum) - D(start), cm-1 (negative: more axial)."""
        return self.zfs_D - self.zfs_D_start

    @property
    def energy_cost_per_cm1(self) -> float:
        """[E(opt) - E(r0)] / [D(r0) - D(opt)], eV per cm-1: the energy paid per cm-1 of
        axial D gained (positive when D became more negative at an energy cost; NaN when D
        did not change)."""
        return -self.energy / self.delta_D if self.delta_D != 0 else math.nan

    @property
    def reference_relative_error(self) -> float | None:
        """|D_model - D_ref| / |D_ref| at the optimum (the paper: ~7 % vs CASSCF)."""
        return _relative_error(self.zfs_D, self.reference_D)

    @property
    def reference_relative_error_start(self) -> float | None:
        return _relative_error(self.zfs_D_start, self.reference_D_start)

    def evaluate_reference(self, reference_d_calc) -> float:
        """D of ``reference_d_calc`` (its ``zfs_D``, cm-1) at the optimum and at the start;
        stored in ``reference_D``/``reference_D_start``.  Returns the optimum's."""
        self.reference_D = float(reference_d_calc.get_property("zfs_D", self.best_atoms.copy()))
        self.reference_D_start = float(reference_d_calc.get_property(
            "zfs_D", self.start_atoms.copy()))
        self.best_atoms.info["reference_zfs_D_cm-1"] = self.reference_D
        return self.reference_D

    def coordinate_changes(self, top: int | None = 10, **kwargs) -> list[CoordinateChange]:
        """:func:`rank_coordinate_changes` between the start and the optimum."""
        return rank_coordinate_changes(self.start_atoms, self.best_atoms, top=top, **kwargs)

    def summary(self) -> dict:
        """Scalars of the optimum, unit in every key (JSON-ready)."""
        out = {"gamma_eV_per_cm-1": self.gamma, "chi_eV": self.chi, "energy_eV": self.energy,
               "energy_start_eV": self.energy_start, "zfs_D_cm-1": self.zfs_D,
               "zfs_D_start_cm-1": self.zfs_D_start, "delta_zfs_D_cm-1": self.delta_D,
               "zfs_E_cm-1": self.zfs_E,
               "zfs_E_over_D": self.zfs_E / self.zfs_D if self.zfs_D else math.nan,
               "energy_cost_eV_per_cm-1": self.energy_cost_per_cm1,
               "energy_std_eV": self.energy_std, "zfs_D_std_cm-1": self.zfs_D_std,
               "penalty_eV": self.penalty, "flagged": self.flagged,
               "reference_zfs_D_cm-1": self.reference_D,
               "reference_relative_error": self.reference_relative_error,
               "reference_zfs_D_start_cm-1": self.reference_D_start,
               "reference_relative_error_start": self.reference_relative_error_start,
               "n_steps": self.n_steps, "n_evaluations": self.n_evaluations,
               "n_failed": self.n_failed, "wall_time_s": self.wall_time_s,
               "evaluations_per_s": self.evaluations_per_second}
        return {k: _nan_to_none(float(v)) if isinstance(v, (float, np.floating)) else v
                for k, v in out.items()}

    # --- files ------------------------------------------------------------------------
    def trajectory(self) -> list[Atoms]:
        """The global best of every step as Atoms (info: step and the history row)."""
        frames = []
        for k in range(len(self.best_positions)):
            a = self.start_atoms.copy()
            a.positions = self.best_positions[k]
            a.info["gamma_eV_per_cm-1"] = self.gamma
            for col in HISTORY_COLUMNS:
                v = self.history[col][k]
                a.info[col] = int(v) if col in ("step", "n_evaluations", "n_failed") else float(v)
            a.info["flag_energy_std"] = bool(self.flag_energy_std[k])
            a.info["flag_zfs_D_std"] = bool(self.flag_zfs_D_std[k])
            frames.append(a)
        return frames

    def write_trajectory(self, path: str | Path) -> Path:
        """The path of the global best (one frame per step) as extxyz."""
        path = Path(path)
        ase.io.write(path, self.trajectory(), format="extxyz")
        return path

    def write_history(self, path: str | Path) -> Path:
        """The history as CSV (``.csv``: one row per step, units in the header) or JSON
        (any other suffix: settings, summary and the history columns; NaN -> null)."""
        path = Path(path)
        flags = {"flag_energy_std": self.flag_energy_std, "flag_zfs_D_std": self.flag_zfs_D_std}
        if path.suffix.lower() == ".csv":
            with open(path, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(list(HISTORY_COLUMNS) + list(flags))
                for k in range(len(self.history["step"])):
                    row = [int(self.history[c][k]) if c in ("step", "n_evaluations", "n_failed")
                           else repr(float(self.history[c][k])) for c in HISTORY_COLUMNS]
                    w.writerow(row + [int(f[k]) for f in flags.values()])
        else:
            hist = {c: [_nan_to_none(float(x)) for x in self.history[c]] for c in HISTORY_COLUMNS}
            hist.update({k: [bool(x) for x in v] for k, v in flags.items()})
            doc = {"settings": self.settings, "summary": self.summary(), "history": hist,
                   "errors": self.errors}
            path.write_text(json.dumps(doc, indent=1))
        return path


# ======================================================================================
# swarm state and checkpoints
# ======================================================================================
@dataclass
class _Swarm:
    x: np.ndarray            # (P, N, 3) positions, Angstrom
    v: np.ndarray            # (P, N, 3) velocities, Angstrom per step
    pbest_x: np.ndarray      # (P, N, 3)
    pbest_vals: np.ndarray   # (P, len(_VALUES))
    step: int
    energy_start: float      # E(r0), eV
    start_vals: np.ndarray   # (len(_VALUES),) of r0
    history: dict[str, list] = field(default_factory=lambda: {c: [] for c in HISTORY_COLUMNS})
    best_positions: list = field(default_factory=list)
    n_evaluations: int = 0
    n_failed: int = 0
    errors: list = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def g(self) -> int:
        return int(np.argmin(self.pbest_vals[:, _CHI]))

    def record(self, vals: np.ndarray) -> None:
        """Append the history row of the current step (``vals``: this step's evaluations)."""
        best = self.pbest_vals[self.g]
        h = self.history
        h["step"].append(self.step)
        for col, i in _BEST_COLUMNS.items():
            h[col].append(float(best[i]))
        finite = np.isfinite(vals[:, _CHI])
        h["swarm_mean_chi_eV"].append(float(vals[finite, _CHI].mean()) if finite.any()
                                      else math.nan)
        for col, i in (("swarm_max_energy_std_eV", _ESTD), ("swarm_max_zfs_D_std_cm-1", _DSTD)):
            s = vals[:, i][np.isfinite(vals[:, i])]
            h[col].append(float(s.max()) if s.size else math.nan)
        h["n_evaluations"].append(self.n_evaluations)
        h["n_failed"].append(self.n_failed)
        self.best_positions.append(self.pbest_x[self.g].copy())


def _rng_state_json(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _rng_from_json(text: str) -> np.random.Generator:
    state = json.loads(text)
    bg = getattr(np.random, state["bit_generator"])()
    bg.state = state
    return np.random.Generator(bg)


def _save_checkpoint(path: Path, swarm: _Swarm, rng: np.random.Generator, settings: dict,
                     numbers: np.ndarray, r0: np.ndarray) -> None:
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": swarm.step,
            "settings": settings, "rng_state": _rng_state_json(rng),
            "energy_start_eV": swarm.energy_start, "n_evaluations": swarm.n_evaluations,
            "n_failed": swarm.n_failed, "errors": swarm.errors[-_MAX_ERRORS_KEPT:],
            "elapsed_s": swarm.elapsed_s, "values": list(_VALUES)}
    arrays: dict[str, Any] = {
        "meta": np.array(json.dumps(meta)), "numbers": numbers, "start_positions": r0,
        "x": swarm.x, "v": swarm.v, "pbest_x": swarm.pbest_x,
        "pbest_vals": swarm.pbest_vals, "start_vals": swarm.start_vals,
        "best_positions": np.array(swarm.best_positions)}
    for c in HISTORY_COLUMNS:
        arrays["history__" + c] = np.array(swarm.history[c], dtype=float)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, settings: dict, numbers: np.ndarray,
                     r0: np.ndarray) -> tuple[_Swarm, np.random.Generator]:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data["meta"]))
    except Exception as exc:
        raise ValueError(f"{path} is not a readable PSO checkpoint: {exc}") from exc
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a molmag PSO checkpoint")
    if not np.array_equal(data["numbers"], numbers) or not np.allclose(
            data["start_positions"], r0, rtol=0, atol=1e-10):
        raise ValueError(f"checkpoint {path} belongs to another start structure")
    old = meta["settings"]
    diff = [f"{k}: checkpoint {old.get(k)!r}, now {settings[k]!r}"
            for k in settings if old.get(k) != settings[k]]
    if diff:
        raise ValueError(f"checkpoint {path} was written with other settings ("
                         + "; ".join(diff) + "); use the same settings or another file")
    hist = {c: [int(x) if c in ("step", "n_evaluations", "n_failed") else float(x)
                for x in data["history__" + c]] for c in HISTORY_COLUMNS}
    swarm = _Swarm(x=data["x"], v=data["v"], pbest_x=data["pbest_x"],
                   pbest_vals=data["pbest_vals"], step=int(meta["step"]),
                   energy_start=float(meta["energy_start_eV"]), start_vals=data["start_vals"],
                   history=hist, best_positions=list(data["best_positions"]),
                   n_evaluations=int(meta["n_evaluations"]), n_failed=int(meta["n_failed"]),
                   errors=list(meta["errors"]), elapsed_s=float(meta["elapsed_s"]))
    return swarm, _rng_from_json(meta["rng_state"])


def _checkpoint_seed(path: Path) -> int | None:
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))["settings"].get("seed")


# ======================================================================================
# the optimiser
# ======================================================================================
def _values(ev: Evaluation, energy_start: float, gamma: float, penalty: float) -> np.ndarray:
    out = np.full(len(_VALUES), math.nan)
    out[_PEN] = penalty
    if ev.error is not None:
        out[_CHI] = math.inf
        return out
    e = ev.energy - energy_start
    out[[_CHI, _EN, _D, _ZE, _ESTD, _DSTD]] = [e + gamma * ev.zfs_D + penalty, e, ev.zfs_D,
                                              ev.zfs_E, ev.energy_std, ev.zfs_D_std]
    return out


def pso_optimize(atoms: Atoms, energy_calc, d_calc, gamma: float, *,
                 n_particles: int = DEFAULT_N_PARTICLES, n_steps: int = DEFAULT_N_STEPS,
                 omega: float = DEFAULT_OMEGA, acceleration: float = DEFAULT_ACCELERATION,
                 max_displacement: float = DEFAULT_MAX_DISPLACEMENT,
                 init_displacement: float = DEFAULT_INIT_DISPLACEMENT,
                 v_max: float | None = None, fixed: Sequence[int] = (),
                 clash_factor: float = DEFAULT_CLASH_FACTOR,
                 clash_strength: float = DEFAULT_CLASH_STRENGTH, include_start: bool = True,
                 seed: int | np.random.Generator | None = None,
                 map: Callable[[Callable, Iterable], Iterable] | None = None,  # noqa: A002
                 checkpoint: str | Path | None = None, checkpoint_every: int = 1,
                 std_threshold_E: float | None = None, std_threshold_D: float | None = None,
                 reference_d_calc=None, progress: ProgressFn | None = None) -> PSOResult:
    r"""Minimise chi(r) = [E(r) - E(r0)] + gamma D(r) + P_clash(r) (eV) by particle swarm
    over all Cartesian coordinates of ``atoms`` (the start r0); see the module docstring
    for the equations, units and the choices the paper leaves open.

    Parameters
    ----------
    atoms : the start structure r0 (``info`` with charge/multiplicity as the calculators
        need; molmag's builders set them).
    energy_calc : ASE calculator with ``energy`` (eV) (optionally ``energy_std``, eV).
    d_calc : ASE calculator with ``zfs_D`` (cm-1) (optionally ``zfs_E``, ``zfs_D_std``).
    gamma : weight of D in chi, eV per cm-1 (> 0 rewards axial, negative D).
    n_particles, n_steps : swarm size and number of update steps (20, 50: >= 1000
        evaluations as in the paper's main text).
    omega, acceleration : inertia omega = 0.7 and Gamma = 1.7 (paper SI).
    max_displacement : bound on each coordinate's displacement from r0, Angstrom (0.2).
    init_displacement : half-width of the uniform initial displacements and velocities,
        Angstrom (0.01).
    v_max : optional clip of each velocity component, Angstrom per step.
    fixed : indices of atoms that stay at their start positions.
    clash_factor, clash_strength : the clash penalty's f (0.7) and k (100 eV).
    include_start : particle 0 starts at r0 (so the result is never worse than r0).
    seed : int or numpy Generator (None: fresh entropy, not reproducible).
    map : ``map(func, items)`` used for the particles of each step (e.g. a Dask map); by
        default the whole swarm of a step is evaluated as one batch
        (:meth:`ChiEvaluator.evaluate_many`: one ``Committee.predict`` per model calculator).
    checkpoint, checkpoint_every : .npz file written every k steps and at the end; if it
        exists the run continues from it (settings must match; ``n_steps`` may grow; a
        checkpoint already past ``n_steps`` is returned as it is).
    std_threshold_E, std_threshold_D : committee thresholds (eV, cm-1) for the flags.
    reference_d_calc : calculator whose ``zfs_D`` re-evaluates D at the optimum and start.
    progress : ``progress(step, n_steps, label)`` after every step (molmag.progress); the
        CLI draws it as a bar.
    """
    if n_particles < 1 or n_steps < 0:
        raise ValueError(f"need n_particles >= 1 and n_steps >= 0, got {n_particles}, {n_steps}")
    if max_displacement < 0 or init_displacement < 0 or checkpoint_every < 1:
        raise ValueError("max_displacement and init_displacement must be >= 0 and "
                         "checkpoint_every >= 1")
    mapper = builtins.map if map is None else map
    r0 = np.array(atoms.positions, float)
    numbers = np.array(atoms.numbers)
    n_atoms = len(atoms)
    fixed = sorted({int(i) for i in fixed})
    if any(not 0 <= i < n_atoms for i in fixed):
        raise ValueError(f"fixed atom indices must lie in 0..{n_atoms - 1}")
    settings = {"gamma_eV_per_cm-1": float(gamma), "omega": float(omega),
                "acceleration": float(acceleration), "n_particles": int(n_particles),
                "max_displacement_A": float(max_displacement),
                "init_displacement_A": float(init_displacement),
                "v_max_A": None if v_max is None else float(v_max), "fixed": fixed,
                "clash_factor": float(clash_factor), "clash_strength_eV": float(clash_strength),
                "include_start": bool(include_start),
                "seed": int(seed) if isinstance(seed, (int, np.integer)) else None}
    dmax = np.full((n_atoms, 3), float(max_displacement))
    dmax[fixed] = 0.0
    lower, upper = r0 - dmax, r0 + dmax
    evaluator = ChiEvaluator(atoms, energy_calc, d_calc)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    t_start = time.perf_counter()

    def penalties(x):
        return np.atleast_1d(clash_penalty(x, numbers, clash_factor, clash_strength))

    def evaluate(x: np.ndarray, swarm: _Swarm, known: dict[int, Evaluation] | None = None):
        known = known or {}
        todo = [i for i in range(len(x)) if i not in known]
        evs = dict(known)
        if map is None:   # the whole swarm as one batch (model calculators)
            evs.update(zip(todo, evaluator.evaluate_many([x[i].copy() for i in todo])))
        else:
            evs.update(zip(todo, list(mapper(evaluator, [x[i].copy() for i in todo]))))
        pen = penalties(x)
        vals = np.stack([_values(evs[i], swarm.energy_start, gamma, pen[i])
                         for i in range(len(x))])
        swarm.n_evaluations += len(todo)
        for i in todo:
            if evs[i].error is not None:
                swarm.n_failed += 1
                swarm.errors = (swarm.errors + [f"step {swarm.step}, particle {i}: "
                                                f"{evs[i].error}"])[-_MAX_ERRORS_KEPT:]
        return vals

    if ckpt is not None and ckpt.exists():
        swarm, rng = _load_checkpoint(ckpt, settings, numbers, r0)
        log.info("PSO: continuing %s from step %d", ckpt, swarm.step)
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        try:
            ev0 = evaluator.evaluate(r0)
        except Exception as exc:
            raise RuntimeError(f"the start structure cannot be evaluated: {exc}") from exc
        a = float(init_displacement)
        x = r0 + rng.uniform(-a, a, size=(n_particles, n_atoms, 3))
        v = rng.uniform(-a, a, size=(n_particles, n_atoms, 3))
        v[:, fixed] = 0.0
        if include_start:
            x[0] = r0
        x, _ = apply_bounds(x, v, lower, upper)
        swarm = _Swarm(x=x, v=v, pbest_x=x.copy(), pbest_vals=np.zeros((n_particles, 0)),
                       step=0, energy_start=ev0.energy, start_vals=np.zeros(0))
        swarm.start_vals = _values(ev0, ev0.energy, gamma, float(penalties(r0)[0]))
        swarm.n_evaluations = 1
        vals = evaluate(x, swarm, {0: ev0} if include_start else None)
        swarm.pbest_vals = vals.copy()
        swarm.record(vals)
        swarm.elapsed_s += time.perf_counter() - t_start
        if ckpt is not None:
            _save_checkpoint(ckpt, swarm, rng, settings, numbers, r0)

    label = f"PSO gamma={gamma:g}"
    if progress is not None:
        progress(swarm.step, n_steps, label)
    while swarm.step < n_steps:
        t0 = time.perf_counter()
        swarm.step += 1
        c1 = rng.random(n_particles)
        c2 = rng.random(n_particles)
        g_best = swarm.pbest_x[swarm.g]
        v = velocity_update(swarm.v, swarm.x, swarm.pbest_x, g_best, c1, c2, omega,
                            acceleration)
        if v_max is not None:
            v = np.clip(v, -v_max, v_max)
        x, v = apply_bounds(swarm.x + v, v, lower, upper)
        vals = evaluate(x, swarm)
        better = vals[:, _CHI] < swarm.pbest_vals[:, _CHI]
        swarm.pbest_x = np.where(better[:, None, None], x, swarm.pbest_x)
        swarm.pbest_vals = np.where(better[:, None], vals, swarm.pbest_vals)
        swarm.x, swarm.v = x, v
        swarm.record(vals)
        swarm.elapsed_s += time.perf_counter() - t0
        if np.all(~np.isfinite(vals[:, _CHI])):
            log.warning("PSO step %d: every particle failed (%s)", swarm.step,
                        swarm.errors[-1] if swarm.errors else "")
        if ckpt is not None and (swarm.step % checkpoint_every == 0 or swarm.step == n_steps):
            _save_checkpoint(ckpt, swarm, rng, settings, numbers, r0)
        if progress is not None:
            progress(swarm.step, n_steps, label)

    start_atoms = atoms.copy()
    start_atoms.calc = None
    best = swarm.pbest_vals[swarm.g]
    best_atoms = start_atoms.copy()
    best_atoms.positions = swarm.pbest_x[swarm.g].copy()
    best_atoms.info.update({"pso_gamma_eV_per_cm-1": float(gamma), "pso_chi_eV": float(best[_CHI]),
                            "pso_energy_eV": float(best[_EN]), "pso_zfs_D_cm-1": float(best[_D]),
                            "pso_step": int(swarm.step)})
    result = PSOResult(
        gamma=float(gamma), start_atoms=start_atoms, best_atoms=best_atoms,
        chi=float(best[_CHI]), energy=float(best[_EN]), energy_start=swarm.energy_start,
        zfs_D=float(best[_D]), zfs_D_start=float(swarm.start_vals[_D]), zfs_E=float(best[_ZE]),
        energy_std=float(best[_ESTD]), zfs_D_std=float(best[_DSTD]), penalty=float(best[_PEN]),
        history={c: np.array(swarm.history[c],
                             dtype=int if c in ("step", "n_evaluations", "n_failed") else float)
                 for c in HISTORY_COLUMNS},
        best_positions=np.array(swarm.best_positions), settings=settings,
        n_evaluations=swarm.n_evaluations, n_failed=swarm.n_failed, errors=list(swarm.errors),
        wall_time_s=swarm.elapsed_s, std_threshold_E=std_threshold_E,
        std_threshold_D=std_threshold_D)
    if reference_d_calc is not None:
        result.evaluate_reference(reference_d_calc)
    return result


# ======================================================================================
# several gammas
# ======================================================================================
@dataclass
class GammaScanResult:
    """One :class:`PSOResult` per gamma (same order as the gammas)."""

    results: list[PSOResult]

    @property
    def gammas(self) -> list[float]:
        return [r.gamma for r in self.results]

    def table(self, top: int = 3, **rank_kwargs) -> list[dict]:
        """One row per gamma: :meth:`PSOResult.summary` (D and D(r0) in cm-1; the energy
        E(opt) - E(r0) in eV; the rhombic zfs_E (cm-1) and zfs_E/D; the energy paid per
        cm-1 of D gained, eV/cm-1; committee spreads; the reference D and its relative
        error) plus the ``top`` most changed internal coordinates
        (:func:`rank_coordinate_changes`, keyword arguments passed on) and, as
        ``top_metal_changes``, the ``top`` most changed bonds and angles at the metal."""
        rows = []
        for r in self.results:
            row = r.summary()
            row["top_changes"] = [str(c) for c in r.coordinate_changes(top=top, **rank_kwargs)]
            metal = {**rank_kwargs, "metal_only": True}
            try:
                row["top_metal_changes"] = [str(c) for c in r.coordinate_changes(top=top,
                                                                                 **metal)]
            except ValueError:  # no metal
                row["top_metal_changes"] = []
            rows.append(row)
        return rows

    def write_table(self, path: str | Path, top: int = 3, **rank_kwargs) -> Path:
        """:meth:`table` as CSV (``.csv``; top changes joined by "; ") or JSON."""
        path = Path(path)
        rows = self.table(top=top, **rank_kwargs)
        if path.suffix.lower() == ".csv":
            with open(path, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
                w.writeheader()
                for row in rows:
                    w.writerow({**row, "top_changes": "; ".join(row["top_changes"]),
                                "top_metal_changes": "; ".join(row["top_metal_changes"])})
        else:
            path.write_text(json.dumps(rows, indent=1))
        return path


def pso_gamma_scan(atoms: Atoms, energy_calc, d_calc, gammas: Sequence[float], *,
                   seed: int | np.random.Generator | None = None,
                   checkpoint_dir: str | Path | None = None, reference_d_calc=None,
                   **pso_kwargs: Any) -> GammaScanResult:
    """:func:`pso_optimize` for every gamma (eV per cm-1) with the same seed (common random
    numbers: the gammas differ only by gamma; ``seed=None`` draws one and records it in
    every result's ``settings``).  ``checkpoint_dir`` holds one checkpoint per gamma
    (``pso_gamma_<k>.npz``, k its position), so a killed scan resumes (a scan started
    without a seed takes its seed from the first checkpoint); other keyword arguments go to
    :func:`pso_optimize`."""
    first = None if checkpoint_dir is None else Path(checkpoint_dir) / "pso_gamma_0.npz"
    if seed is None and first is not None and first.exists():
        seed = _checkpoint_seed(first)  # resume a scan started without a seed
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**63 - 1))
    elif seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    results = []
    for k, gamma in enumerate(gammas):
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / f"pso_gamma_{k}.npz"
        results.append(pso_optimize(atoms, energy_calc, d_calc, float(gamma), seed=seed,
                                    checkpoint=ckpt, reference_d_calc=reference_d_calc,
                                    **pso_kwargs))
    return GammaScanResult(results)


__all__ = ["CM1_IN_EV", "ChiEvaluator", "CoordinateChange", "Evaluation", "GammaScanResult",
           "HISTORY_COLUMNS", "PSOResult", "apply_bounds", "clash_penalty",
           "coordinate_values", "gamma_to_eV_per_cm1", "internal_coordinates", "pso_gamma_scan",
           "pso_optimize", "rank_coordinate_changes", "velocity_update"]
