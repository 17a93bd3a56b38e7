"""`molmag md CONFIG.yaml`: Langevin NVT molecular dynamics with committees."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from molmag.cli.common import console, fail, print_json, user_errors


def _floats(text: Optional[str]) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"--temperatures: expected numbers separated by commas, got {text!r}")


def md(
    config: Path = typer.Argument(..., help="MD configuration (molmag template md)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (config: output)."),
    time_ps: Optional[float] = typer.Option(None, "--time-ps", help="Length of each run, ps."),
    temperatures: Optional[str] = typer.Option(None, "--temperatures",
                                               help="Comma-separated temperatures, K."),
    trajectories: Optional[int] = typer.Option(None, "--trajectories",
                                               help="Independent runs per temperature."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs' sidecars as JSON."),
):
    """Langevin NVT runs of a complex with an ML committee (or xTB) as the potential; every
    stored frame gets D, E and the calibrated spreads of D and of the forces. Resumable:
    rerun the same command after an interruption."""
    from molmag.dynamics.md_runs import load_md_config, run_md_config, run_stem

    with user_errors():
        cfg = load_md_config(config, output=str(out) if out else None, time_ps=time_ps,
                             temperatures=_floats(temperatures), trajectories=trajectories)
        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} steps"),
                      TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                      console=console, disable=as_json, transient=True) as bar:
            bars: dict[str, int] = {}

            def progress(name, step, n, nsd):
                if name not in bars:
                    bars[name] = bar.add_task(name, total=n, speed="")
                bar.update(bars[name], completed=step,
                           speed=f"{nsd:.3g} ns/day" if nsd else "")

            results = run_md_config(cfg, progress=progress,
                                    log=None if as_json else console.print)
    jobs = [(t, k) for t in cfg.temperatures for k in range(cfg.trajectories)]
    if as_json:
        print_json([r.sidecar if not isinstance(r, BaseException) else
                    {"run": run_stem(cfg.output, t, k).name, "error": str(r)}
                    for (t, k), r in zip(jobs, results)])
    else:
        _table(cfg, jobs, results)
    if any(isinstance(r, BaseException) for r in results):
        raise typer.Exit(1)


def _table(cfg, jobs, results) -> None:
    from ase.io import read

    tab = Table(title=f"molmag md -> {cfg.output}")
    for col in ("run", "T/K", "status", "frames", "ps", "ns/day", "<T_kin>/K", "D/cm-1",
                "sigma_D/cm-1", "max sigma_F/(eV/Å)"):
        tab.add_column(col, justify="left" if col in ("run", "status") else "right")
    notes = []
    for (t, k), r in zip(jobs, results):
        name = f"T{t:g}K_run{k}"
        if isinstance(r, BaseException):
            tab.add_row(name, f"{t:g}", "[red]failed", "", "", "", "", "", "", "")
            notes.append(f"{name}: {r}")
            continue
        frames = read(r.trajectory, ":") if r.n_frames else []
        tk = np.mean([a.info["temperature_K"] for a in frames]) if frames else np.nan
        d = [a.info["zfs_D"] for a in frames if "zfs_D" in a.info]
        sd = [a.info["zfs_D_std"] for a in frames if "zfs_D_std" in a.info]
        sf = [a.info["forces_std_max"] for a in frames if "forces_std_max" in a.info]
        tab.add_row(name, f"{t:g}", r.status if r.status == "finished" else f"[red]{r.status}",
                    str(r.n_frames), f"{r.steps_done * cfg.timestep_fs / 1000:.2f}",
                    f"{r.ns_per_day:.3g}", f"{tk:.1f}",
                    f"{np.mean(d):.1f} ± {np.std(d):.1f}" if d else "-",
                    f"{np.mean(sd):.2f}" if sd else "-", f"{np.max(sf):.3f}" if sf else "-")
        if r.stop_reason:
            notes.append(f"{name}: stopped at {r.stop_reason}")
    console.print(tab)
    for n in notes:
        console.print(n)
