"""molmag.dynamics.spectra and `molmag spectra`: FFT correlation functions against the direct
O(N^2) sums, spectral peaks of known frequencies (MESA and Welch), equipartition of C_vv(0),
a real Langevin run whose spectrum peaks at the harmonic frequency of the same potential,
and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms, units
from md_files_helpers import CON4H4, write_run
from typer.testing import CliRunner

from molmag.cli.main import app
from molmag.dynamics.spectra import (
    WAVENUMBER_PER_INV_FS,
    autocorrelation,
    mesa_psd,
    pooled_autocorrelation,
    spectra_analysis,
    spectral_peaks,
    welch_psd,
)
from molmag.dynamics.trajectory import read_trajectories

runner = CliRunner()


def direct(x: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """sum_t x_t x_{t+k} and the pair counts, by the O(N^2) double loop."""
    n = len(x)
    s = np.zeros((max_lag + 1,) + x.shape[1:])
    c = np.zeros(max_lag + 1)
    for k in range(max_lag + 1):
        for t in range(n - k):
            s[k] += x[t] * x[t + k]
            c[k] += 1
    return s, c


def test_fft_autocorrelation_equals_direct_sum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(157, 3)) + 2.0  # a non-zero mean: no wrap-around may leak in
    s, c = direct(x, 156)
    np.testing.assert_allclose(autocorrelation(x), s / c[:, None], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(autocorrelation(x[:, 0], 20), (s / c[:, None])[:21, 0],
                               rtol=1e-10)
    # pooled over runs of different lengths: sums and pair counts add
    y = rng.normal(size=(60, 3))
    sy, cy = direct(y, 80 if len(y) > 80 else 59)
    pooled = pooled_autocorrelation([x, y], 80)
    ref = s[:81].copy()
    ref[:60] += sy[:60]
    cnt = c[:81].copy()
    cnt[:60] += cy[:60]
    np.testing.assert_allclose(pooled, ref / cnt[:, None], rtol=1e-10)


def wn_to_inv_fs(wn):
    return wn / WAVENUMBER_PER_INV_FS


def test_peaks_of_known_frequencies_mesa_and_welch():
    rng = np.random.default_rng(1)
    dt, n = 4.0, 4096
    t = np.arange(n) * dt
    x = (np.cos(2 * np.pi * wn_to_inv_fs(500.0) * t) + 0.8 * np.cos(2 * np.pi
         * wn_to_inv_fs(1500.0) * t + 1.0) + 0.5 * rng.normal(size=n))
    x /= x.std()
    wn = np.arange(0, WAVENUMBER_PER_INV_FS / (2 * dt), 1.0)
    s, order = mesa_psd(x, dt, wn)
    ww, pw = welch_psd(x[:, None], dt, 1024)
    bin_ = ww[1]
    assert bin_ == pytest.approx(WAVENUMBER_PER_INV_FS / (1024 * dt))
    for spec_wn, spec in ((wn, s), (ww, pw[:, 0])):
        top = sorted(p["wavenumber_cm-1"] for p in spectral_peaks(spec_wn, spec, n=2))
        assert top[0] == pytest.approx(500.0, abs=bin_)
        assert top[1] == pytest.approx(1500.0, abs=bin_)
    # the one-sided densities per cm-1 of a unit-variance series integrate to 1 (Welch),
    # and MESA of white noise is flat at 1 / Nyquist
    assert np.trapezoid(pw[:, 0], ww) == pytest.approx(1.0, rel=0.02)
    white, _ = mesa_psd(rng.normal(size=n), dt, wn)
    assert white.mean() * wn[-1] == pytest.approx(1.0, rel=0.05)
    # MESA resolves a line far more finely than the data's FFT grid 1/(n dt) (28 cm-1 here)
    short = np.cos(2 * np.pi * wn_to_inv_fs(510.0) * t[:300] + 0.3) + 0.2 * rng.normal(size=300)
    s, _ = mesa_psd(short / short.std(), dt, wn)
    assert spectral_peaks(wn, s, n=1)[0]["wavenumber_cm-1"] == pytest.approx(510.0, abs=6)


def test_analysis_of_a_run_with_known_frequencies(tmp_path):
    """Velocities and D_ij oscillating at known wavenumbers, written in the format: both
    spectra peak there, C_DD (about the mean tensor) first crosses -1 at half a period."""
    rng = np.random.default_rng(2)
    dt, n = 4.0, 2048
    t = np.arange(n) * dt
    nat = len(CON4H4)
    ph = rng.uniform(0, 2 * np.pi, (2, nat, 3))
    v = (np.cos(2 * np.pi * wn_to_inv_fs(700.0) * t[:, None, None] + ph[0])
         + np.cos(2 * np.pi * wn_to_inv_fs(1600.0) * t[:, None, None] + ph[1])) * 1e-3
    v += rng.normal(0, 2e-4, v.shape)
    mom = v / units.fs * CON4H4.get_masses()[None, :, None]
    dD = 2.0 * np.cos(2 * np.pi * wn_to_inv_fs(300.0) * t) + rng.normal(0, 0.05, n)
    ten = np.tile(np.diag([20.0, 30.0, -70.0]), (n, 1, 1)) + dD[:, None, None] * np.eye(3)
    pos = np.repeat(CON4H4.positions[None], n, axis=0)
    write_run(tmp_path / "r0", CON4H4, pos, temperature_K=50, frame_fs=dt, momenta=mom,
              tensors=ten)
    res = spectra_analysis(read_trajectories([tmp_path / "r0.extxyz"]))["50"]
    welch_bin = res.welch_wavenumbers[1]
    pk = res.peaks()
    for name, want in (("vv_mesa", (700, 1600)), ("vv_welch", (700, 1600)),
                       ("DD_mesa", (300,)), ("DD_welch", (300,))):
        got = sorted(p["wavenumber_cm-1"] for p in pk[name][:len(want)])
        np.testing.assert_allclose(got, want, atol=welch_bin, err_msg=name)
    # C_DD: the six elements' fluctuations are 0 (off-diagonal) or cos(w t): eq. 15 averages
    # the three non-constant ones, so C_DD = cos(2 pi c nu t) up to the unbiased estimate
    half = 1 / (2 * wn_to_inv_fs(300.0))  # fs
    k = int(round(half / dt))
    assert res.C_DD[0] == pytest.approx(1.0)
    assert res.C_DD[k] == pytest.approx(np.cos(2 * np.pi * wn_to_inv_fs(300.0) * k * dt),
                                        abs=0.02)
    assert res.C_vv[0] == pytest.approx(1.0)


def test_cvv0_is_equipartition_on_maxwell_boltzmann_frames(tmp_path):
    rng = np.random.default_rng(3)
    T, n = 80.0, 1500
    m = CON4H4.get_masses()
    mom = rng.normal(size=(n, len(m), 3)) * np.sqrt(m * units.kB * T)[None, :, None]
    pos = np.repeat(CON4H4.positions[None], n, axis=0)
    write_run(tmp_path / "mb", CON4H4, pos, temperature_K=T, momenta=mom)
    res = spectra_analysis(read_trajectories([tmp_path / "mb.extxyz"]), max_lag_ps=0.05)["80"]
    three_nkt = 3 * len(m) * units.kB * T
    assert res.dof == 3 * len(m)  # the centre of mass moves in these frames
    assert res.equipartition_eV == pytest.approx(three_nkt)
    # sum_i m_i <v_i.v_i> = 3 N k_B T within 4 standard errors (chi^2 with 3 N n dof)
    assert res.C_vv_mw_eV[0] == pytest.approx(three_nkt, rel=4 * np.sqrt(2 / (3 * len(m) * n)))
    assert res.C_vv[0] == pytest.approx(1.0)
    # uncorrelated frames: C_vv(t > 0) is noise of size 1/sqrt(3 N n)
    assert np.max(np.abs(res.C_vv[1:])) < 5 / np.sqrt(3 * len(m) * n)
    assert res.C_DD is None  # no tensors in the run
    # the centre of mass held fixed (molmag md's FixCom): 3 N - 3 degrees of freedom
    mom -= m[None, :, None] * (mom.sum(axis=1) / m.sum())[:, None, :]
    write_run(tmp_path / "com", CON4H4, pos, temperature_K=T, momenta=mom)
    res = spectra_analysis(read_trajectories([tmp_path / "com.extxyz"]), max_lag_ps=0.05)["80"]
    assert res.dof == 3 * len(m) - 3
    assert res.C_vv_mw_eV[0] == pytest.approx(res.equipartition_eV,
                                              rel=4 * np.sqrt(2 / (res.dof * n)))


def test_langevin_spectrum_peaks_at_the_harmonic_frequency(tmp_path):
    """N2 with ASE's EMT, 100 K Langevin: the velocity spectrum's peak is the harmonic
    wavenumber of the same potential (molmag.dynamics.vibrations), within a Welch bin."""
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin

    from molmag.chem.sampling import maxwell_boltzmann
    from molmag.dynamics.vibrations import vibrations

    a = Atoms("N2", positions=[[0, 0, 0], [0, 0, 1.1]])
    modes = vibrations(a, EMT(), relax=True, fmax=1e-4)
    harmonic = float(modes.frequencies_cm1[modes.frequencies_cm1 > 0][-1])
    atoms = modes.atoms.copy()
    atoms.calc = EMT()
    maxwell_boltzmann(atoms, 100, rng=np.random.default_rng(4))
    md = Langevin(atoms, 1.0 * units.fs, temperature_K=100, friction=0.002 / units.fs, fixcm=False,
                  rng=np.random.default_rng(5))
    pos, mom = [], []
    for _ in range(2000):
        md.run(1)
        pos.append(atoms.positions.copy())
        mom.append(atoms.get_momenta())
    write_run(tmp_path / "n2", atoms, np.array(pos), temperature_K=100, frame_fs=1.0,
              momenta=np.array(mom), side={"metal_index": None})
    res = spectra_analysis(read_trajectories([tmp_path / "n2.extxyz"]))["100"]
    bin_ = res.welch_wavenumbers[1]
    # above the rotations and translations (the low-wavenumber part of the spectrum)
    for name in ("vv_mesa", "vv_welch"):
        top = [p["wavenumber_cm-1"] for p in res.peaks()[name] if p["wavenumber_cm-1"] > 300]
        assert top[0] == pytest.approx(harmonic, abs=bin_), name


def test_cli_with_frequencies_file_and_bad_input(tmp_path):
    rng = np.random.default_rng(6)
    n, dt = 400, 5.0
    t = np.arange(n) * dt
    m = CON4H4.get_masses()
    v = np.cos(2 * np.pi * wn_to_inv_fs(900.0) * t)[:, None, None] * 1e-3 + rng.normal(
        0, 1e-4, (n, len(m), 3))
    ten = np.tile(np.diag([20.0, 30.0, -70.0]), (n, 1, 1)) + rng.normal(0, 1, (n, 3, 3))
    ten = (ten + ten.transpose(0, 2, 1)) / 2
    pos = np.repeat(CON4H4.positions[None], n, axis=0)
    for r in range(2):
        write_run(tmp_path / f"T50_run{r}", CON4H4, pos, temperature_K=50, frame_fs=dt,
                  momenta=v / units.fs * m[None, :, None], tensors=ten)
    vib = tmp_path / "vib.json"
    vib.write_text(json.dumps({"modes": [{"mode": 0, "wavenumber_cm-1": -20.0,
                                          "imaginary": True},
                                         {"mode": 1, "wavenumber_cm-1": 905.0,
                                          "imaginary": False}]}))
    out = tmp_path / "out"
    runs = [str(tmp_path / "T50_run0.extxyz"), str(tmp_path / "T50_run1.extxyz")]
    r = runner.invoke(app, ["spectra", *runs, "--frequencies", str(vib), "--out", str(out),
                            "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["harmonic_cm-1"] == [905.0]  # the imaginary mode is not drawn
    s = res["temperatures"]["50"]
    assert s["n_runs"] == 2 and s["n_frames"] == [400, 400]
    assert s["peaks"]["vv_mesa"][0]["wavenumber_cm-1"] == pytest.approx(
        900.0, abs=s["welch_resolution_cm-1"])
    z = np.load(out / "spectra.npz")
    assert z["T50_C_vv"][0] == pytest.approx(1.0) and "T50_S_DD_mesa" in z
    assert (out / "spectra.png").stat().st_size > 1000
    assert json.loads((out / "spectra.json").read_text())["temperatures"]["50"]["n_runs"] == 2
    r = runner.invoke(app, ["spectra", *runs])
    assert r.exit_code == 0 and "f k_B T" in r.output
    # bad input: not a vibrations JSON; runs stored at other intervals; too short
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frequencies": [1, 2]}))
    r = runner.invoke(app, ["spectra", runs[0], "--frequencies", str(bad)])
    assert r.exit_code == 1 and "not a molmag vibrations JSON" in r.output
    write_run(tmp_path / "T50_run2", CON4H4, pos, temperature_K=50, frame_fs=2 * dt,
              momenta=v / units.fs * m[None, :, None], tensors=ten)
    r = runner.invoke(app, ["spectra", runs[0], str(tmp_path / "T50_run2.extxyz")])
    assert r.exit_code == 1 and "10 fs apart" in r.output
    write_run(tmp_path / "short", CON4H4, pos[:10], temperature_K=50, frame_fs=dt,
              momenta=(v / units.fs * m[None, :, None])[:10])
    r = runner.invoke(app, ["spectra", str(tmp_path / "short.extxyz")])
    assert r.exit_code == 1 and "spectra need >= 16" in r.output
    r = runner.invoke(app, ["spectra", runs[0], "--max-lag-ps", "-1"])
    assert r.exit_code == 1 and "max lag -1" in r.output
    r = runner.invoke(app, ["spectra", runs[0], "--potential", str(tmp_path / "none.npz")])
    assert r.exit_code == 1 and "neither xtb nor a model file" in r.output
    r = runner.invoke(app, ["spectra", runs[0], "--potential", "xtb", "--frequencies", str(vib)])
    assert r.exit_code == 1 and "not both" in r.output
