"""`molmag train`, `evaluate`, `predict`, `learning-curve`: thin layers over molmag.training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from molmag.cli.common import (
    console,
    err_console,
    existing_db,
    print_json,
    read_frames,
    user_errors,
)


def _log(text: str) -> None:
    err_console.print(f"[dim]{text}[/]", highlight=False, soft_wrap=True)


def _metrics_table(title: str, target: str, per_split: dict) -> Table:
    from molmag.training.metrics import headline

    t = Table(title=title, title_justify="left")
    t.add_column("split")
    t.add_column("n", justify="right")
    cols = None
    for name, m in per_split.items():
        if not isinstance(m, dict):
            continue
        h = headline(target, m)
        if cols is None:
            cols = list(h)
            for c in cols:
                unit = "°" if c.startswith("axis") else ""
                t.add_column(c + (f" ({unit})" if unit else ""), justify="right")
        n = _count(m)
        cal = _coverage_cells(target, m.get("calibration") or {})
        if cal and len(t.columns) == 2 + len(cols):
            for label in cal:
                t.add_column(label, justify="right")
        t.add_row(name, str(n), *(f"{h[c]:.4g}" for c in cols), *cal.values())
    return t


def _coverage_cells(target: str, cal: dict) -> dict[str, str]:
    """Coverage of +-1/+-2 calibrated sigma (expected 0.68/0.95) and Spearman rho of the
    table's main quantity: the first of the target's ``coverage`` quantities
    (:class:`molmag.models.targets.TargetSpec`) with a calibration, named by the first one
    the calibration lists."""
    from molmag.models.targets import target_spec

    choices = target_spec(target).coverage
    c = next((cal[key] for key, _ in choices if cal.get(key)), None)
    short = next((s for key, s in choices if key in cal), "")
    if not c or not c.get("n"):
        return {}
    rho = c.get("spearman_abs_error_sigma")
    return {f"±1σ {short} (0.68)": f"{c['coverage_1sigma']:.2f}",
            f"±2σ {short} (0.95)": f"{c['coverage_2sigma']:.2f}",
            f"ρ(|err|,σ) {short}": "-" if rho is None or rho != rho else f"{rho:.2f}"}


def _count(m: dict) -> int | str:
    for v in m.values():
        if isinstance(v, dict) and "n" in v:
            return v["n"]
    return ""


def train(
    config: Path = typer.Argument(..., help="Training configuration (YAML); "
                                  "`molmag template train --model KIND` writes one."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Output folder (overrides `output`)."),
    dataset: Optional[str] = typer.Option(None, "--dataset",
                                          help="Dataset (overrides data.dataset)."),
    kind: Optional[str] = typer.Option(None, "--model", help="Model kind (model.kind)."),
    committee: Optional[int] = typer.Option(None, "--committee",
                                            help="Committee members (model.committee)."),
    n_train: Optional[int] = typer.Option(None, "--n-train",
                                          help="Cap the training set (data.split.n_train)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed (data.seed)."),
    force: bool = typer.Option(False, "--force", help="Retrain even if OUTPUT has a model "
                               "trained with this configuration."),
):
    """Train a model (committee) as CONFIG says; write model.npz, metrics.json, parity.png.

    Networks checkpoint every epoch: re-running an interrupted command resumes."""
    from molmag.training import load_train_config
    from molmag.training import train as run_train

    with user_errors():
        cfg = load_train_config(config, output=output, dataset=dataset, kind=kind,
                                committee=committee, n_train=n_train, seed=seed)
    console.print(f"[bold]molmag train[/] {config}: {cfg.model.kind} on {cfg.data.dataset} "
                  f"-> {cfg.output}", highlight=False)
    try:
        with user_errors():
            res = run_train(cfg, log=_log, force=force)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: run the same command again to resume")
        raise typer.Exit(130)
    target = res.model.target
    console.print(_metrics_table(f"{cfg.model.kind}: {res.sizes['train']} training structures"
                                 + (" (already trained)" if res.resumed else
                                    f", {res.seconds:.1f} s"),
                                 target, {k: res.metrics[k] for k in ("train", "val", "test")
                                          if k in res.metrics}))
    console.print(f"uncertainty: {res.model.calibration_note}", highlight=False)
    console.print(f"model: {res.output / 'model.npz'}\nmetrics: {res.output / 'metrics.json'}"
                  f"\nparity plot: {res.output / 'parity.png'}"
                  f"\nreliability diagram: {res.output / 'reliability.png'}", highlight=False)


def evaluate(
    model: Path = typer.Argument(..., help="Model file (model.npz)."),
    dataset: str = typer.Argument(..., help="Labelled dataset."),
    selection: Optional[str] = typer.Option(None, "--select", help="ASE selection of rows."),
    as_json: bool = typer.Option(False, "--json", help="Print all metrics as JSON."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a parity plot (PNG) and "
                                        "a reliability diagram beside it (*_reliability.png)."),
):
    """Errors of MODEL on the labelled rows of DATASET, per split, and how well its
    calibrated uncertainty covers them (share of errors within ±1σ and ±2σ; expected 0.68 and
    0.95; ρ = Spearman correlation of |error| with σ).

    D tensors: MAE/RMSE per component, of D_ij, D and E (cm-1) and the easy-axis angle;
    energies: meV/atom and forces eV/Å; Kramers doublets and CF parameters: cm-1."""
    from molmag.training import evaluate as run_evaluate

    with user_errors():
        res = run_evaluate(model, existing_db(dataset), selection, plot)
    if as_json:
        print_json(res)
        return
    console.print(_metrics_table(f"{res['model']} on {dataset}", res["target"], res["metrics"]))
    console.print(f"uncertainty: {res['calibration_note']}", highlight=False)
    for path in res["plots"]:
        console.print(f"plot: {path}", highlight=False)


def calibrate(
    model: Path = typer.Argument(..., help="Model file (model.npz)."),
    dataset: str = typer.Argument(..., help="Labelled dataset with held-out rows."),
    selection: Optional[str] = typer.Option(None, "--select", help="ASE selection of the "
                                            "held-out rows (default: the model's validation "
                                            "split, or rows with split = val)."),
    method: str = typer.Option("conformal", "--method",
                               help="conformal | scale | scale-floor."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write the calibrated model here (default: "
                                          "in place)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
):
    """Calibrate MODEL's uncertainties on held-out rows of DATASET and store the calibration
    in the model file (for model files trained without one, or to re-calibrate on new
    data)."""
    from molmag.models.calibration import METHODS
    from molmag.training.run import calibrate_model

    with user_errors():
        if method not in METHODS:
            raise ValueError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
        res = calibrate_model(model, existing_db(dataset), selection, method, output, _log)
    if as_json:
        print_json(res)
        return
    t = Table(title=f"{res['model']}: calibrated ({method}) on {res['n']} held-out structures",
              title_justify="left")
    for c in ("quantity", "scale", "floor", "±1σ (0.68)", "±2σ (0.95)", "ρ(|err|,σ)"):
        t.add_column(c, justify="left" if c == "quantity" else "right")
    for key, c in res["calibration"].items():
        cov = res["coverage"].get(key, {})
        t.add_row(key, f"{c['scale']:.4g}", f"{c['floor']:.4g}",
                  f"{cov.get('coverage_1sigma', float('nan')):.2f}",
                  f"{cov.get('coverage_2sigma', float('nan')):.2f}",
                  f"{cov.get('spearman_abs_error_sigma', float('nan')):.2f}")
    console.print(t)


def predict(
    model: Path = typer.Argument(..., help="Model file (model.npz)."),
    structures: Path = typer.Argument(..., help="Structure file (xyz/extxyz/any ASE format)."),
    index: str = typer.Option(":", "--index", help="Frames to read (ASE index)."),
    metal: Optional[int] = typer.Option(None, "--metal", help="Metal atom index (default: "
                                        "the only d/f-block atom)."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
    summary_only: bool = typer.Option(False, "--summary-only",
                                      help="Print only the summary (n, mean, std, min, max, "
                                      "share flagged), not a row per structure."),
):
    """Predict with MODEL for every structure of STRUCTURES, each value ± its calibrated
    standard deviation.

    A structure is flagged (column `flag`, JSON `flags`) when atoms lie outside the model's
    training domain or its σ exceeds the calibration's threshold: do not trust those numbers.
    Progress goes to stderr; a summary closes the output."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from molmag.models.committee import Committee
    from molmag.training.run import predict as run_predict
    from molmag.training.run import prediction_summary

    with user_errors():
        frames = read_frames(structures, index, metal_index=metal)
        if metal is not None:
            for a in frames:
                a.info["metal_index"] = metal
        committee = Committee.load(model)
        with Progress("predict", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True,
                      disable=len(frames) < 128) as bar:
            task = bar.add_task("predict", total=len(frames))
            rows = run_predict(committee, frames, source=str(structures),
                               progress=lambda done, total: bar.update(task, completed=done))
    summary = prediction_summary(rows)
    if not committee.calibration.fitted:
        err_console.print(f"[yellow]warning:[/] {committee.calibration_note}",
                          highlight=False)
    if as_json:
        print_json({"summary": summary, "calibration_note": committee.calibration_note}
                   if summary_only else
                   {"predictions": rows, "summary": summary,
                    "calibration_note": committee.calibration_note})
        return
    keys = [k for k in rows[0] if k not in ("index", "formula", "flags", "trusted")
            and not k.endswith("_std")]
    scalar = [k for k in keys if not isinstance(rows[0][k], (list, dict))]
    if not summary_only:
        t = Table(title=f"{model} on {structures} (value ± calibrated σ)",
                  title_justify="left")
        t.add_column("#", justify="right")
        t.add_column("formula")
        for k in scalar:
            t.add_column(k, justify="right")
        if "kd_energies" in keys:
            t.add_column("KD energies (cm-1)")
        t.add_column("flag")
        for r in rows:
            cells = [_with_std(r[k], r[k + "_std"]) for k in scalar]
            if "kd_energies" in keys:
                cells.append(" ".join(f"{x:.0f}" for x in r["kd_energies"]))
            cells.append(_flag_cell(r["flags"]))
            t.add_row(str(r["index"]), r["formula"], *cells)
        console.print(t)
    st = Table(title=f"summary of {summary['n']} structure(s)", title_justify="left")
    for c in ("quantity", "mean", "std", "min", "max"):
        st.add_column(c, justify="left" if c == "quantity" else "right")
    for k in scalar + [k + "_std" for k in scalar]:
        if k in summary:
            v = summary[k]
            st.add_row(k, *(f"{v[c]:.4g}" for c in
                                          ("mean", "std", "min", "max")))
    console.print(st)
    console.print(f"flagged: {summary['flagged']} of {summary['n']} "
                  f"({100 * summary['flagged_share']:.1f} %); uncertainty: "
                  f"{committee.calibration_note}", highlight=False)


def _flag_cell(flags: list[str]) -> str:
    """The table's short form of a structure's flags (``--json`` has them all)."""
    if not flags:
        return ""
    more = f" (+{len(flags) - 1} more, see --json)" if len(flags) > 1 else ""
    return flags[0] + more


def _with_std(value: float, std: float) -> str:
    """value ± std with the value rounded to the std's second significant digit."""
    import math

    digits = 4 if not std > 0 else max(0, 1 - math.floor(math.log10(std)))
    return f"{value:.{digits}f} ± {std:.2g}"


def learning_curve(
    config: Path = typer.Argument(..., help="Training configuration (YAML)."),
    sizes: str = typer.Option("50,100,200,400,900", "--sizes",
                              help="Training-set sizes, comma separated."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Output folder (overrides `output`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
):
    """Test error against training-set size on one fixed test set; table and PNG.

    Each finished size is stored in OUTPUT/learning_curve.json: a re-run continues."""
    from molmag.training import learning_curve as run_curve
    from molmag.training import load_train_config

    with user_errors():
        try:
            ns = [int(x) for x in sizes.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--sizes {sizes!r}: expected integers like 50,100,200") from None
        if not ns or min(ns) < 2:
            raise ValueError("--sizes needs training sizes of at least 2")
        cfg = load_train_config(config, output=output)
        res = run_curve(cfg, ns, log=_log)
    if as_json:
        print_json(res)
        return
    t = Table(title=f"{res['model']}: learning curve (test set {res['test_size']}, "
                    f"validation {res['val_size']})", title_justify="left")
    t.add_column("n_train", justify="right")
    for c in res["columns"]:
        t.add_column(c, justify="right")
    cov = {n: _coverage_cells(res["target"], res["results"][n]["metrics"].get("calibration")
                              or {}) for n in res["sizes"]}
    cov_cols = next((list(c) for c in cov.values() if c), [])
    for c in cov_cols:
        t.add_column(c, justify="right")
    t.add_column("fit (s)", justify="right")
    t.add_column("pred/s", justify="right")
    for n in res["sizes"]:
        r = res["results"][n]
        t.add_row(str(n), *(f"{r['headline'][c]:.4g}" for c in res["columns"]),
                  *(cov[n].get(c, "-") for c in cov_cols),
                  f"{r['fit_seconds']:.1f}", f"{r['predictions_per_second']:.0f}")
    console.print(t)
    console.print(f"plot: {res['png']}\nresults: {res['json']}", highlight=False)
