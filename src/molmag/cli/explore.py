"""`molmag optimize` and `molmag scan`: thin layers over molmag.explore.runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from molmag.cli.common import console, err_console, progress_bars, user_errors


def _log(text: str) -> None:
    err_console.print(f"[dim]{text}[/]", highlight=False, soft_wrap=True)


def _f(x, fmt: str = ".4g") -> str:
    return "—" if x is None else format(x, fmt)


def gamma_table(rows: list[dict], title: str = "PSO optimum per gamma") -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("γ (eV/cm⁻¹)", "D (cm⁻¹)", "ΔD (cm⁻¹)", "E/D", "E−E₀ (eV)", "σ_D",
                "D ref (cm⁻¹)", "ref err"):
        t.add_column(col, justify="right")
    for r in rows:
        err = r.get("reference_relative_error")
        t.add_row(_f(r["gamma_eV_per_cm-1"], "g"), _f(r["zfs_D_cm-1"], ".2f"),
                  _f(r["delta_zfs_D_cm-1"], "+.2f"), _f(r["zfs_E_over_D"], ".3f"),
                  _f(r["energy_eV"], ".4f"), _f(r["zfs_D_std_cm-1"], ".2f"),
                  _f(r["reference_zfs_D_cm-1"], ".2f"),
                  "—" if err is None else f"{100 * err:.1f}%")
    return t


def print_changes(rows: list[dict], top: int = 3) -> None:
    """The internal coordinates that changed most at each optimum, one gamma per line."""
    console.print("most changed internal coordinates (start -> optimum):")
    for r in rows:
        console.print(f"  γ = {r['gamma_eV_per_cm-1']:g}: " + "; ".join(r["top_changes"][:top]),
                      highlight=False)
        if r.get("top_metal_changes"):
            console.print("    at the metal: " + "; ".join(r["top_metal_changes"][:top]),
                          highlight=False)


def optimize(
    config: Path = typer.Argument(..., help="Optimize configuration (YAML); "
                                  "`molmag template optimize` writes one."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Output folder (overrides `output`)."),
    gamma: Optional[List[float]] = typer.Option(None, "--gamma",
                                                help="gamma in eV/cm-1 (repeat; overrides "
                                                     "`gammas`)."),
    n_steps: Optional[int] = typer.Option(None, "--steps", help="PSO steps (pso.n_steps)."),
    n_particles: Optional[int] = typer.Option(None, "--particles",
                                              help="Swarm size (pso.n_particles)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed (pso.seed)."),
):
    """Particle-swarm optimisation of chi = E - E0 + gamma D for every gamma of CONFIG.

    Prints one row per gamma (D, E/D, energy cost, calibrated committee σ, the reference D at the
    optimum and the internal coordinates that changed most) and writes them, the paths and
    the optima to the output folder.  An interrupted run resumes from its checkpoints."""
    from molmag.explore.runs import load_optimize_config, run_optimize

    with user_errors():
        cfg = load_optimize_config(config, output=output, gammas=gamma, n_steps=n_steps,
                                   n_particles=n_particles, seed=seed)
    console.print(f"[bold]molmag optimize[/] {config} -> {cfg.output}", highlight=False)
    try:
        with user_errors(), progress_bars() as progress:
            run = run_optimize(cfg, progress=progress, log=_log)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: run the same command again to resume")
        raise typer.Exit(130)
    console.print(gamma_table(run.table))
    print_changes(run.table)
    console.print(f"wrote {cfg.output}/gamma_table.csv, gamma_table.json, pso_convergence.png, "
                  "optimum_gamma_<k>.xyz, pso_gamma_<k>_path.extxyz", highlight=False)


def scan(
    config: Path = typer.Argument(..., help="Scan configuration (YAML); "
                                  "`molmag template scan` writes one."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Output folder (overrides `output`)."),
    points: Optional[int] = typer.Option(None, "--points",
                                         help="Grid points along each axis (overrides n)."),
):
    """2D scan of D and E along the mean metal-donor distance and the mean intraligand
    angle (or the offsets of CONFIG), every calculator side by side; contour PNGs."""
    from molmag.explore.runs import load_scan_config, run_scan, scan_slopes

    with user_errors():
        cfg = load_scan_config(config, output=output, points=points)
    console.print(f"[bold]molmag scan[/] {config} -> {cfg.output}", highlight=False)
    try:
        with user_errors(), progress_bars() as progress:
            res = run_scan(cfg, progress=progress, log=_log)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: run the same command again to resume")
        raise typer.Exit(130)
    c1, c2 = res.coordinates
    t = Table(title=f"{res.shape[0]} x {res.shape[1]} scan around {c1['name']} = "
                    f"{c1['reference_value']:.4g}, {c2['name']} = {c2['reference_value']:.4g}",
              title_justify="left")
    for col in ("calculator", "property", "at reference", "min", "max", "∂/∂q1", "∂/∂q2"):
        t.add_column(col, justify="left" if col in ("calculator", "property") else "right")
    for cname, props in res.data.items():
        for p in props:
            s = scan_slopes(res, cname, p)
            ref = res.reference[cname].get(p)
            t.add_row(cname, p, "0 (ref.)" if p == "energy" else _f(ref, ".4g"),
                      _f(s["range"][0], ".4g"), _f(s["range"][1], ".4g"),
                      _f(s["d_dq1"], ".4g"), _f(s["d_dq2"], ".4g"))
    console.print(t)
    console.print(f"q1 = {c1['label']}, q2 = {c2['label']}; energy relative to the reference "
                  "(eV), D in cm-1", highlight=False)
    if res.errors:
        err_console.print(f"[yellow]{len(res.errors)} failed points[/] (NaN): {res.errors[0]}")
    files = res.meta["files"]
    console.print(f"wrote {files['npz']}, {files['json']}, "
                  + ", ".join(Path(p).name for p in files["plots"]), highlight=False)
