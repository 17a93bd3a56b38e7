"""`molmag validate CONFIG...` and `molmag schema`: check configuration files without running
them, and write the JSON schemas of every configuration (library: :mod:`molmag.configs`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from molmag.cli.common import console, err_console, print_json


def validate(
    configs: List[Path] = typer.Argument(..., help="Configuration files (YAML) to check."),
    kind: Optional[str] = typer.Option(
        None, "--kind", help="train, label, optimize, scan, md, learn, vae or ga (default: "
        "recognised from the file's top-level keys)."),
    as_json: bool = typer.Option(False, "--json", help="Print the checked settings as JSON "
                                 "(defaults filled in; model.hyper as given, the model kind's "
                                 "defaults fill the rest)."),
):
    """Check configuration files as their commands would read them, without running anything.

    Every error is one line naming the file and the key path (``train.yaml: model.hyper.foo:
    unknown key``); the exit status is 1 when any file fails."""
    from molmag.configs import CONFIG_KINDS, validate_config

    failed = 0
    results = {}
    for path in configs:
        try:
            name, cfg = validate_config(path, kind)
        except (ValueError, FileNotFoundError) as exc:
            err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
            failed += 1
            continue
        results[str(path)] = {"kind": name, "settings": cfg.model_dump(mode="json")}
        if not as_json:
            console.print(f"{path}: a valid {CONFIG_KINDS[name].command} configuration",
                          highlight=False)
    if as_json:
        print_json(results)
    if failed:
        raise typer.Exit(1)


def schema(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the "
                                       "molmag-<kind>.schema.json files (default: print the "
                                       "schemas as one JSON object)."),
    kind: Optional[str] = typer.Option(None, "--kind", help="Only this configuration kind."),
):
    """JSON schemas of every molmag configuration (editors use them for completion).

    With the YAML extension of VS Code, point a file at its schema with a first line
    ``# yaml-language-server: $schema=schemas/molmag-train.schema.json``."""
    from molmag.cli.common import fail
    from molmag.configs import CONFIG_KINDS, json_schemas, write_schemas

    if kind is not None and kind not in CONFIG_KINDS:
        fail(f"unknown configuration kind {kind!r}; choose one of {', '.join(CONFIG_KINDS)}")
    if out is None:
        schemas = json_schemas()
        print_json(schemas[kind] if kind else schemas)
        return
    paths = write_schemas(out)
    if kind is not None:
        for p in paths:
            if p.name != f"molmag-{kind}.schema.json":
                p.unlink()
        paths = [p for p in paths if p.exists()]
    for p in paths:
        console.print(f"wrote {p}", highlight=False)


__all__ = ["validate", "schema"]
