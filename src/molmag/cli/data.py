"""`molmag data ...`: import, export, show and summarise datasets."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, List, Optional

import numpy as np
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from molmag.cli.common import (
    console,
    err_console,
    existing_db,
    fail,
    print_json,
    user_errors,
    writable_db,
)
from molmag.io import DataFileError, Dataset, read_records, write_records
from molmag.io.labels import LABELS
from molmag.physics.zfs import zfs_from_tensor

app = typer.Typer(help="Import, export, inspect and summarise molmag datasets.",
                  no_args_is_help=True)

DB_HELP = "Dataset: a file (SQLite, default) or any URL ASE accepts (postgresql://...)."


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


@app.command("import")
def import_(
    files: List[Path] = typer.Argument(..., help="extxyz files (or any format ASE reads)."),
    db: str = typer.Option(..., "--db", help=DB_HELP),
    charge: Optional[int] = typer.Option(None, help="Charge of frames that do not give one."),
    multiplicity: Optional[int] = typer.Option(None, help="Spin multiplicity 2S+1 of frames "
                                               "that do not give one."),
    metal_index: Optional[int] = typer.Option(None, help="Index of the magnetic centre "
                                              "(default: the only d/f-block atom)."),
    split: Optional[str] = typer.Option(None, help="Split tag (train/val/test) for frames "
                                        "without one."),
    chunk_size: int = typer.Option(200, min=1, help="Rows per database transaction (>= 1)."),
):
    """Add the frames of FILES to a dataset.

    Every file is checked completely before anything is written: a malformed file is
    reported (file, frame, field) and nothing is imported.  Structures already in the dataset
    (same structure hash) are not duplicated; only labels they lack are added.
    """
    with user_errors():
        writable_db(db)
    opts: dict[str, Any] = dict(charge=charge, multiplicity=multiplicity,
                                metal_index=metal_index, split=split)
    warnings: list[str] = []
    counts = {}
    errors = []
    with _progress() as progress:
        task = progress.add_task("checking", total=len(files))
        for f in files:
            try:
                counts[f] = sum(1 for _ in read_records(f, warn=warnings.append, **opts))
            except DataFileError as exc:
                errors.append(str(exc))
            progress.advance(task)
    if errors:
        for e in errors:
            err_console.print(f"[bold red]error:[/] {escape(e)}", highlight=False, soft_wrap=True)
        fail(f"{len(errors)} file(s) could not be read; nothing was imported")
    for w in dict.fromkeys(warnings):
        err_console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)

    ds = Dataset(db)
    table = Table(title=f"import into {db}", title_justify="left")
    for c in ("file", "frames", "new", "labels added", "already present", "conflicts"):
        table.add_column(c, justify="right" if c != "file" else "left",
                         overflow="fold")
    total_new = 0
    with _progress() as progress:
        for f in files:
            task = progress.add_task(f.name, total=counts[f])
            s = ds.add_many(read_records(f, **opts), chunk_size=chunk_size,
                            progress=functools.partial(progress.advance, task))
            total_new += s.new
            table.add_row(str(f), str(s.read), str(s.new), str(s.merged), str(s.present),
                          str(len(s.conflicts)))
            for id, labels in s.conflicts[:10]:
                err_console.print(f"[yellow]conflict:[/] row {id} already has different "
                                  f"{', '.join(labels)}; kept the stored value", highlight=False)
    console.print(table)
    console.print(f"{len(ds)} rows in {db} ({total_new} new)")


@app.command("export")
def export(
    db: str = typer.Argument(..., help=DB_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="extxyz file to write."),
    select: Optional[str] = typer.Option(None, "--select", "-s",
                                         help='ASE selection, e.g. "split=train,zfs_D<-50".'),
):
    """Write (selected) rows to an extxyz file with REF_-prefixed labels."""
    with user_errors():
        ds = Dataset(existing_db(db))
        n = write_records(out, ds.select(select))
    console.print(f"wrote {n} frames to {out}")


def _signed(charge: int) -> str:
    return f"{charge:+d}" if charge else "0"


def _label_summary(name: str, value) -> str:
    unit = LABELS[name].unit
    if name == "energy":
        return f"{value:.6f} {unit}"
    if name == "forces":
        return f"max |F| = {np.abs(value).max():.4f} {unit}"
    if name == "zfs_tensor":
        p = zfs_from_tensor(value)
        return f"D = {p.D:.3f} cm-1, E = {p.E:.3f} cm-1, E/D = {p.E_over_D:.3f}"
    if name == "kd_energies":
        return f"{len(value)} doublets: " + ", ".join(f"{x:.1f}" for x in value[:8]) + " cm-1"
    if name == "g_tensors":
        g = np.asarray(value)
        first = g[0] if g.ndim == 2 else np.linalg.eigvalsh(g[0])
        return f"{len(g)} doublets; ground g = " + " ".join(f"{x:.3f}" for x in first)
    if name == "cf_parameters":
        return f"{value['convention']}, {len(value['values'])} parameters"
    return str(value)


@app.command("show")
def show(
    db: str = typer.Argument(..., help=DB_HELP),
    id: Optional[int] = typer.Argument(None, help="Row to show in full."),
    select: Optional[str] = typer.Option(None, "--select", "-s", help="ASE selection."),
    limit: int = typer.Option(20, help="Rows listed at most."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """List rows, or show one row (structure, labels with units, provenance)."""
    with user_errors():
        ds = Dataset(existing_db(db))
        if id is not None:
            rec = ds.get(id)
    if id is None:
        rows = []
        for rec in ds.select(select, limit=limit):
            rows.append(rec)
        if json_out:
            print_json([{"id": r.id, "formula": r.formula, "natoms": len(r.atoms),
                         "charge": r.charge, "multiplicity": r.multiplicity,
                         "metal_index": r.metal_index, "split": r.split,
                         "labels": sorted(r.labels)} for r in rows])
            return
        t = Table(title=f"{db}: {ds.count(select)} rows"
                  + (f" matching {select!r}" if select else ""), title_justify="left")
        for c in ("id", "formula", "atoms", "charge", "2S+1", "metal", "split", "labels"):
            t.add_column(c)
        for r in rows:
            metal = ("-" if r.metal_index is None
                     else f"{r.atoms[r.metal_index].symbol}{r.metal_index}")
            t.add_row(str(r.id), r.formula, str(len(r.atoms)), _signed(r.charge),
                      str(r.multiplicity), metal, r.split or "-",
                      ", ".join(sorted(r.labels)) or "-")
        console.print(t)
        return
    if json_out:
        print_json({"id": rec.id, "formula": rec.formula, "charge": rec.charge,
                    "multiplicity": rec.multiplicity, "metal_index": rec.metal_index,
                    "split": rec.split, "structure_hash": rec.hash,
                    "symbols": rec.atoms.get_chemical_symbols(),
                    "positions": rec.atoms.positions, "labels": rec.labels,
                    "provenance": {k: p.as_dict() for k, p in rec.provenance.items()}})
        return
    metal = "none" if rec.metal_index is None else \
        f"{rec.atoms[rec.metal_index].symbol} (index {rec.metal_index})"
    console.print(f"[bold]row {rec.id}[/]: {rec.formula}, {len(rec.atoms)} atoms, charge "
                  f"{_signed(rec.charge)}, multiplicity {rec.multiplicity}, metal {metal}, "
                  f"split {rec.split or '-'}\nstructure hash {rec.hash}")
    t = Table(title="labels", title_justify="left")
    for c in ("label", "value", "method", "program", "date", "source"):
        t.add_column(c)
    for name, value in rec.labels.items():
        p = rec.provenance[name]
        prog = f"{p.program} {p.version}".strip()
        t.add_row(name, _label_summary(name, value), p.method, prog, (p.date or "-")[:10],
                  p.source or "-")
    console.print(t if rec.labels else "no labels")


@app.command("failures")
def failures(
    db: str = typer.Argument(..., help=DB_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Failures recorded by `molmag label` runs (per build item or structure and labeller)."""
    with user_errors():
        f = Dataset(existing_db(db)).failures()
    if json_out:
        print_json(f)
        return
    if not f:
        console.print(f"{db}: no recorded failures")
        return
    t = Table(title=f"{db}: {len(f)} recorded failures", title_justify="left")
    for c in ("stage", "item", "reason", "date"):
        t.add_column(c, overflow="fold")
    for key, v in sorted(f.items(), key=lambda kv: (kv[1].get("stage", ""), kv[0])):
        t.add_row(v.get("stage", "?"), v.get("item", key), v.get("reason", ""),
                  (v.get("date") or "-")[:19])
    console.print(t)


@app.command("stats")
def stats(
    db: str = typer.Argument(..., help=DB_HELP),
    select: Optional[str] = typer.Option(None, "--select", "-s", help="ASE selection."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """Counts, label coverage and value ranges (with units) of a dataset."""
    with user_errors():
        s = Dataset(existing_db(db)).stats(select)
    if json_out:
        print_json(s)
        return
    console.print(f"[bold]{db}[/]: {s['rows']} rows; splits: "
                  + ", ".join(f"{k} {v}" for k, v in s["splits"].items())
                  + "; formulas: "
                  + ", ".join(f"{k} {v}" for k, v in list(s["formulas"].items())[:6]))
    if s["groups"]:
        console.print("groups: " + ", ".join(f"{k} {v}" for k, v in sorted(s["groups"].items())))
    if s["failures"]:
        console.print("[yellow]recorded failures[/]: "
                      + ", ".join(f"{k} {v}" for k, v in s["failures"].items())
                      + f" (list them with: molmag data failures {db})")
    t = Table(title="label coverage", title_justify="left")
    for c in ("label", "unit", "rows", "coverage"):
        t.add_column(c, justify="right" if c in ("rows", "coverage") else "left")
    for k, n in s["label_coverage"].items():
        frac = f"{100 * n / s['rows']:.1f}%" if s["rows"] else "-"
        t.add_row(k, s["label_units"][k] or "-", str(n), frac)
    console.print(t)
    if s["ranges"]:
        t = Table(title="value ranges", title_justify="left")
        for c in ("quantity", "unit", "n", "min", "mean", "max"):
            t.add_column(c, justify="left" if c in ("quantity", "unit") else "right")
        for k, r in s["ranges"].items():
            t.add_row(k, r["unit"] or "-", str(r["n"]), f"{r['min']:.4g}", f"{r['mean']:.4g}",
                      f"{r['max']:.4g}")
        console.print(t)
    if s["cf_conventions"]:
        console.print("crystal-field conventions: "
                      + ", ".join(f"{k} {v}" for k, v in s["cf_conventions"].items()))
