"""`molmag template ...`: write commented example configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from molmag.cli.common import console, fail
from molmag.labelling.templates import TEMPLATES as LABEL_TEMPLATES

app = typer.Typer(help="Write commented example configuration files.", no_args_is_help=True)


def _write(text: str, out: Optional[Path], force: bool) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.exists() and not force:
        fail(f"{out} exists; use --force to overwrite it")
    out.write_text(text)
    console.print(f"wrote {out}")


@app.command("label")
def label_template(
    system: str = typer.Option("co-pdms", "--system",
                               help=f"One of: {', '.join(LABEL_TEMPLATES)}."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag label` configuration for the seed systems."""
    if system not in LABEL_TEMPLATES:
        fail(f"unknown system {system!r}; choose one of {', '.join(LABEL_TEMPLATES)}")
    _write(LABEL_TEMPLATES[system], out, force)


@app.command("train")
def train_template(
    model: str = typer.Option("covariant-ridge", "--model",
                              help="Model kind: covariant-ridge, equivariant-ridge, gmnn-tensor, "
                                   "gmnn-energy, snap-energy, kd-gap-ridge, cf-ridge."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag train` configuration for a model kind."""
    from molmag.training.templates import SPECS
    from molmag.training.templates import train_template as make

    if model not in SPECS:
        fail(f"unknown model kind {model!r}; choose one of {', '.join(SPECS)}")
    name = out.stem if out is not None else None
    _write(make(model, name), out, force)


@app.command("optimize")
def optimize_template(
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag optimize` configuration (PSO of chi = E + gamma D)."""
    from molmag.explore.templates import OPTIMIZE

    _write(OPTIMIZE, out, force)


@app.command("scan")
def scan_template(
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag scan` configuration (2D scan of D and E)."""
    from molmag.explore.templates import SCAN

    _write(SCAN, out, force)


@app.command("vae")
def vae_template(
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag vae train` configuration (the GAUSS VAE)."""
    from molmag.generative.templates import VAE_TRAIN

    _write(VAE_TRAIN, out, force)


@app.command("md")
def md_template(
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag md` configuration (Langevin NVT with committees)."""
    from molmag.dynamics.templates import MD

    _write(MD, out, force)


@app.command("ga")
def ga_template(
    system: str = typer.Option("dy-axial", "--system", help="dy-axial or co-chelate."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag ga` configuration (genetic-algorithm ligand screening)."""
    from molmag.screening.templates import GA_TEMPLATES

    if system not in GA_TEMPLATES:
        fail(f"unknown system {system!r}; choose one of {', '.join(GA_TEMPLATES)}")
    _write(GA_TEMPLATES[system], out, force)


@app.command("learn")
def learn_template(
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File to write (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
):
    """A `molmag learn` configuration (active learning from ML MD)."""
    from molmag.dynamics.templates import LEARN

    _write(LEARN, out, force)
