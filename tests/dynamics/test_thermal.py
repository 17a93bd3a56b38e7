"""`molmag thermal` and molmag.dynamics.trajectory/thermal: thermal averages, Pearson r and
the committee spread against numpy on synthetic runs written in the molmag-md/1 format with
ase.io.write (the reader is tested too: 9-float tensor round trip, missing sidecar, missing
key, mixed structures)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from md_files_helpers import CON4H4, write_run
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from molmag.cli.main import app
from molmag.dynamics.thermal import thermal_series, thermal_summary
from molmag.dynamics.trajectory import read_trajectories, read_trajectory
from molmag.io.errors import DataFileError
from molmag.physics.zfs import tensor_from_zfs

runner = CliRunner()


def synthetic(n: int, seed: int, amp: float):
    """Positions of CoN4H4 with random donor displacements, the true d_ML and q of every
    frame (numpy, independent of molmag.chem.features), D and E that depend on q, and
    tensors with those D, E on random axes."""
    rng = np.random.default_rng(seed)
    pos = np.repeat(CON4H4.positions[None], n, axis=0)
    pos[:, 1:] += rng.normal(0, amp, (n, 8, 3))
    vec = pos[:, 1:5] - pos[:, :1]
    d = np.linalg.norm(vec, axis=2)
    u = vec / d[..., None]
    q = np.ones(n)
    for i in range(4):
        for j in range(i + 1, 4):
            q -= 3 / 8 * (np.einsum("fk,fk->f", u[:, i], u[:, j]) + 1 / 3) ** 2
    D = -100 + 3 * (q - q.mean()) / q.std() + rng.normal(0, 1.0, n)
    E = -(1.2 + np.abs(rng.normal(0, 0.3, n)))  # molmag's E has the sign of D
    axes = Rotation.random(n, random_state=seed).as_matrix()
    iso = rng.normal(0, 0.5, n)
    ten = np.array([tensor_from_zfs(D[k], E[k], axes[k], iso[k]) for k in range(n)])
    return pos, d.mean(axis=1), q, D, E, ten


def test_reader_round_trips_the_format(tmp_path):
    pos, _, _, _, _, ten = synthetic(5, 0, 0.03)
    mom = np.random.default_rng(1).normal(size=(5, 9, 3))
    std = np.abs(ten) * 0.01
    write_run(tmp_path / "r", CON4H4, pos, temperature_K=50, momenta=mom, tensors=ten,
              tensors_std=std, D_std=np.arange(5) * 0.1)
    t = read_trajectory(tmp_path / "r.extxyz")
    assert t.temperature == 50 and t.n_frames == 5 and t.metal_index == 0
    np.testing.assert_allclose(t.tensors, ten, rtol=1e-12)  # row-major 9 floats, exactly
    np.testing.assert_allclose(t.tensors_std, std, rtol=1e-12)
    np.testing.assert_allclose(t.times_fs, np.arange(5) * 5.0)
    np.testing.assert_allclose(t.positions, pos, atol=1e-8)
    from ase import units
    np.testing.assert_allclose(t.velocities, mom / t.masses[None, :, None] * units.fs,
                               rtol=1e-6, atol=1e-9)  # extxyz: 8 decimals
    np.testing.assert_allclose(t.scalars["zfs_D_std"], np.arange(5) * 0.1)
    assert t.frame_interval_fs == 5.0
    # the sidecar or the stem reads the same run
    assert read_trajectory(tmp_path / "r.json").n_frames == 5
    assert read_trajectory(tmp_path / "r").n_frames == 5


def test_summary_matches_numpy(tmp_path):
    runs = {}
    for T, amp, seeds in ((25, 0.02, (1, 2)), (100, 0.05, (3,))):
        for r, seed in enumerate(seeds):
            pos, d, q, D, E, ten = synthetic(60, seed, amp)
            sD = 0.1 + 0.01 * np.arange(60)
            write_run(tmp_path / f"T{T}_run{r}", CON4H4, pos, temperature_K=T, tensors=ten,
                      D_std=sD)
            runs.setdefault(T, []).append((d, q, D, E, ten, sD))
    trajs = read_trajectories([tmp_path])
    res = thermal_summary(trajs, frame="lab")  # D_ij as written, to compare with numpy
    assert list(res) == ["25", "100"]
    for T, parts in runs.items():
        d, q, D, E, ten, sD = (np.concatenate(x) for x in zip(*parts))
        r = res[str(T)]
        assert r["n_frames"] == len(D) and r["n_runs"] == len(parts)
        assert r["D_mean"] == pytest.approx(D.mean(), abs=1e-9)
        assert r["D_std"] == pytest.approx(D.std(), abs=1e-9)
        assert r["E_mean"] == pytest.approx(E.mean(), abs=1e-9)
        assert r["E_std"] == pytest.approx(E.std(), abs=1e-9)
        assert r["E_abs_mean"] == pytest.approx(np.abs(E).mean(), abs=1e-9)
        assert r["Dij_mean"]["xy"] == pytest.approx(ten[:, 0, 1].mean(), abs=1e-9)
        assert r["Dij_std"]["zz"] == pytest.approx(ten[:, 2, 2].std(), abs=1e-9)
        assert r["r_D_dML"] == pytest.approx(np.corrcoef(D, d)[0, 1], abs=1e-6)
        assert r["r_D_q"] == pytest.approx(np.corrcoef(D, q)[0, 1], abs=1e-6)
        assert r["d_ML_mean"] == pytest.approx(d.mean(), abs=1e-7)
        assert r["sigma_D_mean"] == pytest.approx(sD.mean())
        assert r["r_D_q"] > 0.5  # D was built to follow q
    # the equilibration cut: frames at t >= 0.1 ps only (5 fs apart: 20 of 60 discarded)
    cut = thermal_summary(trajs, skip_ps=0.1, frame="lab")
    assert cut["100"]["n_frames"] == 40
    D100 = runs[100][0][2]
    assert cut["100"]["D_mean"] == pytest.approx(D100[20:].mean(), abs=1e-9)
    # one cut per run (a run that stopped early skips less): the order of the trajectories
    order = [t.temperature for t in trajs]
    per_run = [0.05 if T == 25 else 0.2 for T in order]
    each = thermal_summary(trajs, skip_ps=per_run, frame="lab")
    assert each["25"]["n_frames"] == 2 * 50 and each["100"]["n_frames"] == 20
    assert each["100"]["D_mean"] == pytest.approx(D100[40:].mean(), abs=1e-9)
    assert each["25"]["skip_ps"] == 0.05 and each["100"]["skip_ps"] == 0.2
    with pytest.raises(ValueError, match="2 values for 3 trajectories"):
        thermal_series(trajs, skip_ps=[0.1, 0.1])
    with pytest.raises(ValueError, match="must be >= 0"):
        thermal_series(trajs, skip_ps=[0.1, -1.0, 0.1])


def test_molecular_frame_undoes_the_tumbling(tmp_path):
    """Every frame of a run rigidly rotated (positions about the centre of mass and tensor as
    R D R^T, a tumbling molecule): in the molecular (Eckart) frame the D_ij statistics are
    those of the unrotated run, exactly; in the laboratory frame they are not.  D, E and the
    correlations are invariant either way."""
    pos, _, _, _, _, ten = synthetic(40, 7, 0.03)
    m = CON4H4.get_masses()
    com = (m @ pos) / m.sum()  # (n, 3)
    rot = Rotation.random(40, random_state=8).as_matrix()
    rot[0] = np.eye(3)  # the first frame (the reference orientation) is not rotated
    pos_r = np.einsum("fij,faj->fai", rot, pos - com[:, None]) + com[:, None]
    ten_r = np.einsum("fia,fab,fjb->fij", rot, ten, rot)
    write_run(tmp_path / "still", CON4H4, pos, temperature_K=50, tensors=ten)
    write_run(tmp_path / "tumbling", CON4H4, pos_r, temperature_K=50, tensors=ten_r,
              side={"structure_hash": "test"})
    still = thermal_summary([read_trajectory(tmp_path / "still.extxyz")])["50"]
    tumbling = thermal_summary([read_trajectory(tmp_path / "tumbling.extxyz")])["50"]
    lab = thermal_summary([read_trajectory(tmp_path / "tumbling.extxyz")], frame="lab")["50"]
    for n in ("xx", "xy", "xz", "yy", "yz", "zz"):
        assert tumbling["Dij_mean"][n] == pytest.approx(still["Dij_mean"][n], abs=1e-5)
        assert tumbling["Dij_std"][n] == pytest.approx(still["Dij_std"][n], abs=1e-5)
    assert max(abs(lab["Dij_std"][n] - still["Dij_std"][n]) for n in ("xx", "zz")) > 1.0
    for k in ("D_mean", "D_std", "E_mean", "r_D_dML", "r_D_q"):
        assert tumbling[k] == pytest.approx(still[k], abs=1e-6)
        assert lab[k] == pytest.approx(still[k], abs=1e-6)


def test_errors_name_file_and_frame(tmp_path):
    pos, _, _, _, _, ten = synthetic(4, 0, 0.03)
    p = write_run(tmp_path / "a", CON4H4, pos, temperature_K=50, tensors=ten)
    # missing sidecar
    (tmp_path / "a.json").rename(tmp_path / "a.bak")
    with pytest.raises(DataFileError, match=r"a\.extxyz: no sidecar a\.json"):
        read_trajectory(p)
    (tmp_path / "a.bak").rename(tmp_path / "a.json")
    # a frame without the tensor the others have
    info = [{} for _ in range(4)]
    q = write_run(tmp_path / "b", CON4H4, pos, temperature_K=50, tensors=None,
                  extra_info=[{"zfs_tensor": list(ten[k].ravel())} if k != 2 else {}
                              for k in range(4)])
    with pytest.raises(DataFileError, match=r"b\.extxyz, frame 2, field 'zfs_tensor'"):
        read_trajectory(q)
    # a run without tensors cannot be analysed thermally
    write_run(tmp_path / "c", CON4H4, pos, temperature_K=50, extra_info=info)
    with pytest.raises(DataFileError, match=r"c\.extxyz, frame 0, field 'zfs_tensor'"):
        thermal_series([read_trajectory(tmp_path / "c.extxyz")])
    # another structure in the same analysis
    other = CON4H4.copy()
    other.numbers[5] = 9  # an F where an H was
    write_run(tmp_path / "d", other, pos, temperature_K=50, tensors=ten)
    with pytest.raises(ValueError, match=r"d\.extxyz is not a run of the structure of"):
        read_trajectories([p, tmp_path / "d.extxyz"])
    # same atoms, another structure hash
    write_run(tmp_path / "e", CON4H4, pos, temperature_K=50, tensors=ten,
              side={"structure_hash": "other"})
    with pytest.raises(ValueError, match="structure_hash other"):
        read_trajectories([p, tmp_path / "e.extxyz"])
    # a tensor that is not 9 floats
    write_run(tmp_path / "f", CON4H4, pos, temperature_K=50,
              extra_info=[{"zfs_tensor": [1.0, 2.0, 3.0]} for _ in range(4)])
    with pytest.raises(DataFileError, match=r"f\.extxyz, frame 0, field 'zfs_tensor'"):
        read_trajectory(tmp_path / "f.extxyz")
    # temperature <= 0 in the sidecar
    write_run(tmp_path / "g", CON4H4, pos, temperature_K=50, tensors=ten,
              side={"temperature_K": 0})
    with pytest.raises(DataFileError, match=r"g\.json, field 'temperature_K'"):
        read_trajectory(tmp_path / "g.extxyz")
    # everything discarded as equilibration
    with pytest.raises(DataFileError, match="no frame left after discarding the first 1 ps"):
        thermal_summary([read_trajectory(p)], skip_ps=1.0)


def test_cli_json_table_and_plots(tmp_path):
    for T, amp in ((25, 0.02), (100, 0.05)):
        pos, _, _, _, _, ten = synthetic(40, T, amp)
        write_run(tmp_path / f"T{T}", CON4H4, pos, temperature_K=T, tensors=ten)
    out = tmp_path / "out"
    r = runner.invoke(app, ["thermal", str(tmp_path / "T25.extxyz"),
                            str(tmp_path / "T100.extxyz"), "--json", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    for key in ("n_frames", "D_mean", "D_std", "E_mean", "E_std", "Dij_mean", "Dij_std",
                "r_D_dML", "r_D_q", "sigma_D_mean"):
        assert key in res["25"] and key in res["100"]
    assert res["25"]["sigma_D_mean"] is None  # no committee in these runs
    assert json.loads((out / "thermal.json").read_text())["100"]["n_frames"] == 40
    for png in ("thermal_Dij.png", "thermal_DE.png", "thermal_correlation.png",
                "thermal_spread.png"):
        assert (out / png).stat().st_size > 1000
    r = runner.invoke(app, ["thermal", str(tmp_path / "T25.extxyz")])
    assert r.exit_code == 0 and "r(D, q)" in r.output
    r = runner.invoke(app, ["thermal", str(tmp_path / "nothere.extxyz")])
    assert r.exit_code == 1 and "no such trajectory file" in r.output


def test_cli_says_which_runs_stopped_early(tmp_path):
    """A run that stopped itself (or was interrupted) is analysed with the frames it has, and
    `molmag thermal` says so in one line naming the file, its frames and the reason."""
    pos, _, _, _, _, ten = synthetic(30, 3, 0.03)
    write_run(tmp_path / "T50", CON4H4, pos, temperature_K=50, tensors=ten)
    write_run(tmp_path / "T100", CON4H4, pos, temperature_K=100, tensors=ten,
              side={"status": "stopped", "stop_reason": "step 300 (150 fs): temperature 400 K "
                    "> 3 x 100 K"})
    write_run(tmp_path / "T75", CON4H4, pos, temperature_K=75, tensors=ten,
              side={"status": "running", "steps_done": 300, "n_steps": 4000})
    r = runner.invoke(app, ["thermal", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert ("T100.extxyz: 30 frames, stopped: step 300 (150 fs): temperature 400 K > 3 x 100 "
            "K; the analysis uses the frames it has") in " ".join(r.stderr.split())
    assert "T75.extxyz: 30 frames, running (step 300 of 4000; a rerun of molmag md continues " \
           "it)" in " ".join(r.stderr.split())
    assert "T50.extxyz" not in r.stderr
    r = runner.invoke(app, ["spectra", str(tmp_path / "T100.extxyz")])
    assert "T100.extxyz: 30 frames, stopped" in r.stderr
