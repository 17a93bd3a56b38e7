"""The `molmag` command."""

from __future__ import annotations

import typer

import molmag
from molmag.cli import campaign as campaign_cli
from molmag.cli import cf as cf_cli
from molmag.cli import data as data_cli
from molmag.cli import lf as lf_cli
from molmag.cli import orca as orca_cli
from molmag.cli import template as template_cli
from molmag.cli import vae as vae_cli
from molmag.cli.build import build
from molmag.cli.corpus import corpus
from molmag.cli.correlate import correlate
from molmag.cli.dynamics_analysis import spectra, thermal
from molmag.cli.explore import optimize, scan
from molmag.cli.features import features
from molmag.cli.ga import ga
from molmag.cli.info import info
from molmag.cli.label import label
from molmag.cli.learn import learn
from molmag.cli.magnetism import magnetism
from molmag.cli.md import md
from molmag.cli.parse import parse
from molmag.cli.relaxation import relaxation, spin_phonon_cmd, vibrations_cmd
from molmag.cli.train import calibrate, evaluate, learning_curve, predict, train
from molmag.cli.validate import schema, validate
from molmag.cli.zfs import zfs

app = typer.Typer(
    name="molmag",
    help="Machine-learning design of single-molecule magnets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool):
    if value:
        typer.echo(f"molmag {molmag.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version_callback,
                                           is_eager=True, help="Print the version and exit."),
):
    """molmag: symmetry-aware models of magnetic anisotropy, conformational landscapes and
    generative ligand design for single-molecule magnets."""


app.command("info")(info)
app.command("zfs")(zfs)
app.command("parse")(parse)
app.command("build")(build)
app.command("label")(label)
app.command("features")(features)
app.command("train")(train)
app.command("evaluate")(evaluate)
app.command("predict")(predict)
app.command("calibrate")(calibrate)
app.command("magnetism")(magnetism)
app.command("md")(md)
app.command("learn")(learn)
app.command("relaxation")(relaxation)
app.command("vibrations")(vibrations_cmd)
app.command("spin-phonon")(spin_phonon_cmd)
app.command("thermal")(thermal)
app.command("spectra")(spectra)
app.command("learning-curve")(learning_curve)
app.command("correlate")(correlate)
app.command("optimize")(optimize)
app.command("scan")(scan)
app.command("corpus")(corpus)
app.command("ga")(ga)
app.command("validate")(validate)
app.command("schema")(schema)
app.add_typer(data_cli.app, name="data")
app.add_typer(lf_cli.app, name="lf")
app.add_typer(cf_cli.app, name="cf")
app.add_typer(orca_cli.app, name="orca")
app.add_typer(template_cli.app, name="template")
app.add_typer(vae_cli.app, name="vae")
app.add_typer(campaign_cli.app, name="campaign")

if __name__ == "__main__":  # pragma: no cover
    app()
