"""`molmag ga [CONFIG.yaml] [--quick] [--out DIR]`: genetic-algorithm screening of ligands,
measured against random search and the VAE's LP sampling (molmag.screening)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from molmag.cli.common import console, err_console, fail, user_errors


def ga(
    config: Optional[Path] = typer.Argument(
        None, help="YAML settings (molmag template ga); default: the dy-axial template."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (minutes on 2 cores)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Output folder (default: ga-<template>[-quick])."),
    workers: Optional[int] = typer.Option(None, "--workers",
                                          help="Labelling processes (1: serial)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Override budget."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override seed."),
):
    """Search ligands with a GA (static or SELFIES genes, random-forest pre-screen), evaluating
    batches through the labelling pipeline (resumable: run the same command again), against
    random search and VAE LP sampling at the same budget; writes evaluations.db, ga.json, PNGs
    and report.md/report.html."""
    from molmag.screening.config import QUICK, GAConfig, load_ga_config
    from molmag.screening.loop import Search
    from molmag.screening.report import write_outputs

    over = {"workers": workers, "budget": budget, "seed": seed}
    with user_errors():
        if config is None:
            cfg = GAConfig.preset("dy-axial", quick=quick,
                                  **{k: v for k, v in over.items() if v is not None})
            name = "dy-axial"
        else:
            cfg = load_ga_config(config, **over)
            if quick:
                cfg = GAConfig.model_validate({**cfg.model_dump(), **QUICK,
                                               **{k: v for k, v in over.items() if v is not None}})
            name = config.stem
    out = out or Path(f"ga-{name}" + ("-quick" if quick else ""))
    console.print(f"molmag ga: {cfg.metal} {cfg.objective}, {cfg.genes} genes, budget "
                  f"{cfg.budget} -> {out}", highlight=False)
    log = lambda s: console.print(f"  {s}", highlight=False)  # noqa: E731
    try:
        with user_errors():
            search = Search(cfg, out, log=log)
            log(f"library: {len(search.library)} ligands the builder accepts "
                f"(<= {cfg.max_heavy_atoms} heavy atoms)")
            res = search.run()
            summary = write_outputs(res, cfg)
    except typer.Exit:   # fail() of user_errors: click's Exit is a RuntimeError
        raise
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/]: run the same command again to continue "
                          f"({out}/ga-state.json)")
        raise typer.Exit(130)
    except RuntimeError as exc:
        fail(str(exc))
    cmp = summary["comparison"]
    unit = summary["objective"]["unit"]
    for name_, arm in summary["arms"].items():
        best = arm["best_curve"][-1] if arm["best_curve"] else None
        reach = (cmp.get("evaluations_to_reach_random_best") or {}).get(name_)
        console.print(f"{name_:>7}: {arm['evaluations']} evaluations, best "
                      f"{'-' if best is None else f'{best:.1f}'} {unit}"
                      + (f", reaches random's best after {reach}" if reach else ""),
                      highlight=False)
    console.print(f"report: {out}/report.md, {out}/report.html ({res.seconds:.0f} s)",
                  highlight=False)
