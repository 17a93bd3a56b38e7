"""Configuration sampling: random displacements, Langevin MD snapshots, normal modes and
thermal sampling along them (molmag.chem.sampling)."""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.cluster import Icosahedron
from ase.constraints import FixAtoms
from scipy import constants as C

from molmag.chem.sampling import (
    HBAR,
    KB,
    ImaginaryModeError,
    NormalModes,
    SamplingError,
    boltzmann_normal_mode_samples,
    displacement_sets,
    md_snapshots,
    mode_variance,
    normal_modes,
    random_displacements,
    sample_mode_amplitudes,
    zero_point_mode_displacements,
)


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def water_modes() -> NormalModes:
    """GFN2-xTB normal modes of H2O at its GFN2-xTB minimum."""
    pytest.importorskip("tblite")
    from molmag.chem.xtb import XTBCalculator, relax

    res = relax(molecule("H2O"), fmax=1e-4, steps=200)
    return normal_modes(res.atoms, XTBCalculator(), name="water")


def _lj(sigma=3.4, epsilon=0.0104):
    return LennardJones(sigma=sigma, epsilon=epsilon, rc=10 * sigma)


def _relaxed(atoms: Atoms, calc) -> Atoms:
    from ase.optimize import BFGS

    a = atoms.copy()
    a.calc = calc
    BFGS(a, logfile=None).run(fmax=1e-7, steps=500)
    out = a.copy()
    out.calc = None
    return out


class CountingEMT(EMT):
    """EMT that counts its calculations and raises on call number ``fail_on``."""

    def __init__(self, fail_on=None, **kw):
        super().__init__(**kw)
        self.calls = 0
        self.fail_on = fail_on

    def calculate(self, *args, **kw):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise RuntimeError("SCF exploded")
        super().calculate(*args, **kw)


class CountingLJ(LennardJones):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = 0

    def calculate(self, *args, **kw):
        self.calls += 1
        super().calculate(*args, **kw)


def _external_residual(ref: Atoms, masses: np.ndarray, dx: np.ndarray):
    """(mass-weighted mean displacement, linearised angular momentum sum_i m_i r_i x dx_i)."""
    r = ref.positions - (masses[:, None] * ref.positions).sum(0) / masses.sum()
    return (masses[:, None] * dx).sum(0), (masses[:, None] * np.cross(r, dx)).sum(0)


# --- 1. random displacements ------------------------------------------------------------------
def test_random_displacements_uniform_within_bounds():
    a = molecule("CH4")
    a.info.update({"charge": 0, "name": "methane"})
    delta, n = 0.1, 2000
    samples = random_displacements(a, n, delta, seed=3)
    d = np.array([s.positions - a.positions for s in samples])          # (n, 5, 3)
    assert len(samples) == n
    assert np.abs(d).max() <= delta
    assert np.abs(d).max() > 0.999 * delta
    # uniform on [-delta, delta]: mean 0, variance delta^2/3 (30000 coordinates)
    assert abs(d.mean()) < 5 * delta / np.sqrt(3 * d.size)
    assert d.var() == pytest.approx(delta**2 / 3, rel=0.03)
    # every coordinate is displaced independently (not one vector per atom)
    assert abs(np.corrcoef(d[:, 0, 0], d[:, 0, 1])[0, 1]) < 0.1
    s = samples[7]
    assert s.info["charge"] == 0 and s.info["name"] == "methane"
    assert s.info["sampler"] == "random_displacement"
    assert s.info["delta_A"] == delta and s.info["sample_index"] == 7 and s.info["seed"] == 3
    assert "sampler" not in a.info and s.calc is None


def test_random_displacements_fixed_atoms_and_seed():
    a = molecule("CH4")
    s1 = random_displacements(a, 20, 0.2, seed=11, fixed=[0])
    s2 = random_displacements(a, 20, 0.2, seed=11, fixed=[0])
    s3 = random_displacements(a, 20, 0.2, seed=12, fixed=[0])
    for x in s1:
        assert np.array_equal(x.positions[0], a.positions[0])
        assert np.all(np.abs(x.positions[1:] - a.positions[1:]) > 0)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(s1, s2))
    assert not np.allclose(s1[0].positions, s3[0].positions)
    # fixing atoms does not change the other atoms' samples; more samples extend the list
    free = random_displacements(a, 25, 0.2, seed=11)
    assert np.array_equal(free[4].positions[1:], s1[4].positions[1:])
    with pytest.raises(ValueError):
        random_displacements(a, 2, -0.1)


def test_displacement_sets_per_delta_independence():
    a = molecule("H2O")
    full = displacement_sets(a, seed=5)                     # 0.05, 0.1, 0.2 x 500
    assert len(full) == 1500
    assert [s.info["delta_A"] for s in full[::500]] == [0.05, 0.1, 0.2]
    only = displacement_sets(a, deltas=(0.1,), n_per_delta=500, seed=5)
    swapped = displacement_sets(a, deltas=(0.2, 0.1), n_per_delta=500, seed=5)
    single = random_displacements(a, 500, 0.1, seed=5)
    block = full[500:1000]
    for other in (only, swapped[500:], single):
        assert all(np.array_equal(x.positions, y.positions) for x, y in zip(block, other))
    for k, delta in enumerate((0.05, 0.1, 0.2)):
        d = np.array([s.positions - a.positions for s in full[500 * k: 500 * (k + 1)]])
        assert np.abs(d).max() <= delta and np.abs(d).max() > 0.99 * delta


# --- 2. Langevin MD ---------------------------------------------------------------------------
def test_md_kinetic_temperature_and_centre_of_mass():
    a = Icosahedron("Cu", 2)                                        # Cu13
    a.info["name"] = "Cu13"
    seen = []
    snaps = md_snapshots(a, EMT(), 500.0, 100, interval=5, timestep_fs=2.0, friction=0.05,
                         equilibration_steps=200, seed=2, callback=seen.append)
    assert len(snaps) == 100 and seen == snaps
    kt = np.array([s.info["kinetic_temperature_K"] for s in snaps])
    assert kt.mean() == pytest.approx(500.0, rel=0.15)
    assert snaps[0].info["mean_kinetic_temperature_K"] == pytest.approx(kt.mean())
    s = snaps[-1]
    assert s.info["name"] == "Cu13" and s.info["sampler"] == "md"
    assert s.info["temperature_K"] == 500.0 and s.info["md_step"] == 200 + 100 * 5
    assert s.info["sample_index"] == 99 and s.calc is None and not s.constraints
    # FixCom keeps the cluster in place; the snapshots differ from each other
    com0 = a.get_center_of_mass()
    assert np.allclose([x.get_center_of_mass() for x in snaps], com0, atol=1e-8)
    assert not np.allclose(snaps[0].positions, snaps[1].positions)


def test_md_deterministic_given_seed():
    a = Icosahedron("Cu", 2)
    kw = dict(interval=3, timestep_fs=2.0, equilibration_steps=10)
    r1 = md_snapshots(a, EMT(), [300.0, 600.0], 3, seed=4, **kw)
    r2 = md_snapshots(a, EMT(), [300.0, 600.0], 3, seed=4, **kw)
    r3 = md_snapshots(a, EMT(), [600.0], 3, seed=4, **kw)
    r4 = md_snapshots(a, EMT(), [300.0, 600.0], 3, seed=5, **kw)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(r1, r2))
    # the 600 K run does not depend on the 300 K one
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(r1[3:], r3))
    assert not np.allclose(r1[0].positions, r4[0].positions)


def test_md_keeps_fixed_atoms():
    a = Icosahedron("Cu", 2)
    a.set_constraint(FixAtoms(indices=[0]))
    snaps = md_snapshots(a, EMT(), 300.0, 2, interval=5, timestep_fs=2.0,
                         equilibration_steps=5)
    for s in snaps:
        assert np.array_equal(s.positions[0], a.positions[0])
        assert not np.allclose(s.positions[1:], a.positions[1:])
        assert isinstance(s.constraints[0], FixAtoms)


def test_md_calculator_failure_names_temperature_and_step():
    a = Icosahedron("Cu", 2)
    # call 1: initial forces, call k+1: forces after step k -> call 6 fails in step 5
    with pytest.raises(SamplingError, match=r"Cu13 at 300 K failed at step 5 .*SCF exploded"):
        md_snapshots(a, CountingEMT(fail_on=6), 300.0, 2, interval=10, equilibration_steps=3)


# --- 3. normal modes --------------------------------------------------------------------------
def test_water_gfn2_modes(water_modes):
    m = water_modes
    assert m.n_modes == 3 * 3 - 6 and not m.linear
    nu = m.frequencies_cm1
    assert np.all(nu > 0) and not m.imaginary.any()
    assert 1450 < nu[0] < 1650                    # bend (GFN2-xTB: 1538.6 cm-1)
    assert 3500 < nu[1] < 3750 and 3500 < nu[2] < 3750   # stretches (3643.4, 3651.6)
    v = m.vectors.reshape(3, -1)
    assert np.allclose(v @ v.T, np.eye(3), atol=1e-10)
    for k in range(3):
        t, rot = _external_residual(m.atoms, m.masses, m.cartesian_vectors[k])
        assert np.allclose(t, 0, atol=1e-10) and np.allclose(rot, 0, atol=1e-10)


def test_water_modes_match_ase_vibrations(water_modes):
    """Exact projection of translations/rotations gives ASE's own top 3N-6 frequencies."""
    from ase.vibrations import Vibrations

    from molmag.chem.xtb import XTBCalculator

    a = water_modes.atoms.copy()
    a.calc = XTBCalculator()
    with tempfile.TemporaryDirectory() as tmp:
        vib = Vibrations(a, name=f"{tmp}/vib")
        vib.run()
        ref = np.sort(np.real(vib.get_frequencies()))[-3:]
    assert np.allclose(water_modes.frequencies_cm1, ref, atol=0.1)


def test_linear_co2_has_3n_minus_5_modes():
    pytest.importorskip("tblite")
    from molmag.chem.xtb import XTBCalculator, relax

    co2 = relax(molecule("CO2"), fmax=1e-4).atoms
    m = normal_modes(co2, XTBCalculator())
    assert m.linear and m.n_modes == 4
    assert m.frequencies_cm1[0] == pytest.approx(m.frequencies_cm1[1], abs=0.5)  # bend pair
    # skipping modes below a threshold leaves their amplitudes at zero
    q = sample_mode_amplitudes(m, 300.0, 50, min_frequency_cm1=m.frequencies_cm1[1] + 1)
    assert np.all(q[:, :2] == 0) and np.all(q[:, 2:] != 0)


def test_lj_dimer_frequency_analytic(tmp_path, monkeypatch):
    """LJ dimer: k = V''(r0) = 72 eps / (2^(1/3) sigma^2), omega = sqrt(k / mu), in SI units."""
    sigma, eps = 3.4, 0.0104
    a = _relaxed(Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 3.9]]), _lj(sigma, eps))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))        # temp dir is cleaned up
    m = normal_modes(a, _lj(sigma, eps), delta=0.005)
    assert list(tmp_path.iterdir()) == []
    assert m.linear and m.n_modes == 1
    k_si = 72 * eps / (2 ** (1 / 3) * sigma**2) * C.e / 1e-20            # J/m^2
    mu_si = a.get_masses()[0] / 2 * C.atomic_mass
    nu_cm1 = np.sqrt(k_si / mu_si) / (2 * np.pi * C.c * 100)
    assert m.frequencies_cm1[0] == pytest.approx(nu_cm1, rel=2e-4)
    k_ev = 72 * eps / (2 ** (1 / 3) * sigma**2)                          # eV/A^2
    # finite-difference truncation error O(V'''' delta^2 / 12 k): ~1e-4 at delta = 0.005 A
    assert m.force_constants[0] == pytest.approx(k_ev / (a.get_masses()[0] / 2), rel=3e-4)


def test_normal_modes_workdir_resumes_and_refuses_other_structure(tmp_path):
    a = _relaxed(Atoms("Ar3", positions=[[0, 0, 0], [3.8, 0, 0], [1.9, 3.3, 0]]), _lj())
    calc = CountingLJ(sigma=3.4, epsilon=0.0104, rc=34.0)
    m1 = normal_modes(a, calc, workdir=tmp_path / "vib")
    first = calc.calls
    assert first == 6 * 3 + 1 and m1.n_modes == 3
    m2 = normal_modes(a, calc, workdir=tmp_path / "vib")
    assert calc.calls == first                          # everything read from the cache
    assert np.allclose(m1.frequencies_cm1, m2.frequencies_cm1)
    moved = a.copy()
    moved.positions[0, 0] += 0.1
    with pytest.raises(ValueError, match="another structure"):
        normal_modes(moved, calc, workdir=tmp_path / "vib")


def test_imaginary_modes_reported_and_skipped():
    """A planar LJ4 square is a saddle point (the tetrahedron is the minimum): it has imaginary
    modes (stiff LJ, sigma = 1 A, eps = 0.5 eV: 163.5i and 86.7i cm-1)."""
    def calc():
        return _lj(1.0, 0.5)

    sq = _relaxed(Atoms("Ar4", positions=[[0, 0, 0], [1.15, 0, 0], [1.15, 1.15, 0],
                                          [0, 1.15, 0]]), calc())
    assert np.ptp(sq.positions[:, 2]) < 1e-12
    with pytest.raises(ImaginaryModeError, match="imaginary"):
        normal_modes(sq, calc(), imaginary="raise")
    with pytest.warns(UserWarning, match="not a minimum"):
        m = normal_modes(sq, calc())
    assert m.n_modes == 6 and m.imaginary.sum() == 2
    assert m.frequencies_cm1[0] < -50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normal_modes(sq, calc(), imaginary="ignore")
    samples = boltzmann_normal_mode_samples(sq, m, 300.0, 10)
    q = _amplitudes(m, samples)
    assert np.allclose(q[:, m.imaginary], 0, atol=1e-12)
    assert np.all(np.abs(q[:, ~m.imaginary]) > 0)
    assert samples[0].info["n_modes_sampled"] == 4


# --- Boltzmann sampling along normal modes ----------------------------------------------------
def _amplitudes(modes: NormalModes, samples) -> np.ndarray:
    """Q_k = sum_i sqrt(m_i) e_k,i . dx_i, recovered from the Cartesian samples."""
    dx = np.array([s.positions - modes.atoms.positions for s in samples])
    return np.einsum("kia,nia->nk", modes.vectors, dx * np.sqrt(modes.masses)[None, :, None])


def test_classical_samples_equipartition(water_modes):
    m, T, n = water_modes, 300.0, 20000
    samples = boltzmann_normal_mode_samples(m.atoms, m, T, n, seed=1, quantum=False)
    q = _amplitudes(m, samples)
    e_harm = 0.5 * (m.force_constants[None, :] * q**2).sum(1)         # eV
    # <sum_k 1/2 omega_k^2 Q_k^2> = n_modes/2 k_B T (std of the estimate: 0.6 %)
    assert e_harm.mean() == pytest.approx(0.5 * m.n_modes * KB * T, rel=0.03)
    assert np.allclose(e_harm, [s.info["harmonic_energy_eV"] for s in samples], rtol=1e-8)
    s = samples[0]
    assert s.info["sampler"] == "normal_mode_boltzmann" and s.info["quantum"] is False
    assert s.info["n_modes_sampled"] == 3 and s.info["temperature_K"] == T
    # no translation, no (linearised) rotation
    t, rot = _external_residual(m.atoms, m.masses, samples[5].positions - m.atoms.positions)
    assert np.allclose(t, 0, atol=1e-10) and np.allclose(rot, 0, atol=1e-10)
    # deterministic given the seed
    again = boltzmann_normal_mode_samples(m.atoms, m, T, 3, seed=1, quantum=False)
    assert np.array_equal(again[2].positions, samples[2].positions)


def test_low_temperature_samples_follow_the_xtb_surface(water_modes):
    """At 50 K the sampled geometries stay in the harmonic region of GFN2-xTB itself:
    E_xTB(sample) - E_xTB(minimum) = sum_k 1/2 omega_k^2 Q_k^2 on average (measured 1.006)."""
    from molmag.chem.xtb import XTBCalculator

    m, calc = water_modes, XTBCalculator()
    ref = m.atoms.copy()
    ref.calc = calc
    e0 = ref.get_potential_energy()
    samples = boltzmann_normal_mode_samples(m.atoms, m, 50.0, 40, seed=3, quantum=False)
    d_e = []
    for s in samples:
        s.calc = calc
        d_e.append(s.get_potential_energy() - e0)
    harm = [s.info["harmonic_energy_eV"] for s in samples]
    assert np.mean(d_e) == pytest.approx(np.mean(harm), rel=0.03)


def test_quantum_samples_have_wigner_width(water_modes):
    m, T = water_modes, 300.0
    q = _amplitudes(m, boltzmann_normal_mode_samples(m.atoms, m, T, 20000, seed=2))
    var = mode_variance(m.frequencies_cm1, T)
    assert np.allclose(q.var(0), var, rtol=0.04)
    # O-H stretches at 300 K: hbar omega / k_B T ~ 17, essentially all zero-point motion,
    # far wider than the classical width
    zp = HBAR / (2 * np.sqrt(m.force_constants))
    assert np.allclose(var[1:], zp[1:], rtol=1e-6)
    assert var[0] == pytest.approx(zp[0], rel=2e-3)          # bend: x = 3.7, coth x = 1.0012
    ratio = var / mode_variance(m.frequencies_cm1, T, quantum=False)   # = x coth x
    assert ratio[0] > 3.5 and np.all(ratio[1:] > 8)


def test_zero_point_mode_displacements(water_modes):
    m = water_modes
    samples = zero_point_mode_displacements(m.atoms, m, 30, modes_per_sample=2, scale=0.5,
                                            seed=4)
    q = _amplitudes(m, samples)
    qzp = np.sqrt(HBAR / (2 * np.sqrt(m.force_constants)))
    for s, row in zip(samples, q):
        moved = np.flatnonzero(np.abs(row) > 1e-9)
        assert len(moved) == 2
        assert np.allclose(np.abs(row[moved]), 0.5 * qzp[moved], rtol=1e-9)
        signed = sorted(f"{'+' if row[j] > 0 else '-'}{j}" for j in moved)
        assert sorted(s.info["modes"].split(",")) == signed
        assert s.info["sampler"] == "zero_point_modes" and s.info["scale"] == 0.5
        t, rot = _external_residual(m.atoms, m.masses, s.positions - m.atoms.positions)
        assert np.allclose(t, 0, atol=1e-10) and np.allclose(rot, 0, atol=1e-10)
    assert len({s.info["modes"] for s in samples}) > 6      # all pairs and both signs occur
    # deterministic, and a shorter run is a prefix of a longer one
    again = zero_point_mode_displacements(m.atoms, m, 5, modes_per_sample=2, scale=0.5, seed=4)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(again, samples))
    # only modes at or above the threshold move
    hi = zero_point_mode_displacements(m.atoms, m, 10, modes_per_sample=1,
                                       min_frequency_cm1=m.frequencies_cm1[1])
    assert np.all(np.abs(_amplitudes(m, hi)[:, 0]) < 1e-9)
    with pytest.raises(ValueError, match="modes_per_sample"):
        zero_point_mode_displacements(m.atoms, m, 3, modes_per_sample=4)
    with pytest.raises(ValueError, match="scale"):
        zero_point_mode_displacements(m.atoms, m, 3, scale=0.0)


def test_mode_variance_limits():
    nu = np.array([100.0, 1000.0, 3000.0])
    omega = nu * units.invcm / HBAR
    # high T: coth(x) ~ 1/x + x/3 -> sigma^2 = k_B T/omega^2 (1 + x^2/3), x = hbar omega/2kT
    hot = 1e6
    assert np.allclose(mode_variance(nu, hot), mode_variance(nu, hot, quantum=False), rtol=1e-4)
    assert np.allclose(mode_variance(nu, hot, quantum=False), KB * hot / omega**2)
    # low T: zero-point width hbar / (2 omega); classical width vanishes
    for cold in (0.0, 1.0):
        assert np.allclose(mode_variance(nu[1:], cold), HBAR / (2 * omega[1:]), rtol=1e-9)
    assert np.all(mode_variance(nu, 0.0, quantum=False) == 0)
    # quantum width is always the larger one, and grows with T
    T = 300.0
    assert np.all(mode_variance(nu, T) > mode_variance(nu, T, quantum=False))
    assert np.all(mode_variance(nu, 600.0) > mode_variance(nu, T))
    # units: sigma^2 = hbar/(2 omega) for 1000 cm-1 and a 1 amu oscillator in SI, -> A^2 amu
    w_si = 2 * np.pi * C.c * 100 * 1000.0
    assert mode_variance([1000.0], 0.0)[0] == pytest.approx(
        C.hbar / (2 * w_si) / C.atomic_mass * 1e20, rel=1e-6)
    with pytest.raises(ValueError):
        mode_variance([-100.0], 300.0)
