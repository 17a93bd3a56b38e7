"""`molmag campaign ...`: the end-to-end design campaigns, stage by stage, resumable."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Optional

import typer

from molmag.cli.common import console, err_console, fail

app = typer.Typer(help="End-to-end design campaigns (resumable, stage by stage).",
                  no_args_is_help=True)


class _Reporter:
    def __init__(self):
        self.t0 = time.perf_counter()

    def start(self, k, n, stage):
        console.print(f"[bold][{k}/{n}] {stage.name}[/]: {stage.title} ...", highlight=False)

    def skip(self, k, n, stage, entry):
        console.print(f"[dim][{k}/{n}] {stage.name}: done earlier "
                      f"({entry.get('seconds', 0):.0f} s), skipped[/]", highlight=False)

    def finish(self, k, n, stage, entry):
        console.print(f"[green][{k}/{n}] {stage.name}: done in {entry['seconds']:.0f} s[/]",
                      highlight=False)

    def fail(self, k, n, stage, entry):
        err_console.print(f"[bold red][{k}/{n}] {stage.name} failed[/] after "
                          f"{entry['seconds']:.0f} s: {entry['reason']}", highlight=False,
                          soft_wrap=True)


def _log(text: str) -> None:
    console.print(f"[dim]    {text}[/]", highlight=False, soft_wrap=True)


def _plain(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"\1", text)


def _run(run, name: str, out: Path, settings, stop_after: str | None) -> dict:
    """Run a campaign with the CLI's progress, turning its errors into messages."""
    from molmag.workflows.stages import StageError

    console.print(f"[bold]molmag campaign {name}[/] ({settings.mode}) -> {out}",
                  highlight=False)
    try:
        return run(out, settings, log=_log, reporter=_Reporter(), only=stop_after)
    except StageError as exc:
        fail(f"{exc}\nwhat earlier stages produced is kept in {out}; fix the cause and run the "
             "same command again to resume")
    except ValueError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/]: run the same command again to resume "
                          f"(state in {out}/campaign.json)")
        raise typer.Exit(130)


@app.command("co-pdms")
def co_pdms(
    quick: bool = typer.Option(False, "--quick", help="Small sizes: a few minutes on 2 cores "
                               "(default: the paper's sizes, hours on a workstation)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: "
                             "campaign-co-pdms, or campaign-co-pdms-quick with --quick)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j",
                                          help="Labelling processes (default: one per core)."),
    stop_after: Optional[str] = typer.Option(None, "--stop-after",
                                             help="Stop after this stage (build, sample, "
                                                  "label, train, learn, md, thermal, pso, "
                                                  "scan, correlate, magnetism)."),
):
    """The [Co(pdms)2]2- campaign (Lunghi & Sanvito 2020; Zaverkin et al. 2022): build ->
    sample -> label -> train (covariant ridge, GM-NN committee, SNAP energy) -> active
    learning from ML MD -> MD at several temperatures -> thermal averages of D and E -> PSO
    for several gamma -> 2D scans -> correlations -> spin-phonon relaxation and magnetism ->
    report.md + report.html in OUT.

    Every stage is recorded in OUT/campaign.json; running the same command again skips the
    stages already done and resumes the one that was interrupted."""
    from molmag.workflows.co_pdms import CoPdmsSettings, run_co_pdms
    from molmag.workflows.co_pdms_report import findings

    settings = CoPdmsSettings.quick(workers=workers) if quick else \
        CoPdmsSettings.full(workers=workers)
    out = out or Path("campaign-co-pdms-quick" if quick else "campaign-co-pdms")
    t0 = time.perf_counter()
    res = _run(run_co_pdms, "co-pdms", out, settings, stop_after)
    if "report" in res:
        bullets, _ = findings(res)
        console.print("\n[bold]Which coordinates drive D[/]")
        for b in bullets:
            console.print(f"- {_plain(b)}", highlight=False)
        console.print(f"\nreport: {out / 'report.md'}, {out / 'report.html'}  "
                      f"({time.perf_counter() - t0:.0f} s)", highlight=False)


@app.command("dy-ligands")
def dy_ligands(
    quick: bool = typer.Option(False, "--quick", help="Small sizes: under 15 minutes on 2 cores "
                               "(default: the paper's sizes, hours on a workstation)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: "
                             "campaign-dy-ligands, or campaign-dy-ligands-quick with --quick)."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Ligand corpus file (molmag "
                                          "corpus); default: molmag's built-in corpus."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j",
                                          help="Labelling processes (default: one per core)."),
    stop_after: Optional[str] = typer.Option(None, "--stop-after",
                                             help="Stop after this stage (corpus, proxies, "
                                                  "train, gaps, map, seeds, repopulate)."),
    pretrained: bool = typer.Option(False, "--pretrained", help="Start from a shipped "
                                    "GAUSS-II model (no proxies, no VAE training; the budget "
                                    "goes into Kramers-gap labels)."),
    model: Optional[str] = typer.Option(None, "--model", help="With --pretrained: which model, "
                                        "a shipped name (gauss-ii-qm9, gauss-ii-qm9-selfies) or "
                                        "a model file from `molmag vae train` (default: "
                                        "molmag's default shipped model)."),
):
    """The Dy(H2O)5L2 ligand-design campaign (Khatibi et al. 2026, GAUSS-II): corpus ->
    proxies (GFN2-xTB/D4) -> VAE -> Kramers gaps of a labelled subset (crystal field on
    xTB-relaxed complexes) -> latent maps -> seed bins -> targeted repopulation ->
    report.md + report.html in OUT.

    Every stage is recorded in OUT/campaign.json; running the same command again skips the
    stages already done and resumes the one that was interrupted."""
    from molmag.generative.pretrained import DEFAULT, MODELS
    from molmag.workflows.dy_ligands import DyLigandSettings, run_dy_ligands
    from molmag.workflows.dy_ligands_report import findings

    over: dict[str, Any] = {"workers": workers}
    if model is not None and not pretrained:
        fail("--model names the pretrained model to start from: give --pretrained too")
    if pretrained:
        if corpus is not None:
            fail("--pretrained uses the model's own corpus (QM9 ligands): give no --corpus")
        if model is None or model in MODELS:
            over["pretrained"] = model or DEFAULT
        elif Path(model).is_file():
            over["pretrained"] = str(Path(model).resolve())
        else:
            fail(f"--model {model}: neither a shipped model ({', '.join(MODELS)}) nor a file")
    if corpus is not None:
        if not corpus.is_file():
            fail(f"--corpus {corpus}: no such file")
        over["corpus"] = str(corpus.resolve())
    settings = DyLigandSettings.quick(**over) if quick else DyLigandSettings.full(**over)
    tag = "" if not pretrained else "-pretrained" + (
        "" if over["pretrained"] == DEFAULT else "-" + Path(over["pretrained"]).stem)
    out = out or Path(("campaign-dy-ligands-quick" if quick else "campaign-dy-ligands") + tag)
    t0 = time.perf_counter()
    res = _run(run_dy_ligands, "dy-ligands", out, settings, stop_after)
    if "report" in res:
        console.print("\n[bold]Findings[/]")
        for b in findings(res):
            console.print(f"- {_plain(b)}", highlight=False)
        console.print(f"\nreport: {out / 'report.md'}, {out / 'report.html'}  "
                      f"({time.perf_counter() - t0:.0f} s)", highlight=False)
