"""`molmag corpus`: a donor-first corpus of monodentate O/N ligands (GAUSS-II training set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from molmag.cli.common import console, fail, print_json, user_errors


def corpus(
    smiles_file: Optional[Path] = typer.Argument(
        None, help="SMILES file (one per line, or a CSV with a 'smiles' column). "
        "Omitted: molmag's built-in corpus."),
    out: Path = typer.Option(..., "--out", help="Corpus file to write: .csv (smiles, parent, "
                             "donor, charge, kind) or .smi/.txt (one SMILES per line)."),
    max_heavy_atoms: int = typer.Option(30, "--max-heavy-atoms",
                                        help="Skip molecules with more heavy atoms."),
    elements: Optional[str] = typer.Option(None, "--elements", help="Allowed elements, comma "
                                           "separated (default H,B,C,N,O,F,Si,P,S,Cl,Br,I)."),
    neutral_only: bool = typer.Option(False, "--neutral-only", help="Neutral ligands only."),
    anions_only: bool = typer.Option(False, "--anions-only",
                                     help="Mono-anions (one O-H/N-H deprotonated) only."),
    max_ligands: Optional[int] = typer.Option(None, "--max-ligands",
                                              help="Keep the first N ligands."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
):
    """Ligands that can bind Dy through one O or N, neutral or mono-anionic, each written
    donor atom first (the SMILES rooted at the donor), deduplicated."""
    from molmag.generative.corpus import (
        DEFAULT_ELEMENTS,
        corpus_format,
        default_corpus,
        default_corpus_stats,
        ligands_from_smiles,
        read_smiles,
        summarize,
        write_corpus,
    )

    if neutral_only and anions_only:
        fail("give either --neutral-only or --anions-only, not both")
    if max_heavy_atoms < 1:
        fail(f"--max-heavy-atoms must be >= 1, got {max_heavy_atoms}")
    if max_ligands is not None and max_ligands < 0:
        fail(f"--max-ligands must be >= 0, got {max_ligands}")
    allowed = DEFAULT_ELEMENTS
    if elements is not None:
        allowed = frozenset(e.strip() for e in elements.split(",") if e.strip())
        if not allowed:
            fail("--elements: no element given")
    neutral, anions = not anions_only, not neutral_only
    with user_errors():
        corpus_format(out)
        filters: dict[str, Any] = dict(elements=allowed, max_heavy_atoms=max_heavy_atoms,
                                       neutral=neutral, anions=anions)
        if smiles_file is None:
            with console.status("enumerating the built-in corpus", spinner="dots"):
                ligands = default_corpus(**filters)
            stats = default_corpus_stats(**filters)
            source = "built-in corpus"
        else:
            smiles = read_smiles(smiles_file)
            with console.status(f"reading {len(smiles)} SMILES", spinner="dots"):
                ligands, stats = ligands_from_smiles(smiles, **filters)
            source = str(smiles_file)
        if max_ligands is not None:
            ligands = ligands[:max_ligands]
        if not ligands:
            raise ValueError(f"{source}: no ligand passed the filters; nothing written")
        path = write_corpus(ligands, out)
    rows = summarize(ligands)
    if as_json:
        print_json({"source": source, "out": str(path), "n_ligands": len(ligands),
                    "stats": stats.as_dict(), "by_kind": rows})
        return
    t = Table(title=f"{source}: {len(ligands)} ligands ({stats.read} read, {stats.invalid} "
                    f"invalid, {stats.kept} kept)", title_justify="left")
    for c in ("kind", "donor", "charge", "count"):
        t.add_column(c, justify="left" if c in ("kind", "donor") else "right")
    for r in rows:
        t.add_row(r["kind"] or "-", r["donor"], f"{r['charge']:+d}" if r["charge"] else "0",
                  str(r["count"]))
    console.print(t)
    if stats.filtered:
        console.print("filtered: " + ", ".join(f"{k} {v}" for k, v in stats.filtered.items()),
                      highlight=False)
    console.print(f"wrote {path}", highlight=False)
