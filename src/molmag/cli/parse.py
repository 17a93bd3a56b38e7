"""`molmag parse`: read ORCA / OpenMolcas outputs and SINGLE_ANISO data files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.table import Table

from molmag.cli.common import console, err_console, fail, print_json
from molmag.io import DataFileError, Dataset
from molmag.io.qc import parse_file
from molmag.io.qc_result import QCResult


def _fmt(values, digits=4) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in np.ravel(values))


def _summary(r: QCResult) -> Table:
    t = Table(title=f"{r.file}", title_justify="left", show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    t.add_row("program", f"{r.program} {r.version}".strip())
    t.add_row("kinds", ", ".join(r.kinds))
    if r.calculation.get("active_space"):
        t.add_row("active space", "CAS({},{})".format(*r.calculation["active_space"]))
    for z in r.zfs:
        t.add_row("ZFS " + z.method,
                  f"D = {z.D:.4f} cm-1, E = {z.E:.4f} cm-1, E/D = {z.E_over_D:.4f}")
    if r.kd_energies is not None:
        t.add_row("Kramers doublets / cm-1", _fmt(r.kd_energies, 2))
    elif r.so_energies is not None:
        t.add_row("spin-orbit states / cm-1", _fmt(r.so_energies, 2))
    if r.g_tensors is not None:
        for n, g in enumerate(r.g_tensors):
            t.add_row(f"g (doublet {n + 1})" if r.kd_energies is not None else "g", _fmt(g, 4))
    if r.cf_parameters is not None:
        big = {k: v for k, v in r.cf_parameters["values"].items() if abs(v) > 1e-4}
        t.add_row(f"CF {r.cf_parameters['convention']} ({r.cf_multiplet})",
                  ", ".join(f"B({k}) = {v:.6g}" for k, v in big.items()) or "all < 1e-4 cm-1")
    if r.atoms is not None:
        extra = f", {len(r.point_charges)} point charges" if r.point_charges is not None else ""
        t.add_row("structure", f"{r.atoms.get_chemical_formula()} ({len(r.atoms)} atoms{extra}), "
                               f"charge {r.charge}, multiplicity {r.multiplicity}")
    else:
        t.add_row("structure", "none in the file (cannot become a dataset row)")
    for w in r.warnings:
        t.add_row("[yellow]warning[/]", w)
    return t


def parse(
    files: List[Path] = typer.Argument(..., help="ORCA or OpenMolcas outputs, SINGLE_ANISO "
                                       "ASCII data files (format recognised from the content)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per file; a list "
                                 "for several files)."),
    db: Optional[str] = typer.Option(None, "--db", help="Add one row per file to this dataset "
                                     "(SQLite file or ASE database URL)."),
    zfs_method: Optional[str] = typer.Option(None, "--zfs-method", help="Which ZFS block becomes "
                                             "the row's zfs_tensor when a file has several: a "
                                             "part of its method, e.g. 'CASSCF' or '2nd order' "
                                             "(default: the most correlated level, effective "
                                             "Hamiltonian)."),
):
    """Read the labels of quantum-chemistry outputs: ZFS D tensors (CASSCF/NEVPT2 QDPT, DFT),
    spin-orbit spectra, Kramers doublets and their g tensors, crystal-field parameters
    (SINGLE_ANISO ESO and ITO), the final geometry, charge and multiplicity.

    Every file is read completely before anything is written: with --db, a file that cannot be
    read or made into a row is reported and no row of any file is added."""
    results: list[QCResult] = []
    errors: list[str] = []
    for f in files:
        try:
            results.append(parse_file(f))
        except DataFileError as exc:
            errors.append(str(exc))
    records = []
    if db is not None and not errors:
        for r in results:
            try:
                records.append(r.to_record(zfs_method))
            except DataFileError as exc:
                errors.append(str(exc))
    for e in errors:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    if as_json:
        payload = [r.to_json() for r in results]
        if payload:
            print_json(payload[0] if len(files) == 1 else payload)
    else:
        for r in results:
            console.print(_summary(r))
    if errors:
        fail(f"{len(errors)} file(s) failed" + ("; nothing was added to the dataset" if db else ""))
    if db is not None:
        summary = Dataset(db).add_many(records, chunk_size=max(1, len(records)))
        err_console.print(f"{db}: {summary.new} new row(s), {summary.merged} with labels added, "
                          f"{summary.present} already present, "
                          f"{len(summary.conflicts)} conflict(s)",
                          highlight=False)
        for c in summary.conflicts:
            err_console.print(f"[yellow]conflict:[/] {c}", highlight=False, soft_wrap=True)
