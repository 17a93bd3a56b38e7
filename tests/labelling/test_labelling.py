"""The labelling pipeline: config validation, labels equal the calculators', resume after a
crash or a kill, per-structure failures recorded and skipped, Dask and serial agree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.io import write
from typer.testing import CliRunner

from molmag.chem.xtb import XTBCalculator
from molmag.cli.main import app
from molmag.io.dataset import Dataset
from molmag.labelling import LabelRun, load_label_config
from molmag.labelling.cluster import Executor
from molmag.physics.ligand_field import LigandFieldCalculator

runner = CliRunner()


def cocl4(scale: float = 1.0, jitter: float = 0.0, seed: int = 0) -> Atoms:
    """Tetrahedral [CoCl4]2- (Co-Cl 2.28 A), optionally displaced."""
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    pos = np.vstack([[0, 0, 0], 2.28 * scale * v])
    pos += np.random.default_rng(seed).uniform(-jitter, jitter, pos.shape)
    return Atoms("CoCl4", positions=pos, info={"charge": -2, "multiplicity": 4})


def znl(seed: int = 0) -> Atoms:
    """[ZnCl4]2-: xTB works, the ligand-field engine refuses Zn (a labeller failure)."""
    a = cocl4(jitter=0.05, seed=seed)
    a.numbers[0] = 30
    a.info["multiplicity"] = 1
    return a


def write_frames(path: Path, frames) -> None:
    write(path, frames, format="extxyz")


def config(tmp_path: Path, source: dict, labels=None, **extra) -> Path:
    cfg = {"output": "out.db", "sources": [source],
           "labels": labels or {"xtb": {"properties": ["energy", "forces", "charges"]},
                                "ligand_field": {}},
           "cluster": {"kind": "serial"}, "batch_size": 2, **extra}
    p = tmp_path / "label.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.fixture
def frames_file(tmp_path):
    frames = [cocl4(jitter=0.08, seed=s) for s in range(6)]
    path = tmp_path / "cocl4.xyz"
    write_frames(path, frames)
    return path, frames


# -- configuration ------------------------------------------------------------------------
def test_config_errors_name_file_and_key(tmp_path, frames_file):
    p = config(tmp_path, {"file": str(frames_file[0]), "bogus": 1})
    with pytest.raises(ValueError, match=r"label\.yaml: sources\.0\.bogus: unknown key"):
        load_label_config(p)
    p = config(tmp_path, {"file": "a.xyz", "builder": "cocl4"})
    with pytest.raises(ValueError, match="exactly one of 'builder', 'file' or 'dataset'"):
        load_label_config(p)
    p = config(tmp_path, {"file": "a.xyz"},
               labels={"ligand_field": {"point_charges": "xtb"}})
    with pytest.raises(ValueError, match="needs the xtb labeller with 'charges'"):
        load_label_config(p)
    p = config(tmp_path, {"builder": "cocl4", "sampler": {"kind": "displacements",
                                                          "deltas": [-0.1]}})
    with pytest.raises(ValueError, match="deltas"):
        load_label_config(p)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_label_config(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_config(tmp_path, frames_file):
    cfg = load_label_config(config(tmp_path, {"file": "cocl4.xyz", "charge": -2,
                                              "multiplicity": 4}))
    assert cfg.output == str(tmp_path / "out.db")
    assert cfg.sources[0].file == str(frames_file[0])


def test_templates_validate(tmp_path):
    for system in ("co-pdms", "dy-ligands"):
        out = tmp_path / f"{system}.yaml"
        r = runner.invoke(app, ["template", "label", "--system", system, "--out", str(out)])
        assert r.exit_code == 0, r.output
        cfg = load_label_config(out)
        assert cfg.cluster.kind == "local"
    cfg = load_label_config(tmp_path / "co-pdms.yaml")
    assert cfg.sources[0].builder == "co-pdms"
    assert cfg.sources[0].sampler.deltas == [0.05, 0.1, 0.2]
    assert cfg.sources[0].sampler.count() == 1501
    cfg = load_label_config(tmp_path / "dy-ligands.yaml")
    assert cfg.sources[0].ligands[0] == "O=P(NC(C)C)(NC(C)C)C(C)(C)C"
    r = runner.invoke(app, ["template", "label", "--system", "nope"])
    assert r.exit_code == 1 and "co-pdms" in r.output


# -- labels --------------------------------------------------------------------------------
def test_labels_equal_direct_calculators(tmp_path, frames_file):
    path, frames = frames_file
    labels = {"xtb": {"properties": ["energy", "forces", "charges", "dipole",
                                     "polarizabilities"]}, "ligand_field": {}}
    cfg = load_label_config(config(tmp_path, {"file": str(path)}, labels=labels))
    s = LabelRun(cfg).run()
    assert s.labelled == 6 and not s.failures_new
    ds = Dataset(cfg.output)
    assert len(ds) == 6
    for rec in ds.select():
        a = rec.atoms.copy()
        a.info.update(charge=-2, multiplicity=4)
        calc = XTBCalculator()
        calc.calculate(a, ["energy", "polarizabilities"])
        assert rec.labels["energy"] == pytest.approx(calc.results["energy"], abs=1e-8)
        np.testing.assert_allclose(rec.labels["forces"], calc.results["forces"], atol=1e-8)
        np.testing.assert_allclose(rec.labels["dipole"], calc.results["dipole"], atol=1e-8)
        np.testing.assert_allclose(rec.labels["polarizabilities"],
                                   calc.results["polarizabilities"], rtol=1e-10)
        assert rec.labels["charges"].sum() == pytest.approx(-2, abs=1e-6)
        lf = LigandFieldCalculator(charge=-2, multiplicity=4).get_property("zfs_tensor", a)
        np.testing.assert_allclose(rec.labels["zfs_tensor"], lf, atol=1e-10)
        assert rec.provenance["energy"].method == "GFN2-xTB"
        assert rec.provenance["energy"].program == "tblite"
        assert rec.provenance["polarizabilities"].program == "dftd4"
        assert rec.provenance["zfs_tensor"].parameters["ion"] == "Co2+"
        assert rec.tags["source"] == f"file:{path}"


class InterruptAfter(Executor):
    """Serial executor that dies (KeyboardInterrupt) after ``n`` finished tasks."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def map_unordered(self, fn, tasks, done, failed):
        for meta, args in tasks:
            if self.calls == self.n:
                raise KeyboardInterrupt
            self.calls += 1
            done(meta, fn(*args))


class Counting(Executor):
    def __init__(self):
        self.structures = 0

    def map_unordered(self, fn, tasks, done, failed):
        def counted():
            for meta, args in tasks:
                self.structures += len(args[0])
                yield meta, args
        super().map_unordered(fn, counted(), done, failed)


def test_resume_after_interrupt_recomputes_nothing(tmp_path, frames_file):
    path, _ = frames_file
    cfg = load_label_config(config(tmp_path, {"file": str(path)}))
    with pytest.raises(KeyboardInterrupt):
        LabelRun(cfg, executor=InterruptAfter(2)).run()
    ds = Dataset(cfg.output)
    assert ds.count("has_energy=True") == 4          # two batches of two were written
    first = {r.id: r.labels["energy"] for r in ds.select("has_energy=True")}
    counter = Counting()
    s = LabelRun(cfg, executor=counter).run()
    assert counter.structures == 2                    # only the missing ones
    assert s.labelled == 2 and s.already_labelled == 4
    assert ds.count("has_energy=True,has_zfs_tensor=True") == 6 and len(ds) == 6
    for rid, e in first.items():
        assert ds.get(rid).labels["energy"] == e       # untouched
    counter = Counting()
    s = LabelRun(cfg, executor=counter).run()
    assert counter.structures == 0 and s.already_labelled == 6


def test_failures_recorded_skipped_and_retried(tmp_path, frames_file):
    path, frames = frames_file
    mixed = tmp_path / "mixed.xyz"
    write_frames(mixed, frames[:2] + [znl(1)])
    cfg = load_label_config(config(tmp_path, {"file": str(mixed)}))
    s = LabelRun(cfg).run()
    assert len(s.failures_new) == 1
    (key, reason), = s.failures_new.items()
    assert key.endswith(":ligand_field") and "Zn0 is not a 3d ion" in reason
    ds = Dataset(cfg.output)
    assert ds.count("has_energy=True") == 3           # xTB still labelled the Zn row
    assert ds.count("has_zfs_tensor=True") == 2
    f = ds.failures()
    assert f[key]["stage"] == "ligand_field"
    counter = Counting()
    s = LabelRun(cfg, executor=counter).run()
    assert counter.structures == 0 and s.failures_skipped == 1
    cfg.retry_failed = True
    counter = Counting()
    s = LabelRun(cfg, executor=counter).run()
    assert counter.structures == 1 and len(s.failures_new) == 1
    r = runner.invoke(app, ["data", "failures", cfg.output])
    assert r.exit_code == 0 and "ligand_field" in r.output
    r = runner.invoke(app, ["data", "stats", cfg.output])
    assert "recorded failures" in r.output and "ligand_field 1" in r.output


def test_xtb_failure_is_recorded_not_fatal(tmp_path, frames_file):
    path, frames = frames_file
    labels = {"xtb": {"properties": ["energy"], "max_iterations": 1}}
    cfg = load_label_config(config(tmp_path, {"file": str(path)}, labels=labels))
    # one SCF iteration never converges; the retry (1000 iterations) then succeeds
    s = LabelRun(cfg).run()
    assert s.labelled == 6 and not s.failures_new
    rec = next(Dataset(cfg.output).select())
    assert rec.provenance["energy"].parameters["retry_settings"]["max_iterations"] == 1000


def test_dataset_source_in_place_and_copy(tmp_path, frames_file):
    path, _ = frames_file
    src = tmp_path / "src.db"
    runner.invoke(app, ["data", "import", str(path), "--db", str(src)])
    cfg = load_label_config(config(tmp_path, {"dataset": str(src)},
                                   labels={"ligand_field": {}}, output=str(src)))
    s = LabelRun(cfg).run()
    assert s.labelled == 6 and len(Dataset(src)) == 6
    cfg = load_label_config(config(tmp_path, {"dataset": str(src), "group": "copied"},
                                   labels={"xtb": {"properties": ["energy"]}}))
    LabelRun(cfg).run()
    out = Dataset(cfg.output)
    assert out.count("has_energy=True,has_zfs_tensor=True,group=copied") == 6


def test_dask_local_cluster_matches_serial(tmp_path, frames_file):
    path, _ = frames_file
    p = config(tmp_path, {"file": str(path)}, cluster={"kind": "local", "n_workers": 2})
    cfg = load_label_config(p)
    s = LabelRun(cfg).run()
    assert s.workers == 2 and s.labelled == 6
    serial = load_label_config(config(tmp_path, {"file": str(path)}, output="serial.db"))
    LabelRun(serial).run()
    a = {r.hash: r for r in Dataset(cfg.output).select()}
    b = {r.hash: r for r in Dataset(serial.output).select()}
    assert a.keys() == b.keys()
    for h in a:
        assert a[h].labels["energy"] == pytest.approx(b[h].labels["energy"], abs=1e-8)
        np.testing.assert_allclose(a[h].labels["zfs_tensor"], b[h].labels["zfs_tensor"],
                                   atol=1e-9)


def test_cli_kill_and_resume(tmp_path):
    """`molmag label` killed with SIGKILL mid-run, then resumed: all rows labelled once."""
    frames = [cocl4(jitter=0.08, seed=s) for s in range(40)]
    path = tmp_path / "many.xyz"
    write_frames(path, frames)
    p = config(tmp_path, {"file": str(path)}, batch_size=1)
    db = tmp_path / "out.db"
    exe = [sys.executable, "-m", "molmag.cli", "label", str(p), "--serial"]
    proc = subprocess.Popen(exe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if db.exists():
                try:
                    if Dataset(db).count("has_energy=True") >= 5:
                        break
                except Exception:
                    pass
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = Dataset(db).count("has_energy=True")
    assert 5 <= partial < 40, partial
    r = subprocess.run(exe, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ds = Dataset(db)
    assert len(ds) == 40 and ds.count("has_energy=True,has_zfs_tensor=True") == 40
    assert "already labelled" in r.stdout


# -- builder sources ------------------------------------------------------------------------
def test_builder_with_sampler_then_resume(tmp_path):
    src = {"builder": "cocl4", "relax": False,
           "sampler": {"kind": "displacements", "deltas": [0.05, 0.1], "n": 3, "seed": 7}}
    cfg = load_label_config(config(tmp_path, src))
    s = LabelRun(cfg).run()
    assert s.built == 1 and s.rows_added == 7 and s.labelled == 7
    ds = Dataset(cfg.output)
    assert ds.count("group=base") == 1
    assert ds.count("group=disp0.05") == 3 and ds.count("group=disp0.1") == 3
    base = next(ds.select("group=base")).atoms.positions
    for rec in ds.select("group=disp0.1"):
        d = rec.atoms.positions - base
        assert np.abs(d).max() <= 0.1 and rec.tags["delta_A"] == 0.1
        assert rec.tags["source"] == "build:cocl4" and rec.tags["builder"] == "cocl4"
    counter = Counting()
    s = LabelRun(cfg, executor=counter).run()
    assert s.built == 0 and s.build_skipped == 1 and counter.structures == 0
    assert len(ds) == 7


def test_ligand_builds_failures_recorded(tmp_path):
    src = {"builder": "dy-h2o5l2", "relax": False,
           "ligands": ["O=P(C)(C)C", "C(C)C", "not a smiles"]}
    cfg = load_label_config(config(tmp_path, src, labels={"crystal_field": {}}))
    s = LabelRun(cfg).run()
    assert s.built == 1 and set(s.failures_new) == {"build:dy-h2o5l2:C(C)C",
                                                      "build:dy-h2o5l2:not a smiles"}
    ds = Dataset(cfg.output)
    rec = next(ds.select())
    assert rec.tags["ligand"] == "O=P(C)(C)C" and rec.multiplicity == 6 and rec.charge == 3
    assert len(rec.labels["kd_energies"]) == 8
    assert rec.labels["cf_parameters"]["convention"] == "stevens"
    fails = ds.failures()
    assert "not a smiles" in fails["build:dy-h2o5l2:not a smiles"]["reason"]
    s = LabelRun(cfg).run()
    assert s.failures_skipped == 2 and s.built == 0


# -- clusters ------------------------------------------------------------------------------
def test_existing_scheduler_address(tmp_path, frames_file):
    from distributed import LocalCluster

    path, _ = frames_file
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        cfg = load_label_config(config(tmp_path, {"file": str(path)},
                                       labels={"ligand_field": {}}),
                                address=cluster.scheduler_address)
        assert cfg.cluster.kind == "address"
        s = LabelRun(cfg).run()
    assert s.labelled == 6 and s.workers == 1


def test_slurm_job_script_from_config(tmp_path):
    from molmag.labelling.cluster import slurm_cluster
    from molmag.labelling.config import ClusterConfig

    cfg = ClusterConfig(kind="slurm", jobs=2, threads_per_worker=2,
                        slurm={"queue": "compute", "account": "smm", "cores": 8,
                               "memory": "16GB", "walltime": "02:00:00"})
    with slurm_cluster(cfg) as cluster:
        script = cluster.job_script()
    assert "#SBATCH -p compute" in script and "#SBATCH -A smm" in script
    assert "#SBATCH -t 02:00:00" in script and "export OMP_NUM_THREADS=2" in script
    assert "--nworkers 4" in script  # 8 cores / 2 threads per worker
    with pytest.raises(ValueError, match="slurm.no_such_option"):      # typed settings
        ClusterConfig(kind="slurm", slurm={"no_such_option": 1})
    with pytest.raises(ValueError, match="cluster.slurm: Could not interpret 'lots'"):
        slurm_cluster(ClusterConfig(kind="slurm", slurm={"memory": "lots"}))


def test_md_and_normal_mode_samplers(tmp_path):
    src_md = {"builder": "cocl4", "sampler": {"kind": "md", "temperatures": [300.0], "n": 2,
                                              "interval": 2, "equilibration_steps": 4,
                                              "include_base": False}}
    src_nm = {"builder": "fecl5", "sampler": {"kind": "normal-modes", "temperatures": [100.0],
                                              "n": 3, "seed": 1}}
    p = config(tmp_path, src_md, labels={"xtb": {"properties": ["energy"]}})
    raw = yaml.safe_load(p.read_text())
    raw["sources"].append(src_nm)
    p.write_text(yaml.safe_dump(raw))
    s = LabelRun(load_label_config(p)).run()
    assert s.built == 2 and not s.failures_new
    ds = Dataset(tmp_path / "out.db")
    assert ds.count("group=md300K") == 2 and ds.count("group=base") == 1
    assert ds.count("group=nm100K") == 3 and ds.count("has_energy=True") == 6
    for rec in ds.select("group=md300K"):
        assert rec.tags["temperature_K"] == 300.0 and rec.tags["builder"] == "cocl4"
        assert rec.tags["kinetic_temperature_K"] > 0
