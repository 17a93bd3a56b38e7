import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from typer.testing import CliRunner

from molmag.cli.main import app

runner = CliRunner()

TET_ANGLES = [(54.7356103, 45), (54.7356103, 225), (125.2643897, 135), (125.2643897, 315)]


def run(*args, ok=True):
    r = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert r.exit_code == 0, r.output
    return r


def test_lf_levels_octahedral_nickel_json():
    ligs = []
    for th, ph in [(90, 0), (90, 180), (90, 90), (90, 270), (0, 0), (180, 0)]:
        ligs += ["--ligand", f"3500,500,500,{th},{ph}"]
    out = json.loads(run("lf", "levels", "--ion", "Ni2+", *ligs, "--json").stdout)
    assert out["S"] == 1.0
    sf = np.array(out["energies_spin_free"])
    # 3A2g (3 states) then 3T2g at 10Dq = 3 e_sigma - 4 e_pi = 8500 cm-1 (9 states)
    np.testing.assert_allclose(sf[:3], 0, atol=1e-6)
    np.testing.assert_allclose(sf[3:12], 8500.0, rtol=1e-9)
    assert abs(out["D"]) < 1e-6
    assert set(out) >= {"energies_spin_free", "energies", "D", "E", "tensor", "g_tensor"}


def test_lf_levels_tetrahedral_cobalt_and_trigonal_distortion():
    ligs = []
    for th, ph in TET_ANGLES:
        ligs += ["--ligand", f"3300,800,800,{th},{ph}"]
    out = json.loads(run("lf", "levels", "--ion", "Co2+", "--B", "800", "--C", "3200",
                         "--zeta", "500", "--k", "1", *ligs, "--json").stdout)
    assert out["parameters"]["B"] == 800 and out["parameters"]["zeta"] == 500
    sf = np.array(out["energies_spin_free"])
    # 4A2 ground, 4T2 at 10Dq_t = 4/3 e_sigma - 16/9 e_pi
    assert sf[4] == pytest.approx(4 / 3 * 3300 - 16 / 9 * 800, rel=1e-6)
    assert abs(out["D"]) < 1e-3
    # flatten the tetrahedron along z (compression): axial D appears, E = 0
    ligs = []
    for th, ph in [(62, 45), (62, 225), (118, 135), (118, 315)]:
        ligs += ["--ligand", f"3300,800,800,{th},{ph}"]
    out = json.loads(run("lf", "levels", "--ion", "Co2+", *ligs, "--json").stdout)
    assert abs(out["D"]) > 1.0 and out["E/D"] < 1e-6
    assert abs(abs(out["axes"][2][2]) - 1) < 1e-9


def test_lf_levels_errors():
    r = run("lf", "levels", "--ion", "Xx9+", "--ligand", "1,2,3,4,5", ok=False)
    assert r.exit_code == 1 and "unsupported ion" in r.output
    r = run("lf", "levels", "--ion", "Co2+", "--ligand", "1,2,3", ok=False)
    assert r.exit_code == 1 and "expected 5 or 6 numbers" in r.output
    r = run("lf", "levels", "--ion", "Co2+", "--ligand", "a,b,c,d,e", ok=False)
    assert r.exit_code == 1 and "expected numbers" in r.output
    assert "Traceback" not in r.output


def test_lf_zfs_structure(tmp_path):
    d = 2.28 / np.sqrt(3)
    a = Atoms("CoCl4", positions=[[0, 0, 0], [d, d, d * 0.8], [-d, -d, d * 0.8],
                                   [-d, d, -d * 0.8], [d, -d, -d * 0.8]])
    a.info.update(charge=-2, multiplicity=4)
    f = tmp_path / "cocl4.extxyz"
    write(f, a, format="extxyz")
    out = json.loads(run("lf", "zfs", f, "--json").stdout)
    assert set(out) >= {"D", "E", "E/D", "tensor", "axes", "g_tensor", "parameters"}
    assert out["parameters"]["ion"] == "Co2+"
    assert [x["type"] for x in out["parameters"]["donors"]] == ["Cl"] * 4
    t = np.array(out["tensor"])
    assert np.trace(t) == pytest.approx(0, abs=1e-9)
    assert out["E/D"] < 1e-6  # D2d
    assert "donors" in run("lf", "zfs", f).output
    r = run("lf", "zfs", tmp_path / "missing.xyz", ok=False)
    assert r.exit_code == 1 and "no such file" in r.output
    r = run("lf", "zfs", f, "--multiplicity", "2", ok=False)
    assert r.exit_code == 1 and "multiplicity" in r.output
    q = tmp_path / "q.txt"
    q.write_text("1.0\n" + "-0.75\n" * 4)
    pc = json.loads(run("lf", "zfs", f, "--outer-charges", q, "--json").stdout)
    assert pc["parameters"]["point_charges"]["atoms"] == 0  # all Cl are donors: nothing beyond
    q.write_text("1.0\n")
    r = run("lf", "zfs", f, "--outer-charges", q, ok=False)
    assert r.exit_code == 1 and "one charge per atom" in r.output
    w = tmp_path / "water.xyz"
    write(w, Atoms("H2O", positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]]))
    r = run("lf", "zfs", w, ok=False)
    assert r.exit_code == 1 and "no transition metal" in r.output
