"""`molmag correlate`: magneto-structural correlations of D over a dataset or a trajectory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from molmag.cli.common import console, fail, print_json, progress_bars, user_errors

if TYPE_CHECKING:
    from ase.calculators.calculator import Calculator


def correlate(
    source: str = typer.Argument(..., help="A molmag dataset (D from its zfs_tensor labels) "
                                 "or a trajectory/structure file (xyz, extxyz, traj)."),
    select: Optional[str] = typer.Option(None, "--select", help="ASE selection of rows."),
    index: str = typer.Option(":", "--index", help="Frames of a trajectory (ASE index)."),
    model: Optional[Path] = typer.Option(None, "--model", help="D from a trained model "
                                         "(model.npz) instead of the labels."),
    ligand_field: bool = typer.Option(False, "--ligand-field", help="D from molmag's "
                                      "ligand-field engine instead of the labels."),
    charge: Optional[int] = typer.Option(None, "--charge", help="Total charge of frames "
                                         "without one (ligand field)."),
    multiplicity: Optional[int] = typer.Option(None, "--multiplicity",
                                               help="Spin multiplicity of frames without one."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap samples of the 95% "
                                  "confidence interval of r (0: none)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for correlations.json/.npz "
                                       "and one scatter PNG per feature."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
):
    """Pearson r of D with the mean metal-donor distance, the tetrahedral order parameter q and
    the mean intraligand angle, next to Zaverkin et al.'s values (MD at 100 K: -0.22, 0.88).

    The slope is dD/dfeature in cm-1 per feature unit (Å, 1, degree)."""
    from molmag.explore.correlations import magneto_structural_correlations

    if model is not None and ligand_field:
        fail("give either --model or --ligand-field, not both")
    calc: Calculator | None = None
    with user_errors():
        if model is not None:
            from molmag.models.calculator import ModelCalculator

            calc = ModelCalculator(model)
            if calc.model.target != "zfs_tensor":
                raise ValueError(f"{model}: a {calc.model.target} model; correlations need a "
                                 "D-tensor model")
        elif ligand_field:
            from molmag.physics.ligand_field import LigandFieldCalculator

            calc = LigandFieldCalculator()
        if "://" not in source and not Path(source).exists():
            raise FileNotFoundError(f"{source}: no such dataset or file")
        with progress_bars() as progress:
            res = magneto_structural_correlations(
                source, calculator=calc, selection=select, index=index, charge=charge,
                multiplicity=multiplicity, n_bootstrap=bootstrap,
                progress=progress if calc is not None else None)
    files = []
    if out is not None:
        files = [*res.save(out / "correlations"), *res.plot(out)]
    if as_json:
        import math

        def clean(o):
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, float) and not math.isfinite(o):
                return None
            return o

        print_json(clean({"source": res.source, "D_from": res.D_from, "n": int(len(res.D)),
                    "D_mean": float(res.D.mean()), "D_std": float(res.D.std()),
                    "stats": res.stats, "literature": res.literature, "skipped": res.skipped,
                    "files": [str(f) for f in files]}))
        return
    t = Table(title=f"{source}: {len(res.D)} structures, D = {res.D.mean():.1f} ± "
                    f"{res.D.std():.1f} cm-1 ({res.D_from})", title_justify="left")
    short = {"d_ML_mean_A": "d_ML (Å)", "q_tet": "q", "angle_intra_mean_deg": "bite angle (°)"}
    for c in ("feature", "mean", "r", "95% CI", "slope", "Zaverkin 2022"):
        t.add_column(c, justify="left" if c == "feature" else "right")
    for row in res.table():
        k = row["feature"]
        ci = (f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
              if row.get("ci_low") is not None and row["ci_low"] == row["ci_low"] else "")
        lit = row.get("r_literature")
        t.add_row(short.get(k, k),
                  f"{res.features[k].mean():.4g}", f"{row['r']:+.3f}", ci,
                  f"{row['slope']:.4g}", "" if lit is None else f"{lit:+.2f}")
    console.print(t)
    if res.skipped:
        console.print(f"skipped {len(res.skipped)}: {res.skipped[0]}"
                      + (" ..." if len(res.skipped) > 1 else ""), highlight=False)
    for f in files:
        console.print(f"wrote {f}", highlight=False)
