"""`molmag learn CONFIG.yaml`: active learning of the potential and the D-tensor model from
ML molecular dynamics."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from molmag.cli.common import console, print_json, user_errors


def learn(
    config: Path = typer.Argument(..., help="Active-learning configuration "
                                            "(molmag template learn)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (config: output)."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Labels the loop may add."),
    max_rounds: Optional[int] = typer.Option(None, "--max-rounds", help="Rounds at most."),
    as_json: bool = typer.Option(False, "--json", help="Print the state (learn.json) as JSON."),
):
    """Train, run MD with the committees, label the frames where they disagree (farthest
    point among those above the calibrated thresholds), retrain; until a whole MD run stays
    below the thresholds or the label budget is spent. Resumable: rerun the same command."""
    from molmag.dynamics.learn_runs import load_learn_config, plot_rounds, run_learning

    with user_errors():
        cfg = load_learn_config(config, output=str(out) if out else None, budget=budget,
                                max_rounds=max_rounds)
        state = run_learning(cfg, log=None if as_json else console.print)
        png = plot_rounds(state, Path(cfg.output) / "rounds.png") if state["rounds"] else None
    if as_json:
        print_json(state)
        return
    tab = Table(title=f"molmag learn -> {cfg.output}")
    for col in ("round", "labels", "MD", "frames", "above", "picked", "max sigma_F/(eV/Å)",
                "max sigma_D/cm-1", "test F RMSE/(eV/Å)", "test D_ij RMSE/cm-1"):
        tab.add_column(col, justify="right")
    for r in state["rounds"]:
        md = ", ".join(m["status"] for m in r["md"])
        t = r["test"]
        tab.add_row(str(r["round"]), str(r["n_labels"]), md, str(r["n_frames"]),
                    str(r["candidates"]), str(len(r["picked"])),
                    _f(r["max_spread"].get("forces"), 3), _f(r["max_spread"].get("zfs_D"), 2),
                    _f(t.get("forces_rmse"), 3), _f(t.get("D_ij_rmse"), 2))
    console.print(tab)
    console.print(f"{state['status']}: {state['stop_reason']}")
    if png:
        console.print(f"wrote {png}")


def _f(v, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
