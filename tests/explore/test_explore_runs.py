"""`molmag optimize` and `molmag scan`: configurations (errors name the file and the key),
calculators named in YAML (routed ML/reference pairs), the runs and their files, resuming, and
the templates."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from molmag.chem.builders import build
from molmag.chem.xtb import XTBCalculator
from molmag.cli.main import app
from molmag.explore.calculators import (
    CalculatorSpec,
    RoutedCalculator,
    StructureSpec,
    load_structure,
    make_calculator,
)
from molmag.explore.runs import (
    OptimizeConfig,
    ScanConfig,
    load_optimize_config,
    load_scan_config,
    scan_slopes,
)
from molmag.explore.templates import OPTIMIZE, SCAN
from molmag.physics.ligand_field import LigandFieldCalculator

runner = CliRunner()


@pytest.fixture(scope="module")
def cocl4_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("s") / "cocl4.xyz"
    ase.io.write(path, build("cocl4", relax=False), format="extxyz")
    return path


@pytest.fixture(scope="module")
def copdms_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("s") / "copdms.xyz"
    ase.io.write(path, build("co-pdms", relax=False), format="extxyz")
    return path


def _write(path, doc):
    path.write_text(yaml.safe_dump(doc))
    return path


def test_templates_are_valid_configurations(tmp_path):
    for name, text, model in (("optimize", OPTIMIZE, OptimizeConfig), ("scan", SCAN, ScanConfig)):
        res = runner.invoke(app, ["template", name, "-o", str(tmp_path / f"{name}.yaml")])
        assert res.exit_code == 0, res.output
        assert (tmp_path / f"{name}.yaml").read_text() == text
        model.model_validate(yaml.safe_load(text))


def test_config_errors_name_the_file_and_the_key(tmp_path, cocl4_file):
    bad = _write(tmp_path / "o.yaml", {"structure": {"file": str(cocl4_file)},
                                       "energy": {"xtb": {}}, "anisotropy": {"ligand_field": {}},
                                       "pso": {"n_particle": 3}})
    with pytest.raises(ValueError, match=r"o\.yaml: pso\.n_particle: unknown key"):
        load_optimize_config(bad)
    both = _write(tmp_path / "b.yaml", {"structure": {"file": str(cocl4_file)},
                                        "energy": {"xtb": {}, "model": "m.npz"},
                                        "anisotropy": {"ligand_field": {}}})
    with pytest.raises(ValueError, match="exactly one of 'model', 'xtb' or 'ligand_field'"):
        load_optimize_config(both)
    nostruct = _write(tmp_path / "n.yaml", {"structure": {}, "calculators": {"LF": {
        "ligand_field": {}}}})
    with pytest.raises(ValueError, match="exactly one of 'builder' or 'file'"):
        load_scan_config(nostruct)
    missing = _write(tmp_path / "m.yaml", {"structure": {"file": str(cocl4_file)},
                                           "energy": {"model": "nowhere/model.npz"},
                                           "anisotropy": {"ligand_field": {}}})
    cfg = load_optimize_config(missing)
    assert cfg.energy.model == str(tmp_path / "nowhere" / "model.npz")  # relative to the file
    res = runner.invoke(app, ["optimize", str(missing)])
    assert res.exit_code == 1
    assert "no model file at" in res.output and "nowhere/model.npz" in res.output


def test_structure_without_charge_is_refused(tmp_path):
    a = build("cocl4", relax=False)
    a.info = {}
    ase.io.write(tmp_path / "x.xyz", a, format="xyz")
    with pytest.raises(ValueError, match=r"x\.xyz: no charge"):
        load_structure(StructureSpec(file=str(tmp_path / "x.xyz")))


def test_routed_calculator_takes_each_property_from_its_engine(cocl4_file):
    start = load_structure(StructureSpec(file=str(cocl4_file)))
    routed = make_calculator([CalculatorSpec(xtb={}), CalculatorSpec(ligand_field={})], start)
    assert isinstance(routed, RoutedCalculator)
    moved = start.copy()
    moved.positions[1] += [0.05, -0.02, 0.03]
    e = routed.get_property("energy", moved.copy())
    d = routed.get_property("zfs_D", moved.copy())
    assert e == pytest.approx(XTBCalculator().get_property("energy", moved.copy()), abs=1e-8)
    lf = LigandFieldCalculator(donors=start.info["donor_indices"])
    assert d == pytest.approx(lf.get_property("zfs_D", moved.copy()), abs=1e-9)
    # the ligand-field calculator keeps the start's donors
    assert make_calculator(CalculatorSpec(ligand_field={}), start).parameters["donors"] == \
        [int(i) for i in start.info["donor_indices"]]


def test_optimize_cli_runs_writes_and_resumes(tmp_path, cocl4_file):
    cfg = _write(tmp_path / "opt.yaml", {
        "structure": {"file": str(cocl4_file)}, "energy": {"xtb": {}},
        "anisotropy": {"ligand_field": {}}, "reference": {"ligand_field": {}},
        "gammas": [0.0, 0.05], "pso": {"n_particles": 4, "n_steps": 3, "seed": 1,
                                       "init_displacement": 0.03},
        "output": "out"})
    res = runner.invoke(app, ["optimize", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "PSO optimum per gamma" in res.output and "most changed internal" in res.output
    out = tmp_path / "out"
    rows = json.loads((out / "gamma_table.json").read_text())
    assert [r["gamma_eV_per_cm-1"] for r in rows] == [0.0, 0.05]
    # gamma > 0 never ends less axial than the start (particle 0 is the start)
    assert rows[1]["zfs_D_cm-1"] <= rows[1]["zfs_D_start_cm-1"] + 1e-9
    # the reference re-computation is the ligand-field D of the written optimum
    opt = ase.io.read(out / "optimum_gamma_1.xyz")
    start = ase.io.read(cocl4_file)
    d = LigandFieldCalculator(donors=[1, 2, 3, 4]).get_property("zfs_D", opt)
    assert rows[1]["reference_zfs_D_cm-1"] == pytest.approx(d, abs=1e-6)
    assert rows[1]["reference_zfs_D_cm-1"] == pytest.approx(rows[1]["zfs_D_cm-1"], abs=1e-6)
    assert len(ase.io.read(out / "pso_gamma_1_path.extxyz", ":")) == 4
    assert (out / "pso_convergence.png").stat().st_size > 1000
    assert np.max(np.abs(opt.positions - start.positions)) <= 0.2 + 1e-12
    # a second run resumes from the checkpoints: same numbers, no new evaluations
    res2 = runner.invoke(app, ["optimize", str(cfg)])
    assert res2.exit_code == 0, res2.output
    rows2 = json.loads((out / "gamma_table.json").read_text())
    for a, b in zip(rows, rows2):
        assert a["chi_eV"] == b["chi_eV"] and a["zfs_D_cm-1"] == b["zfs_D_cm-1"]


def test_scan_cli_grid_reference_and_plots(tmp_path, copdms_file):
    cfg = _write(tmp_path / "scan.yaml", {
        "structure": {"file": str(copdms_file)},
        "calculators": {"LF": {"ligand_field": {}}},
        "offsets1": {"start": -0.05, "stop": 0.05, "n": 3},
        "offsets2": {"start": -2.0, "stop": 2.0, "n": 3},
        "properties": ["zfs_D"], "output": "sc"})
    res = runner.invoke(app, ["scan", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "3 x 3 scan" in res.output
    from molmag.explore.scan import Scan2DResult

    r = Scan2DResult.load(tmp_path / "sc" / "scan")
    start = ase.io.read(copdms_file)
    d0 = LigandFieldCalculator(donors=start.info["donor_indices"].tolist()).get_property(
        "zfs_D", start)
    assert r.reference["LF"]["zfs_D"] == pytest.approx(d0, abs=1e-8)
    assert r.grid("LF", "zfs_D")[1, 1] == pytest.approx(d0, abs=1e-6)  # zero offsets
    assert (tmp_path / "sc" / "scan_zfs_D.png").is_file()
    s = scan_slopes(r, "LF")
    g = r.grid("LF", "zfs_D")
    assert s["d_dq2"] == pytest.approx((g[1, 2] - g[1, 0]) / 4.0, rel=1e-9)
    # --points overrides the grid size (a new scan: the checkpoint is of another grid)
    res = runner.invoke(app, ["scan", str(cfg), "--points", "2", "-o", str(tmp_path / "sc2")])
    assert res.exit_code == 0, res.output
    assert Scan2DResult.load(tmp_path / "sc2" / "scan").shape == (2, 2)
