"""`molmag label CONFIG.yaml`: build, sample and label structures on Dask, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from molmag.cli.common import console, err_console, user_errors
from molmag.labelling import LabelRun, Reporter, load_label_config


class RichReporter(Reporter):
    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def start(self, stage, total, done=0):
        desc = {"build": "building + sampling", "label": "labelling"}.get(stage, stage)
        self.tasks[stage] = self.progress.add_task(desc, total=total, completed=done)

    def advance(self, stage, n=1):
        self.progress.advance(self.tasks[stage], n)

    def message(self, text):
        self.progress.console.print(f"[dim]{text}[/]", highlight=False, soft_wrap=True)


def label(
    config: Path = typer.Argument(..., help="Label configuration (YAML); "
                                  "`molmag template label` writes an example."),
    output: Optional[str] = typer.Option(None, "--output", "-o",
                                         help="Dataset to write (overrides `output`)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j",
                                          help="Local worker processes (cluster.n_workers)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="Address of a running Dask scheduler "
                                                 "(cluster.kind address)."),
    serial: bool = typer.Option(False, "--serial", help="No Dask: run in this process "
                                "(cluster.kind serial)."),
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="Try again what failed in an earlier run."),
    batch_size: Optional[int] = typer.Option(None, min=1,
                                             help="Structures per task (batch_size)."),
    lease_seconds: Optional[float] = typer.Option(
        None, min=0.001, help="Lifetime of this run's claims on work (lease_seconds): other "
        "runs on the same dataset take over a dead run's work this long after it stopped."),
):
    """Build, sample and label structures as CONFIG says, writing each result as it arrives.

    Re-running the same command resumes: nothing already stored is recomputed, and
    failures recorded by earlier runs are skipped unless --retry-failed.  Several runs of
    the same command on one dataset (e.g. one per node) share the work: each structure is
    labelled once.
    """
    with user_errors():
        cfg = load_label_config(config, output=output, n_workers=workers, address=scheduler,
                                kind="serial" if serial else None,
                                retry_failed=retry_failed or None, batch_size=batch_size,
                                lease_seconds=lease_seconds)
    n_sources = len(cfg.sources)
    console.print(f"[bold]molmag label[/] {config} -> {cfg.output}  ({n_sources} source"
                  f"{'s' if n_sources != 1 else ''}; labels: {', '.join(cfg.labels.names())}; "
                  f"cluster: {cfg.cluster.kind})", highlight=False)
    progress = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console)
    run = None
    try:
        with progress, user_errors():
            run = LabelRun(cfg, RichReporter(progress))
            s = run.run()
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: everything finished so far is stored; run "
                          "the same command again to resume")
        raise typer.Exit(130)
    t = Table(title=f"{cfg.output}", title_justify="left", show_header=False)
    t.add_column("", style="bold")
    t.add_column("", justify="right")
    t.add_row("structures built (this run)", str(s.built))
    t.add_row("built earlier (skipped)", str(s.build_skipped))
    t.add_row("rows added", str(s.rows_added))
    t.add_row("rows in this configuration", str(s.rows_in_run))
    t.add_row("labelled now", str(s.labelled))
    t.add_row("already labelled", str(s.already_labelled))
    t.add_row("new failures", str(len(s.failures_new)))
    t.add_row("earlier failures skipped", str(s.failures_skipped))
    t.add_row("workers", str(s.workers))
    t.add_row("wall time", f"{s.seconds:.1f} s")
    console.print(t)
    for key, reason in list(s.failures_new.items())[:10]:
        err_console.print(f"[yellow]failed[/] {key}: {reason}", highlight=False, soft_wrap=True)
    if len(s.failures_new) > 10:
        err_console.print(f"... and {len(s.failures_new) - 10} more: molmag data failures "
                          f"{cfg.output}")
