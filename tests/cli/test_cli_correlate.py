"""`molmag correlate`: D-structure correlations from a trajectory with the ligand-field engine
and from dataset labels, with the same r both ways."""

from __future__ import annotations

import json

import ase.io
import numpy as np
from typer.testing import CliRunner

from molmag.chem.builders import build
from molmag.cli.main import app
from molmag.io.dataset import Dataset
from molmag.io.provenance import Provenance
from molmag.io.records import Record
from molmag.physics.ligand_field import LigandFieldCalculator

runner = CliRunner()


def test_correlate_trajectory_and_dataset_agree(tmp_path):
    base = build("co-pdms", relax=False)
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(16):
        a = base.copy()
        a.positions += rng.uniform(-0.03, 0.03, a.positions.shape)
        a.info = {"charge": -2, "multiplicity": 4}
        frames.append(a)
    traj = tmp_path / "traj.xyz"
    ase.io.write(traj, frames)
    r = runner.invoke(app, ["correlate", str(traj), "--ligand-field", "--charge", "-2",
                            "--multiplicity", "4", "--bootstrap", "0", "--json",
                            "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["n"] == 16 and set(res["stats"]) >= {"d_ML_mean_A", "q_tet"}
    assert res["literature"]["r"]["q_tet"] == 0.88
    assert (tmp_path / "c" / "correlation_q_tet.png").stat().st_size > 0

    db = tmp_path / "d.db"
    donors = list(base.info["donor_indices"])
    prov = Provenance(method="ligand field", program="molmag", version="test")
    recs = []
    for a in frames:
        t = LigandFieldCalculator(donors=donors).get_property("zfs_tensor", a)
        recs.append(Record(a, charge=-2, multiplicity=4, labels={"zfs_tensor": t},
                           provenance={"zfs_tensor": prov}))
    Dataset(db).add_many(recs)
    r2 = runner.invoke(app, ["correlate", str(db), "--bootstrap", "0", "--json"])
    assert r2.exit_code == 0, r2.output
    res2 = json.loads(r2.stdout)
    for k in ("d_ML_mean_A", "q_tet"):
        assert abs(res2["stats"][k]["r"] - res["stats"][k]["r"]) < 1e-6
    r3 = runner.invoke(app, ["correlate", str(tmp_path / "nothing.db")])
    assert r3.exit_code == 1 and "no such dataset" in r3.output
