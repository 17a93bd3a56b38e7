"""`molmag learn` end to end on [Co(pdms)2]2- with the real engines (slow: xTB labels)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_learn_runs_rounds_adds_labels_and_resumes(tmp_path):
    from typer.testing import CliRunner

    from molmag.cli.main import app

    (tmp_path / "learn.yaml").write_text(
        "structure: {builder: co-pdms}\n"
        "initial: {kind: displacements, n: 10, delta: 0.03}\n"
        "potential: {kind: snap-energy, committee: 2}\n"
        "tensor: {kind: covariant-ridge, committee: 2}\n"
        "md: {temperatures: [100], time_ps: 0.1, stride: 10, trajectories: 2}\n"
        "select: {batch: 3}\nbudget: 6\nmax_rounds: 3\noutput: out\n")
    run = CliRunner().invoke(app, ["learn", str(tmp_path / "learn.yaml"), "--json"])
    assert run.exit_code == 0, run.output
    st = json.loads(run.output)
    assert st["initial_labels"] == 10
    added = sum(len(r["picked"]) for r in st["rounds"])
    assert 0 < added <= 6
    assert st["status"] in ("converged", "stopped")
    assert (tmp_path / "out" / "round0" / "potential" / "model.npz").is_file()
    # two independent runs per round, from their own Maxwell-Boltzmann starts
    for r in st["rounds"]:
        assert [m["trajectory"] for m in r["md"]] == [0, 1]
    from ase.io import read

    firsts = [read(tmp_path / "out" / "round0" / "md" / f"T100K_run{k}.extxyz", 0)
              for k in (0, 1)]
    assert abs(firsts[0].get_momenta() - firsts[1].get_momenta()).max() > 1e-3
    from molmag.io.dataset import Dataset

    ds = Dataset(str(tmp_path / "out" / "labels.db"))
    assert len(ds) == 10 + added
    assert ds.count("group=al-round0") == len(st["rounds"][0]["picked"])
    # a rerun changes nothing: the rounds are recorded
    again = CliRunner().invoke(app, ["learn", str(tmp_path / "learn.yaml"), "--json"])
    assert json.loads(again.output)["rounds"] == st["rounds"]
    assert len(Dataset(str(tmp_path / "out" / "labels.db"))) == 10 + added

