"""`molmag features`: structural features of the metal's coordination sphere.

Reads every frame of a structure file (any format ``ase.io.read`` reads) or the rows of a
molmag dataset and prints d_ML, the tetrahedral order parameter, intraligand angles or the
pentagonal-bipyramid set (see :mod:`molmag.chem.features`) per structure, or their summary
statistics when there are many.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from molmag.chem.features import features_table
from molmag.cli.common import console, existing_db, fail, print_json, read_frames, user_errors

#: More structures than this: print summary statistics instead of one line per structure.
MAX_LISTED = 20


def _is_dataset(source: str) -> bool:
    return "://" in source or source.endswith(".db")


def _read(source: str, selection: Optional[str], metal_index: Optional[int], donors="auto"):
    """(id column name, ids, formulas, feature rows) of the structures in ``source``."""
    if _is_dataset(source):
        from molmag.io import Dataset

        records = list(Dataset(existing_db(source)).select(selection))
        if not records:
            fail(f"{source}: no rows" + (f" match {selection!r}" if selection else ""))
        ids = [r.id for r in records]
        names = [f"row {i} of {source}" for i in ids]
        rows = features_table(records, metal_index=metal_index, names=names, donors=donors)
        return "id", ids, [r.formula for r in records], rows
    if selection:
        fail("--select applies to datasets (.db files and database URLs) only")
    try:
        frames = read_frames(source)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    names = [f"frame {i} of {source}" for i in range(len(frames))]
    rows = features_table(frames, metal_index=metal_index, names=names, donors=donors)
    return "frame", list(range(len(frames))), [a.get_chemical_formula() for a in frames], rows


def _columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _fmt(v) -> str:
    return str(v) if isinstance(v, (int, np.integer)) else f"{v:.4f}"


def _summary(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for key in _columns(rows):
        v = np.array([r[key] for r in rows if key in r], dtype=float)
        out[key] = {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
                    "max": float(v.max()), "n": len(v)}
    return out


def _write_csv(path: Path, id_name: str, ids, formulas, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[id_name, "formula", *_columns(rows)], restval="")
        w.writeheader()
        for i, f, r in zip(ids, formulas, rows):
            w.writerow({id_name: i, "formula": f, **r})


def features(
    source: str = typer.Argument(..., help="Structure file (any format ase.io.read reads; all "
                                 "frames) or a molmag dataset (.db file or database URL)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="CSV file for all rows."),
    selection: Optional[str] = typer.Option(None, "--select", "-s",
                                            help='ASE selection for datasets, e.g. "split=train".'),
    metal_index: Optional[int] = typer.Option(None, "--metal-index", help="Index of the metal "
                                              "(default: the only d/f-block atom, or the row's)."),
    donors: str = typer.Option("auto", "--donors",
                               help="auto: per structure (rows tagged donors=... by molmag "
                                    "label use their tag); first: the first structure's "
                                    "donors for all frames; or indices, e.g. 9,10,11,12."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (all rows and the summary)."),
):
    """Metal-donor distances (Angstrom), tetrahedral order parameter q, intraligand and
    pentagonal-bipyramid angles (degrees), MPP/SDP (Angstrom) of each structure.

    Donors are the non-hydrogen atoms within 1.2 x the sum of covalent radii of the metal
    (see --donors for displaced frames of one complex).  With more than 20 structures the
    summary statistics are printed; --out writes every row.
    """
    donor_spec: str | list[int] = donors
    if donors not in ("auto", "first"):
        try:
            donor_spec = [int(x) for x in donors.split(",")]
        except ValueError:
            fail(f"--donors {donors!r}: use auto, first or comma-separated atom indices")
    with user_errors():
        id_name, ids, formulas, rows = _read(source, selection, metal_index, donor_spec)
    if out is not None:
        try:
            _write_csv(out, id_name, ids, formulas, rows)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or exc}")
    if json_out:
        print_json({"source": source, "structures": len(rows), "summary": _summary(rows),
                    "rows": [{id_name: i, "formula": f, **r}
                             for i, f, r in zip(ids, formulas, rows)]})
        return
    if len(rows) <= MAX_LISTED:
        # one column per structure: the feature names are long, the structures few
        t = Table(title=f"{source}: {len(rows)} structure(s)", title_justify="left")
        t.add_column(id_name)
        for i in ids:
            t.add_column(str(i), justify="right")
        t.add_row("formula", *formulas)
        for key in _columns(rows):
            t.add_row(key, *(_fmt(r[key]) if key in r else "-" for r in rows))
        console.print(t)
    else:
        t = Table(title=f"{source}: {len(rows)} structures (summary)", title_justify="left")
        for c in ("feature", "mean", "std", "min", "max", "n"):
            t.add_column(c, justify="left" if c == "feature" else "right")
        for key, s in _summary(rows).items():
            t.add_row(key, *(f"{s[c]:.4f}" for c in ("mean", "std", "min", "max")), str(s["n"]))
        console.print(t)
        if out is None:
            console.print(f"use --out FILE.csv to write all {len(rows)} rows")
    if out is not None:
        console.print(f"wrote {len(rows)} rows to {out}")


__all__ = ["features"]
