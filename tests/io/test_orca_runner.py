"""`molmag orca write/run` end to end, with a stand-in `orca` executable (ORCA itself is not
installable here) that prints an ORCA-6-layout CASSCF/QDPT output for the input's geometry."""

from __future__ import annotations

import json
import os
import stat
import sys

import numpy as np
import pytest
from ase import Atoms
from typer.testing import CliRunner

from molmag.cli.main import app
from molmag.io import Dataset, Record
from molmag.io.orca.runner import OrcaNotFound, find_orca, run_orca_folders

runner = CliRunner()

FAKE_ORCA = r'''#!{python}
"""Stand-in for ORCA: echoes the geometry and prints one ZFS block whose D depends on it."""
import sys, pathlib, numpy as np
inp = pathlib.Path(sys.argv[1])
calls = pathlib.Path(__file__).with_suffix(".calls")
with open(calls, "a") as fh:        # append: two jobs may run at once
    fh.write(inp.name + "\n")
text = inp.read_text()
if "FAIL" in text or inp.stem.startswith("bad"):
    print("ORCA finished by error termination in SCF"); sys.exit(3)
lines = text.split("* xyz")[1].splitlines()
charge, mult = lines[0].split()
atoms = [l.split() for l in lines[1:] if l.strip() and l.strip() != "*"]
atoms = atoms[:[i for i, l in enumerate(lines[1:]) if l.strip() == "*"][0]]
pos = np.array([[float(x) for x in a[1:4]] for a in atoms])
d = -40.0 - 10.0 * np.linalg.norm(pos[1] - pos[0])
t = np.diag([-d / 3, -d / 3, 2 * d / 3])
print("                                 * O   R   C   A *")
print("                         Program Version 6.1.0  -  RELEASE   -")
print("---------------------------------\nCARTESIAN COORDINATES (ANGSTROEM)\n"
      "---------------------------------")
for a, p in zip(atoms, pos):
    print(f"  {{a[0]:<2s}} {{p[0]:12.6f}}{{p[1]:12.6f}}{{p[2]:12.6f}}")
print(f"\n Total Charge           Charge          ....   {{charge}}")
print(f" Multiplicity           Mult            ....    {{mult}}")
print("Number of active electrons          ...    7\nNumber of active orbitals           ...    5")
print("--------------------------------------------\n           ZERO-FIELD SPLITTING")
print("EFFECTIVE HAMILTONIAN SOC CONTRIBUTION\n--------------------------------------------\n")
print("Raw matrix (cm-1):")
for row in t: print("  " + "  ".join(f"{{x:11.6f}}" for x in row))
print("\nEigenvalues (cm-1):\n  " + "  ".join(f"{{x:11.6f}}" for x in np.diag(t)))
print("\nEigenvectors:\n  1.0 0.0 0.0\n  0.0 1.0 0.0\n  0.0 0.0 1.0\n")
print(f"D   = {{d:12.6f}}  cm-1\nE/D =     0.000000\n")
print("                             ****ORCA TERMINATED NORMALLY****")
'''


@pytest.fixture
def fake_orca(tmp_path, monkeypatch):
    exe = tmp_path / "bin" / "orca"
    exe.parent.mkdir()
    exe.write_text(FAKE_ORCA.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ['PATH']}")
    return exe


def cocl4(r=2.25, tag=""):
    v = np.array([(1, 1, 1), (-1, -1, 1), (-1, 1, -1), (1, -1, -1)]) / np.sqrt(3)
    a = Atoms("CoCl4", positions=np.vstack([[0, 0, 0], r * v]) + 0.123456789)
    return a


def calls(exe) -> list[str]:
    f = exe.with_suffix(".calls")
    return f.read_text().split() if f.exists() else []


def test_no_orca_gives_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MOLMAG_ORCA", raising=False)
    with pytest.raises(OrcaNotFound, match="ORCA not found"):
        find_orca()
    db = tmp_path / "d.db"
    Dataset(db).add(Record(atoms=cocl4(), charge=-2, multiplicity=4))
    assert runner.invoke(app, ["orca", "write", str(db), "--method", "co-casscf",
                               "--out", str(tmp_path / "jobs")]).exit_code == 0
    res = runner.invoke(app, ["orca", "run", str(tmp_path / "jobs")])
    assert res.exit_code == 1 and "ORCA not found" in res.output


def test_write_run_parse_back_into_rows(tmp_path, fake_orca):
    db = tmp_path / "co.db"
    ds = Dataset(db)
    ids = [ds.add(Record(atoms=cocl4(r), charge=-2, multiplicity=4))[0] for r in (2.2, 2.3, 2.4)]
    jobs = tmp_path / "jobs"
    res = runner.invoke(app, ["orca", "write", str(db), "--method", "co-casscf", "--out", str(jobs),
                              "--nevpt2"])
    assert res.exit_code == 0, res.output
    folders = sorted(p.name for p in jobs.iterdir())
    assert folders == [f"row{i:06d}" for i in ids]
    meta = json.loads((jobs / folders[0] / "molmag.json").read_text())
    assert meta["id"] == ids[0] and meta["method"] == "co-casscf"
    assert "SC_NEVPT2" in (jobs / folders[0] / f"{folders[0]}.inp").read_text()

    res = runner.invoke(app, ["orca", "run", str(jobs), "--db", str(db), "--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert sorted(calls(fake_orca)) == sorted(f"{f}.inp" for f in folders)
    for id, r in zip(ids, (2.2, 2.3, 2.4)):
        rec = Dataset(db).get(id)
        d = -40.0 - 10.0 * r
        np.testing.assert_allclose(np.diag(rec.labels["zfs_tensor"]), [-d / 3, -d / 3, 2 * d / 3],
                                   atol=1e-5)
        assert rec.provenance["zfs_tensor"].method.startswith("CASSCF(7,5)/QDPT effective")
    assert len(Dataset(db)) == 3                       # labels went into the rows, no new rows
    # resuming runs nothing again
    res = runner.invoke(app, ["orca", "run", str(jobs), "--db", str(db)])
    assert res.exit_code == 0 and len(calls(fake_orca)) == 3
    status = json.loads((jobs / folders[1] / "molmag_status.json").read_text())
    assert status["status"] == "skipped" and status["row"] == ids[1]


def test_failures_are_recorded_and_others_stored(tmp_path, fake_orca):
    from molmag.io.orca.inputs import write_orca_inputs

    structures = [cocl4(2.2), cocl4(2.3)]
    for a in structures:
        a.info.update(charge=-2, multiplicity=4)
    write_orca_inputs(structures, tmp_path / "jobs", "co-casscf", names=["good", "bad"])
    db = tmp_path / "new.db"
    summary = run_orca_folders(tmp_path / "jobs", db=str(db), jobs=2)
    by = {r.folder.name: r for r in summary.results}
    assert by["good"].status == "done" and by["bad"].status == "failed"
    assert "exit status 3" in by["bad"].message and "error termination" in by["bad"].message
    assert json.loads((tmp_path / "jobs/bad/molmag_status.json").read_text())["status"] == "failed"
    rows = list(Dataset(db).select())
    assert len(rows) == 1 and rows[0].charge == -2 and "zfs_tensor" in rows[0].labels
    np.testing.assert_allclose(rows[0].atoms.positions, structures[0].positions, atol=1e-6)
    res = runner.invoke(app, ["orca", "run", str(tmp_path / "jobs"), "--db", str(db)])
    assert res.exit_code == 2 and "1 job(s) failed" in res.output
    # the failed one is re-run, the finished one is not
    assert calls(fake_orca).count("bad.inp") == 2 and calls(fake_orca).count("good.inp") == 1
