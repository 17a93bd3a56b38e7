"""Configuration sampling: random displacements, Langevin MD snapshots, normal-mode Boltzmann
samples.

Three ways to turn one (relaxed) structure into many distorted ones for labelling:

* :func:`random_displacements` / :func:`displacement_sets` -- every Cartesian coordinate of
  every atom displaced independently and uniformly within +/- delta (Lunghi & Sanvito 2020,
  see the function's docstring);
* :func:`md_snapshots` -- snapshots of Langevin molecular dynamics (any ASE calculator;
  GFN2-xTB, :class:`molmag.chem.xtb.XTBCalculator`, in practice) at one or more temperatures;
* :func:`normal_modes` + :func:`boltzmann_normal_mode_samples` -- harmonic normal modes from
  finite differences, then Gaussian displacements along them with the (quantum or classical)
  thermal width of each mode;
* :func:`zero_point_mode_displacements` -- displacements by +/- the zero-point amplitude
  along a few randomly chosen modes at a time: training sets for the local derivatives of a
  property (spin-phonon couplings).

Every sampler returns a list of ``ase.Atoms``: copies of the input (``info`` and constraints
kept, no calculator attached) with extra ``info`` keys that say how each sample was made
(``sampler``, ``sample_index``, ``seed`` and the sampler's parameters, each with its unit in
its name: ``delta_A``, ``temperature_K`` ...).  All scalars, so they go straight into an ASE
database row or an extxyz comment line.

Randomness: everything is deterministic given ``seed`` (a non-negative int), through
``numpy.random.default_rng`` seeded with a :class:`numpy.random.SeedSequence` made of the seed,
a per-sampler tag and the sampler's parameter (delta in micro-Angstrom, temperature in mK).
So the samples drawn for one delta (or temperature) do not depend on which other deltas
(temperatures) are requested alongside it, nor on their order.

Units are ASE's: Angstrom, eV, amu, ASE time (Angstrom * sqrt(amu/eV) = 10.18 fs); frequencies
in cm-1 at the edges.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from ase import Atoms, units
from ase.constraints import FixAtoms, FixCom

log = logging.getLogger(__name__)

#: hbar in ASE units (eV * ASE time), so that hbar * omega is in eV for omega in 1/(ASE time).
HBAR = units._hbar * units.J * units.s
#: Boltzmann constant, eV/K.
KB = units.kB
#: Modes softer than this (cm-1) are not displaced by :func:`boltzmann_normal_mode_samples`.
DEFAULT_MIN_FREQUENCY_CM1 = 50.0

# tags that keep the random streams of the samplers apart
_TAG_DISPLACEMENT, _TAG_MD, _TAG_MODES, _TAG_ZERO_POINT = 1, 2, 3, 4


class SamplingError(RuntimeError):
    """A sampling run that failed (calculator error, MD blow-up, ...)."""


class ImaginaryModeError(SamplingError):
    """A normal-mode analysis found imaginary modes (the structure is not a minimum)."""


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _check_seed(seed: int) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _rng(seed: int, tag: int, key: float, scale: float) -> np.random.Generator:
    """Generator for one (sampler, parameter) pair: independent of the other parameters."""
    return np.random.default_rng(np.random.SeedSequence(
        [_check_seed(seed), tag, int(round(float(key) * scale))]))


def _copy(atoms: Atoms) -> Atoms:
    """Copy without calculator, ``info`` deep-copied (Atoms.copy does that)."""
    out = atoms.copy()
    out.calc = None
    return out


def _label(atoms: Atoms, name: str | None) -> str:
    return name or atoms.info.get("name") or atoms.get_chemical_formula()


def _fixed_indices(atoms: Atoms) -> list[int]:
    fixed: set[int] = set()
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            fixed.update(int(i) for i in c.get_indices())
    return sorted(fixed)


# --------------------------------------------------------------------------------------------
# 1. random Cartesian displacements
# --------------------------------------------------------------------------------------------
def random_displacements(atoms: Atoms, n: int, delta: float, seed: int = 0,
                         fixed: Iterable[int] | None = None) -> list[Atoms]:
    """``n`` copies of ``atoms`` with every Cartesian coordinate displaced by an independent
    random number drawn uniformly from [-delta, +delta] (Angstrom).

    This is the training-set protocol of A. Lunghi and S. Sanvito, "Surfing multiple
    conformation-property landscapes via machine learning: designing single-ion magnetic
    anisotropy", J. Phys. Chem. C 124, 5802 (2020) (arXiv:1911.01227): "all the Cartesian
    coordinates of all the atoms are displaced by a random value within the limits +/-0.1 A
    and +/-0.2 A" of the optimised geometry (700 + 700 configurations for [FeCl5]2- and
    [FeCl6]3-), and 500 configurations each at +/-0.05, +/-0.1 and +/-0.2 A for
    [Co(pdms)2]2- (see :func:`displacement_sets`).  The paper does not name the distribution
    within the limits; we take it uniform.  No translation or rotation is removed, as there.

    ``fixed``: indices of atoms left where they are (in addition, nothing else is implied by
    the constraints of ``atoms``; pass ``fixed`` explicitly).  The random stream depends on
    ``(seed, delta)`` only, so ``random_displacements(a, n, d, seed)`` gives the same samples
    as the ``d`` block of ``displacement_sets(a, deltas=(..., d, ...), n_per_delta=n,
    seed=seed)``, and the first ``m`` samples of a run with ``n > m`` are those of a run with
    ``n = m``.

    ``info`` of each copy gains ``sampler="random_displacement"``, ``delta_A``,
    ``sample_index`` (0..n-1 within this delta) and ``seed``.
    """
    n = int(n)
    delta = float(delta)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not np.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite, non-negative length in Angstrom, got {delta}")
    mask = np.ones(len(atoms), dtype=bool)
    if fixed is not None:
        idx = np.asarray(list(fixed), dtype=int)
        if idx.size and (idx.min() < -len(atoms) or idx.max() >= len(atoms)):
            raise IndexError(f"fixed indices {idx.tolist()} out of range for {len(atoms)} atoms")
        mask[idx] = False
    rng = _rng(seed, _TAG_DISPLACEMENT, delta, 1e6)   # delta in micro-Angstrom
    out = []
    for k in range(n):
        # one draw of the full (N, 3) block per sample, fixed atoms included, so the stream
        # (and hence sample k) does not depend on `fixed` or on n
        d = rng.uniform(-delta, delta, size=(len(atoms), 3))
        d[~mask] = 0.0
        a = _copy(atoms)
        a.positions = atoms.positions + d
        a.info.update({"sampler": "random_displacement", "delta_A": delta,
                       "sample_index": k, "seed": int(seed)})
        out.append(a)
    return out


def displacement_sets(atoms: Atoms, deltas: Sequence[float] = (0.05, 0.1, 0.2),
                      n_per_delta: int = 500, seed: int = 0,
                      fixed: Iterable[int] | None = None) -> list[Atoms]:
    """Random-displacement sets at several maximum displacements, concatenated in the order of
    ``deltas``: by default 500 configurations each at +/-0.05, +/-0.1 and +/-0.2 Angstrom, the
    [Co(pdms)2]2- training set of Lunghi & Sanvito, J. Phys. Chem. C 124, 5802 (2020).

    Each delta has its own random stream (sub-seed from ``(seed, delta)``), so adding, removing
    or reordering deltas leaves the samples of the others unchanged.  See
    :func:`random_displacements` for the protocol and the ``info`` keys."""
    deltas = [float(d) for d in deltas]
    if len(set(deltas)) != len(deltas):
        raise ValueError(f"deltas must be distinct, got {deltas}")
    fixed = None if fixed is None else list(fixed)
    out: list[Atoms] = []
    for d in deltas:
        out.extend(random_displacements(atoms, n_per_delta, d, seed=seed, fixed=fixed))
    return out


# --------------------------------------------------------------------------------------------
# 2. Langevin MD snapshots
# --------------------------------------------------------------------------------------------
def maxwell_boltzmann(atoms, temperature_K: float, *, rng=None, exact: bool = False) -> None:
    """Momenta of ``atoms`` drawn from the Maxwell-Boltzmann distribution at
    ``temperature_K`` (K), p_i ~ N(0, m_i k_B T) per component; ``exact`` rescales them so
    that the kinetic energy is exactly 3/2 N k_B T.  ASE's ``thermalize_momenta`` (ASE >=
    3.29), or the same draw under its older name ``MaxwellBoltzmannDistribution``."""
    from ase.md import velocitydistribution as vd

    new = getattr(vd, "thermalize_momenta", None)
    if new is not None:
        new(atoms, temperature_K, exact_temperature=exact, rng=rng)
    else:  # ASE < 3.29
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng,
                                        force_temp=exact)


def md_snapshots(atoms: Atoms, calculator, temperatures_K: float | Sequence[float],
                 n_snapshots: int, *, interval: int = 10, timestep_fs: float = 0.5,
                 friction: float = 0.01, equilibration_steps: int = 1000, seed: int = 0,
                 callback: Callable[[Atoms], None] | None = None,
                 name: str | None = None) -> list[Atoms]:
    """Snapshots of Langevin MD (ASE :class:`~ase.md.langevin.Langevin`) at each temperature.

    For each temperature T (K) an independent run starts from ``atoms``: velocities from a
    Maxwell-Boltzmann distribution at T (``rng`` seeded from ``(seed, T)``), total momentum and
    angular momentum removed (``Stationary`` + ``ZeroRotation``), ``equilibration_steps`` steps
    discarded, then ``n_snapshots`` snapshots taken every ``interval`` steps.  Each
    temperature has its own random stream (Maxwell-Boltzmann draw and Langevin noise), so its
    trajectory does not depend on the other temperatures.  With the same calculator (and a
    deterministic one) the snapshots are reproducible given ``seed``.

    Parameters
    ----------
    calculator : any ASE calculator (in practice :class:`molmag.chem.xtb.XTBCalculator`, whose
        charge and multiplicity come from ``atoms.info``); shared by all runs.
    timestep_fs : time step in fs (0.5 fs suits molecules with H atoms).
    friction : Langevin friction coefficient gamma in 1/fs (passed to ASE as
        ``friction / ase.units.fs``).  0.01 1/fs = 10 1/ps, i.e. a velocity relaxation time
        1/gamma = 100 fs; ``equilibration_steps`` (default 1000 = 500 fs at 0.5 fs) is a few
        1/gamma, enough for the kinetic energy that flows into the potential energy at the start
        (the run begins at the input geometry, usually a minimum) to be replaced by the bath.
    interval : MD steps between snapshots.
    callback : called with each snapshot as soon as it is taken (e.g. to write it to a
        database, so a killed run keeps what it had).

    Centre of mass: the molecule is kept in place with an :class:`ase.constraints.FixCom`
    constraint during the run (ASE's recommended replacement of Langevin's deprecated
    ``fixcm=True``), unless ``atoms`` carries :class:`~ase.constraints.FixAtoms`, which
    anchors it already.  The molecule can still rotate (the thermostat acts on rotations too);
    that does not matter for the internal geometry the snapshots are taken for.

    ``info`` of each snapshot gains ``sampler="md"``, ``temperature_K`` (target),
    ``kinetic_temperature_K`` (instantaneous, 2 E_kin / (N_dof k_B) with N_dof = 3N minus the
    degrees of freedom removed by the constraints, FixCom included), ``mean_kinetic_temperature_K``
    (mean of ``kinetic_temperature_K`` over the snapshots of this temperature),
    ``md_potential_energy_eV``, ``md_step``, ``timestep_fs``, ``friction_per_fs``,
    ``sample_index`` (0..n_snapshots-1 within this temperature) and ``seed``.  Snapshots keep the
    input's constraints (not FixCom) and carry no calculator or momenta.

    Raises :class:`SamplingError`, naming the structure, the temperature and the MD step, if
    the calculator fails mid-run or the coordinates become non-finite.
    """
    from ase.md import velocitydistribution as vd
    from ase.md.langevin import Langevin

    temps = [float(t) for t in np.atleast_1d(np.asarray(temperatures_K, dtype=float))]
    if any(not np.isfinite(t) or t < 0 for t in temps):
        raise ValueError(f"temperatures must be finite and >= 0 K, got {temps}")
    if len(set(temps)) != len(temps):
        raise ValueError(f"temperatures must be distinct, got {temps}")
    n_snapshots, interval = int(n_snapshots), int(interval)
    equilibration_steps = int(equilibration_steps)
    if n_snapshots < 0 or interval < 1 or equilibration_steps < 0:
        raise ValueError("need n_snapshots >= 0, interval >= 1 and equilibration_steps >= 0")
    if timestep_fs <= 0 or friction < 0:
        raise ValueError("need timestep_fs > 0 and friction >= 0 (1/fs)")
    _check_seed(seed)
    label = _label(atoms, name)
    total_steps = equilibration_steps + n_snapshots * interval
    has_fixed = bool(_fixed_indices(atoms))

    out: list[Atoms] = []
    for T in temps:
        rng = _rng(seed, _TAG_MD, T, 1e3)     # temperature in mK
        work = _copy(atoms)
        constraints = list(work.constraints)
        if not has_fixed:
            constraints.append(FixCom())
        work.set_constraint(constraints)
        work.calc = calculator
        if T > 0:
            maxwell_boltzmann(work, T, rng=rng)
            vd.Stationary(work)
            if len(work) > 1:
                vd.ZeroRotation(work)
        else:
            work.set_momenta(np.zeros((len(work), 3)))
        dyn = Langevin(work, timestep=timestep_fs * units.fs, temperature_K=T,
                       friction=friction / units.fs, fixcm=False, rng=rng, logfile=None)

        def advance(steps: int, phase: str) -> None:
            try:
                dyn.run(steps=steps)
            except Exception as exc:
                raise SamplingError(
                    f"MD of {label} at {T:g} K failed at step {dyn.nsteps + 1} of "
                    f"{total_steps} ({phase}): {type(exc).__name__}: {exc}") from exc
            if not (np.all(np.isfinite(work.positions))
                    and np.all(np.isfinite(work.get_momenta()))):
                raise SamplingError(f"MD of {label} at {T:g} K blew up (non-finite coordinates) "
                                    f"by step {dyn.nsteps} of {total_steps} ({phase})")

        if equilibration_steps:
            advance(equilibration_steps, "equilibration")
        block: list[Atoms] = []
        for k in range(n_snapshots):
            advance(interval, "production")
            snap = _copy(atoms)
            snap.positions = work.positions.copy()
            snap.info.update({"sampler": "md", "temperature_K": T,
                              "kinetic_temperature_K": float(work.get_temperature()),
                              "md_potential_energy_eV": float(work.get_potential_energy()),
                              "md_step": int(dyn.nsteps), "timestep_fs": float(timestep_fs),
                              "friction_per_fs": float(friction), "sample_index": k,
                              "seed": int(seed)})
            block.append(snap)
            if callback is not None:
                callback(snap)
        if block:
            mean_t = float(np.mean([s.info["kinetic_temperature_K"] for s in block]))
            for s in block:
                s.info["mean_kinetic_temperature_K"] = mean_t
            log.info("MD of %s at %g K: %d snapshots, mean kinetic temperature %.1f K",
                     label, T, len(block), mean_t)
        out.extend(block)
    return out


# --------------------------------------------------------------------------------------------
# 3. normal modes and Boltzmann sampling along them
# --------------------------------------------------------------------------------------------
@dataclass
class NormalModes:
    """Harmonic vibrational analysis of one structure (see :func:`normal_modes`).

    Attributes
    ----------
    atoms : the reference structure (copy, no calculator).
    masses : (N,) atomic masses used for mass weighting, amu.
    hessian : (3N, 3N) Cartesian Hessian (symmetrised finite differences), eV/Angstrom^2.
    force_constants : (M,) eigenvalues lambda_k of the mass-weighted Hessian projected onto the
        internal (vibrational) space, eV/(Angstrom^2 amu) = 1/(ASE time)^2; M = 3N-6 (3N-5 if
        linear).  Negative for imaginary modes.
    vectors : (M, N, 3) orthonormal eigenvectors e_k of that Hessian in mass-weighted
        coordinates (dimensionless, sum over atoms and xyz of e_k^2 = 1), orthogonal to the
        translations and (infinitesimal) rotations about the centre of mass.
    frequencies_cm1 : (M,) wavenumbers sign(lambda_k) hbar sqrt(|lambda_k|) / (h c) in cm-1,
        ascending; imaginary modes are negative.
    linear : whether the molecule is linear (5 external degrees of freedom instead of 6).
    delta_A : finite-difference step, Angstrom.

    A mass-weighted amplitude Q_k (Angstrom sqrt(amu)) of mode k moves atom i by
    e_k,i Q_k / sqrt(m_i) (Angstrom); see :attr:`cartesian_vectors`.
    """

    atoms: Atoms
    masses: np.ndarray
    hessian: np.ndarray
    force_constants: np.ndarray
    vectors: np.ndarray
    frequencies_cm1: np.ndarray
    linear: bool
    delta_A: float

    @property
    def n_modes(self) -> int:
        return len(self.frequencies_cm1)

    @property
    def angular_frequencies(self) -> np.ndarray:
        """omega_k = sign(lambda_k) sqrt(|lambda_k|), in 1/(ASE time) (divide by ase.units.fs
        for rad/fs)."""
        lam = self.force_constants
        return np.sign(lam) * np.sqrt(np.abs(lam))

    @property
    def imaginary(self) -> np.ndarray:
        """Boolean mask of the imaginary (negative-frequency) modes."""
        return self.frequencies_cm1 < 0

    @property
    def cartesian_vectors(self) -> np.ndarray:
        """(M, N, 3) Cartesian displacement per unit mass-weighted amplitude,
        e_k,i / sqrt(m_i), in 1/sqrt(amu)."""
        return self.vectors / np.sqrt(self.masses)[None, :, None]


def _external_basis(positions: np.ndarray, masses: np.ndarray,
                    rel_tol: float = 1e-5) -> np.ndarray:
    """Orthonormal basis (3N, n_ext) of the mass-weighted translations and rotations about the
    centre of mass; n_ext = 6, 5 (linear) or 3 (one atom)."""
    n = len(masses)
    sq = np.sqrt(masses)
    r = positions - (masses[:, None] * positions).sum(0) / masses.sum()
    vecs = []
    for a in range(3):
        t = np.zeros((n, 3))
        t[:, a] = sq
        vecs.append(t.ravel())
    for a in range(3):
        axis = np.zeros(3)
        axis[a] = 1.0
        vecs.append((sq[:, None] * np.cross(axis, r)).ravel())
    m = np.array(vecs).T
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    keep = s > rel_tol * s.max()
    return u[:, keep]


def _modes_from_hessian(atoms: Atoms, hessian: np.ndarray, masses: np.ndarray,
                        delta: float) -> NormalModes:
    n = len(atoms)
    h = 0.5 * (hessian + hessian.T)
    inv_sq = np.repeat(1.0 / np.sqrt(masses), 3)
    h_mw = h * inv_sq[:, None] * inv_sq[None, :]
    ext = _external_basis(atoms.positions, masses)
    n_ext = ext.shape[1]
    # orthonormal basis of the internal space = complement of the external one
    proj = np.eye(3 * n) - ext @ ext.T
    w, v = np.linalg.eigh(proj)
    internal = v[:, w > 0.5]
    if internal.shape[1] != 3 * n - n_ext:  # pragma: no cover - numerical safety net
        raise SamplingError("could not separate internal and external coordinates")
    lam, c = np.linalg.eigh(internal.T @ h_mw @ internal)
    vectors = (internal @ c).T.reshape(-1, n, 3)
    omega = np.sign(lam) * np.sqrt(np.abs(lam))
    freqs = HBAR * omega / units.invcm
    ref = _copy(atoms)
    ref.set_constraint()
    return NormalModes(atoms=ref, masses=np.array(masses, dtype=float), hessian=h,
                       force_constants=lam, vectors=vectors, frequencies_cm1=freqs,
                       linear=(n_ext == 5), delta_A=float(delta))


def displaced_positions(positions: np.ndarray, delta: float) -> np.ndarray:
    """The 6N frames (6N, N, 3) Angstrom of a central-difference Hessian, in the order of
    :class:`ase.vibrations.Vibrations`: for atom a, then axis i (x, y, z), the coordinate
    (a, i) moved by -``delta`` and then by +``delta`` Angstrom (the same floating-point sum
    as ASE's)."""
    pos = np.asarray(positions, dtype=float)
    n = len(pos)
    out = np.repeat(pos[None], 6 * n, axis=0)
    for a in range(n):
        for i in range(3):
            r = 6 * a + 2 * i
            out[r, a, i] = pos[a, i] - delta
            out[r + 1, a, i] = pos[a, i] + delta
    return out


def hessian_from_forces(forces: np.ndarray, delta: float) -> np.ndarray:
    """Cartesian Hessian (3N, 3N), eV/Angstrom^2, from the forces (6N, N, 3) eV/Angstrom at
    the frames of :func:`displaced_positions`: row (a, i) is (F(-) - F(+)) / (2 delta),
    symmetrised as :meth:`ase.vibrations.Vibrations.read` does (the same arithmetic, so the
    same numbers from the same forces)."""
    f = np.asarray(forces, dtype=float)
    n3 = 3 * f.shape[1]
    if f.shape != (2 * n3, n3 // 3, 3):
        raise ValueError(f"forces have shape {f.shape}, expected ({2 * n3}, {n3 // 3}, 3)")
    h = np.empty((n3, n3))
    for r in range(n3):
        h[r] = 0.5 * (f[2 * r] - f[2 * r + 1]).ravel()
        h[r] /= 2 * delta
    h += h.copy().T
    return h


def normal_modes(atoms: Atoms, calculator, delta: float = 0.01, name: str | None = None,
                 workdir: str | Path | None = None, imaginary: str = "warn",
                 imaginary_tolerance_cm1: float = 10.0, batch: bool = True) -> NormalModes:
    """Harmonic normal modes of ``atoms`` from central finite differences of the forces
    (+/- ``delta`` Angstrom along each Cartesian coordinate).

    How the forces are computed: a calculator with a ``batch_forces(atoms, positions)``
    method (forces (n, N, 3) eV/Angstrom at frames (n, N, 3) Angstrom, e.g.
    :meth:`molmag.models.calculator.ModelCalculator.batch_forces`) gets all 6N displaced
    frames (:func:`displaced_positions`) in one call, unless ``batch=False``; any other
    calculator runs through :class:`ase.vibrations.Vibrations` (6N + 1 single points, one
    ``get_forces`` each).  :func:`hessian_from_forces` repeats the arithmetic of ASE's
    ``Vibrations.read``, so equal forces give the same Hessian, bit for bit, on either path.

    The Cartesian Hessian H (eV/Angstrom^2) is symmetrised and mass weighted,
    H~ = M^-1/2 H M^-1/2 (eV/(Angstrom^2 amu)); the 6 (5 for a linear molecule) translations
    and infinitesimal rotations about the centre of mass, sqrt(m_i) e_a and sqrt(m_i) e_a x r_i,
    are removed exactly by diagonalising H~ in the orthogonal complement of their span.  This
    leaves 3N-6 (3N-5) modes with eigenvalues lambda_k = omega_k^2 and orthonormal mass-weighted
    eigenvectors e_k; the wavenumber is nu_k = hbar omega_k / (h c) (cm-1), negative for
    imaginary modes (lambda_k < 0).  All atoms move (constraints of ``atoms`` are ignored): the
    result is the full molecular Hessian.  ``atoms`` should be a minimum of ``calculator``
    (relax it first, e.g. with :func:`molmag.chem.xtb.relax` and a tight ``fmax``).

    ``imaginary``: what to do with imaginary modes below -``imaginary_tolerance_cm1`` (smaller
    ones are usually finite-difference noise of soft modes): ``"warn"`` (default; they stay in
    the result and :func:`boltzmann_normal_mode_samples` skips them), ``"raise"``
    (:class:`ImaginaryModeError`) or ``"ignore"``.

    ``workdir``: where ASE keeps the displaced-force cache.  Without it, a temporary directory
    is used and removed.  With it, the cache stays there, so a killed or repeated run only
    computes the displacements not done yet; a ``reference.json`` next to the cache records the
    structure and delta, and a mismatch raises ``ValueError`` rather than mixing structures.
    The batched path checks ``reference.json`` the same way but caches no forces (it is one
    call).
    """
    if imaginary not in ("warn", "raise", "ignore"):
        raise ValueError(f"imaginary must be 'warn', 'raise' or 'ignore', got {imaginary!r}")
    if delta <= 0:
        raise ValueError(f"delta must be > 0 Angstrom, got {delta}")
    label = _label(atoms, name)
    work = _copy(atoms)
    work.set_constraint()
    work.calc = calculator
    masses = work.get_masses()
    batch_forces = getattr(calculator, "batch_forces", None) if batch else None

    def run_batch() -> np.ndarray:
        assert batch_forces is not None   # only called when the calculator has it
        frames = displaced_positions(work.positions, delta)
        try:
            forces = np.asarray(batch_forces(work, frames), dtype=np.float64)
        except Exception as exc:
            raise SamplingError(f"normal-mode analysis of {label} failed: "
                                f"{type(exc).__name__}: {exc}") from exc
        if forces.shape != frames.shape:
            raise SamplingError(f"normal-mode analysis of {label} failed: batch_forces gave "
                                f"shape {forces.shape}, expected {frames.shape}")
        return hessian_from_forces(forces, delta)

    def run(directory: Path) -> np.ndarray:
        if batch_forces is not None:
            return run_batch()
        from ase.vibrations import Vibrations

        cache = directory / "displacements"
        for f in cache.glob("*.json") if cache.is_dir() else []:
            if f.stat().st_size == 0:   # left by a killed run; ASE would read it as done
                f.unlink()
        vib = Vibrations(work, indices=list(range(len(work))), name=str(cache), delta=delta,
                         nfree=2)
        try:
            vib.run()
        except Exception as exc:
            raise SamplingError(f"normal-mode analysis of {label} failed: "
                                f"{type(exc).__name__}: {exc}") from exc
        return np.asarray(vib.get_vibrations().get_hessian_2d(), dtype=float)

    if workdir is None and batch_forces is not None:
        hessian = run_batch()
    elif workdir is None:
        with tempfile.TemporaryDirectory(prefix="molmag-vib-") as tmp:
            hessian = run(Path(tmp))
    else:
        wd = Path(workdir)
        wd.mkdir(parents=True, exist_ok=True)
        ref = {"numbers": [int(z) for z in work.numbers],
               "positions": np.round(work.positions, 8).tolist(), "delta_A": float(delta)}
        ref_file = wd / "reference.json"
        if ref_file.exists():
            old = json.loads(ref_file.read_text())
            if (old.get("numbers") != ref["numbers"] or old.get("delta_A") != ref["delta_A"]
                    or not np.allclose(old.get("positions"), ref["positions"], atol=1e-6)):
                raise ValueError(f"{wd} holds a normal-mode cache of another structure or "
                                 f"delta; use a fresh workdir for {label}")
        else:
            ref_file.write_text(json.dumps(ref))
        hessian = run(wd)

    modes = _modes_from_hessian(work, hessian, masses, delta)
    bad = modes.frequencies_cm1[modes.frequencies_cm1 < -abs(imaginary_tolerance_cm1)]
    if bad.size and imaginary != "ignore":
        msg = (f"{label}: {bad.size} imaginary mode(s) "
               f"({', '.join(f'{abs(f):.1f}i' for f in bad)} cm-1); the structure is not a "
               f"minimum of the calculator")
        if imaginary == "raise":
            raise ImaginaryModeError(msg)
        warnings.warn(msg, stacklevel=2)
    return modes


def mode_variance(frequencies_cm1, temperature_K: float, quantum: bool = True) -> np.ndarray:
    """Thermal variance sigma_k^2 of the mass-weighted amplitude Q_k of harmonic modes,
    in Angstrom^2 amu.

    Quantum (Wigner distribution of the harmonic oscillator, zero-point motion included):

        sigma^2 = hbar / (2 omega) * coth(hbar omega / (2 k_B T))

    which is hbar/(2 omega) at T = 0 and tends to the classical value

        sigma^2 = k_B T / omega^2

    for k_B T >> hbar omega.  omega = 2 pi c nu in 1/(ASE time) (nu in cm-1), hbar in eV * ASE
    time, k_B T in eV.  Frequencies must be positive."""
    nu = np.asarray(frequencies_cm1, dtype=float)
    if np.any(nu <= 0):
        raise ValueError("mode_variance needs positive (real) frequencies")
    T = float(temperature_K)
    if T < 0:
        raise ValueError(f"temperature must be >= 0 K, got {T}")
    omega = nu * units.invcm / HBAR
    if not quantum:
        return KB * T / omega**2
    if T == 0:
        return HBAR / (2 * omega)
    x = HBAR * omega / (2 * KB * T)
    return HBAR / (2 * omega) / np.tanh(x)


def sample_mode_amplitudes(modes: NormalModes, temperature_K: float, n: int, seed: int = 0,
                           quantum: bool = True,
                           min_frequency_cm1: float = DEFAULT_MIN_FREQUENCY_CM1) -> np.ndarray:
    """(n, M) mass-weighted amplitudes Q_k ~ Normal(0, sigma_k^2) (Angstrom sqrt(amu)), with
    sigma_k^2 from :func:`mode_variance`; zero for imaginary modes and modes below
    ``min_frequency_cm1``.  The stream depends on ``(seed, temperature)``."""
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    nu = modes.frequencies_cm1
    use = nu >= max(float(min_frequency_cm1), 1e-9)
    sigma = np.zeros(modes.n_modes)
    if use.any():
        sigma[use] = np.sqrt(mode_variance(nu[use], temperature_K, quantum=quantum))
    rng = _rng(seed, _TAG_MODES, temperature_K, 1e3)
    return rng.standard_normal((n, modes.n_modes)) * sigma[None, :]


def boltzmann_normal_mode_samples(atoms: Atoms, modes: NormalModes, temperature_K: float,
                                  n: int, seed: int = 0, quantum: bool = True,
                                  min_frequency_cm1: float = DEFAULT_MIN_FREQUENCY_CM1
                                  ) -> list[Atoms]:
    """``n`` copies of ``atoms`` displaced along the normal modes with thermal amplitudes.

    For each real mode k with nu_k >= ``min_frequency_cm1`` (default 50 cm-1) the mass-weighted
    amplitude is drawn independently, Q_k ~ Normal(0, sigma_k^2) (Angstrom sqrt(amu)), with

        quantum:   sigma_k^2 = hbar / (2 omega_k) coth(hbar omega_k / (2 k_B T))
                   (harmonic Wigner distribution; includes zero-point motion)
        classical: sigma_k^2 = k_B T / omega_k^2

    (see :func:`mode_variance`), and the Cartesian displacement of atom i is

        dx_i = sum_k e_k,i Q_k / sqrt(m_i)      (Angstrom, masses in amu).

    Modes below the threshold (soft torsions, methyl rotations: classically sigma ~ 1/omega
    grows without bound and the harmonic picture fails) and imaginary modes are left at zero.
    Translations and rotations are not part of ``modes``, so the centre of mass does not move
    and the displacement carries no (linearised) rotation.

    ``atoms`` must have the same atoms as ``modes.atoms`` (normally it is that structure); the
    displacements are added to its positions.  ``info`` of each copy gains
    ``sampler="normal_mode_boltzmann"``, ``temperature_K``, ``quantum``,
    ``min_frequency_cm1``, ``n_modes_sampled``, ``harmonic_energy_eV`` (sum_k 1/2 omega_k^2
    Q_k^2, the harmonic potential energy of the sample), ``sample_index`` and ``seed``.
    """
    if len(atoms) != len(modes.atoms) or np.any(atoms.numbers != modes.atoms.numbers):
        raise ValueError("atoms and modes describe different structures")
    q = sample_mode_amplitudes(modes, temperature_K, n, seed=seed, quantum=quantum,
                               min_frequency_cm1=min_frequency_cm1)
    lam = np.clip(modes.force_constants, 0.0, None)
    n_used = int(np.sum(modes.frequencies_cm1 >= max(float(min_frequency_cm1), 1e-9)))
    cart = modes.cartesian_vectors  # (M, N, 3)
    out = []
    for k in range(q.shape[0]):
        a = _copy(atoms)
        a.positions = atoms.positions + np.tensordot(q[k], cart, axes=1)
        a.info.update({"sampler": "normal_mode_boltzmann", "temperature_K": float(temperature_K),
                       "quantum": bool(quantum), "min_frequency_cm1": float(min_frequency_cm1),
                       "n_modes_sampled": n_used,
                       "harmonic_energy_eV": float(0.5 * np.sum(lam * q[k] ** 2)),
                       "sample_index": k, "seed": int(seed)})
        out.append(a)
    return out


def zero_point_mode_displacements(atoms: Atoms, modes: NormalModes, n: int,
                                  modes_per_sample: int = 2, scale: float = 1.0,
                                  seed: int = 0, min_frequency_cm1: float = 0.0
                                  ) -> list[Atoms]:
    """``n`` copies of ``atoms`` each displaced along ``modes_per_sample`` distinct, randomly
    chosen normal modes by ``scale`` times their zero-point amplitude, with random signs:

        dx_i = sum_{k in sample} s_k scale Q_zp,k e_k,i / sqrt(m_i),
        Q_zp,k = sqrt(hbar / (2 omega_k)),  s_k = +/-1.

    A training set for the derivatives of a property along the modes at the reference
    structure (first-order spin-phonon couplings, :mod:`molmag.dynamics.spin_phonon`, which
    differentiates at +/- Q_zp / 4): every sample stays within sqrt(modes_per_sample) * scale
    zero-point amplitudes of the minimum, where a low-degree model of the property is
    accurate, and each mode is visited about ``n * modes_per_sample / M`` times.
    (:func:`boltzmann_normal_mode_samples` at 0 K moves all M modes at once, sqrt(M) times
    as far: on [Co(pdms)2]2-, 153 modes, a covariant ridge of D then needs ~1000 samples
    for the couplings that 50-200 of these give; DEVELOPERS.md, "Spin-phonon".)

    Only real modes with nu >= ``min_frequency_cm1`` (default: every real mode) are chosen.
    The stream depends on ``(seed, scale)``; the first ``m`` samples of a run with ``n > m``
    are those of a run with ``n = m``.  ``info`` of each copy gains
    ``sampler="zero_point_modes"``, ``modes`` (the signed mode indices, e.g. ``"+20,-7"``,
    indices into ``modes``), ``scale``, ``sample_index`` and ``seed``.
    """
    if len(atoms) != len(modes.atoms) or np.any(atoms.numbers != modes.atoms.numbers):
        raise ValueError("atoms and modes describe different structures")
    n, k = int(n), int(modes_per_sample)
    scale = float(scale)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number of zero-point amplitudes, "
                         f"got {scale}")
    nu = np.asarray(modes.frequencies_cm1, float)
    use = np.flatnonzero(nu >= max(float(min_frequency_cm1), 1e-9))
    if not 1 <= k <= len(use):
        raise ValueError(f"modes_per_sample must be between 1 and the {len(use)} usable modes "
                         f"(real, >= {min_frequency_cm1:g} cm-1), got {k}")
    qzp = np.zeros(modes.n_modes)
    qzp[use] = np.sqrt(mode_variance(nu[use], 0.0))
    cart = modes.cartesian_vectors
    rng = _rng(seed, _TAG_ZERO_POINT, scale, 1e6)
    out = []
    for i in range(n):
        idx = rng.choice(use, size=k, replace=False)
        signs = rng.choice((-1.0, 1.0), size=k)
        amp = signs * scale * qzp[idx]
        a = _copy(atoms)
        a.positions = atoms.positions + np.tensordot(amp, cart[idx], axes=1)
        a.info.update({"sampler": "zero_point_modes",
                       "modes": ",".join(f"{'+' if s > 0 else '-'}{j}"
                                         for s, j in zip(signs, idx)),
                       "scale": scale, "sample_index": i, "seed": int(seed)})
        out.append(a)
    return out


__all__ = ["SamplingError", "ImaginaryModeError", "NormalModes", "HBAR", "KB",
           "DEFAULT_MIN_FREQUENCY_CM1", "random_displacements", "displacement_sets",
           "md_snapshots", "maxwell_boltzmann", "normal_modes", "displaced_positions",
           "hessian_from_forces",
           "mode_variance", "sample_mode_amplitudes",
           "boltzmann_normal_mode_samples", "zero_point_mode_displacements"]
