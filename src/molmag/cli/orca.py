"""`molmag orca ...`: write the seeds' ORCA reference inputs and run them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from molmag.cli.common import console, err_console, fail, user_errors

app = typer.Typer(help="Write the papers' ORCA reference calculations for molmag structures, "
                       "run them and read the results back.", no_args_is_help=True)

METHOD_HELP = ("co-casscf: CASSCF(7,5)+QDPT SOC, def2-TZVP/def2-SVP (Lunghi & Sanvito); "
               "dy-casscf: SA-CASSCF(9,7) sextets (+quartets) DKH2, SOC, SINGLE_ANISO (GAUSS-II); "
               "dy-geometry: BP86-D3(BJ) optimisation with Y(III) for Dy(III), equatorial O held "
               "planar at 72 degrees, then a full relaxation (GAUSS-II).")


def _structures(source: str, select: Optional[str], charge, multiplicity):
    """(atoms list, names, dataset ids) from a dataset or a structure file."""
    from ase.io import read

    is_db = "://" in source or source.endswith((".db", ".json"))
    if is_db:
        from molmag.io import Dataset

        if "://" not in source and not Path(source).exists():
            fail(f"no dataset at {source!r}")
        structures, names, ids = [], [], []
        for rec in Dataset(source).select(select):
            atoms = rec.atoms.copy()
            atoms.info.update(charge=rec.charge, multiplicity=rec.multiplicity)
            structures.append(atoms)
            names.append(f"row{rec.id:06d}")
            ids.append(rec.id)
        if not structures:
            fail(f"{source}: no rows{' match ' + repr(select) if select else ''}")
        return structures, names, ids
    if select:
        fail("--select applies to datasets only")
    path = Path(source)
    if not path.is_file():
        fail(f"no file {source!r}")
    try:
        frames = read(path, index=":")
    except Exception as exc:          # ASE raises many types for unreadable files
        fail(f"{source}: cannot read structures ({exc})")
    for atoms in frames:
        if charge is not None:
            atoms.info["charge"] = charge
        if multiplicity is not None:
            atoms.info["multiplicity"] = multiplicity
    stem = "".join(c if c.isalnum() or c in "_-" else "_" for c in path.stem)
    names = [stem] if len(frames) == 1 else [f"{stem}_{i:05d}" for i in range(len(frames))]
    return frames, names, None


@app.command("write")
def write(
    source: str = typer.Argument(..., help="A dataset (.db file or URL) or a structure file "
                                 "(xyz, extxyz, any format ASE reads)."),
    method: str = typer.Option(..., "--method", help=METHOD_HELP),
    out: Path = typer.Option(..., "--out", help="Folder to write; one sub-folder per structure."),
    select: Optional[str] = typer.Option(None, help="Dataset rows to take (ASE selection, e.g. "
                                         "'split=test')."),
    charge: Optional[int] = typer.Option(None, help="Charge of structures from a file that does "
                                         "not give one."),
    multiplicity: Optional[int] = typer.Option(None, help="Spin multiplicity of structures from "
                                               "a file that does not give one."),
    nevpt2: bool = typer.Option(False, help="CASSCF methods: add SC-NEVPT2 energies to the QDPT."),
    quartets: bool = typer.Option(False, help="dy-casscf: also average over the 224 quartets."),
    nprocs: int = typer.Option(1, help="%pal nprocs of each calculation."),
    maxcore: int = typer.Option(2000, help="%maxcore, MB per process."),
    overwrite: bool = typer.Option(False, help="Replace inputs that exist (default: keep them)."),
):
    """Write one folder per structure with the ORCA input and a molmag.json job description."""
    from molmag.io.orca.inputs import METHODS, write_orca_inputs

    if method not in METHODS:
        fail(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    structures, names, ids = _structures(source, select, charge, multiplicity)
    with user_errors():
        written = write_orca_inputs(structures, out, method, names=names, ids=ids,
                                    overwrite=overwrite, nevpt2=nevpt2, quartets=quartets,
                                    nprocs=nprocs, maxcore=maxcore)
    console.print(f"{out}: {len(written.written)} input folder(s) written, "
                  f"{len(written.skipped)} kept as they were ({method})", highlight=False)
    console.print(f"run them with: molmag orca run {out} --db DB", highlight=False)


@app.command("run")
def run(
    folder: Path = typer.Argument(..., help="A folder written by 'molmag orca write'."),
    db: Optional[str] = typer.Option(None, "--db", help="Dataset to store the results in."),
    jobs: int = typer.Option(1, help="Calculations run at the same time (each uses its own "
                             "%pal)."),
    orca: Optional[Path] = typer.Option(None, help="ORCA executable (default: $MOLMAG_ORCA, then "
                                        "'orca' on PATH)."),
    timeout: Optional[float] = typer.Option(None, help="Stop a calculation after this many "
                                            "seconds."),
):
    """Run the ORCA jobs of FOLDER (folders already finished are not run again) and parse the
    results into the dataset as each finishes; failures are listed, the rest go on."""
    from molmag.io.orca.runner import OrcaNotFound, run_orca_folders

    def show(res):
        colour = {"done": "green", "skipped": "cyan", "failed": "red"}[res.status]
        err_console.print(f"[{colour}]{res.status:8s}[/] {res.folder.name}"
                          + (f"  row {res.row} ({res.row_status})" if res.row is not None else "")
                          + (f"  {res.message}" if res.message else ""), highlight=False,
                          soft_wrap=True)

    try:
        with user_errors():
            summary = run_orca_folders(folder, db=db, orca=orca, jobs=jobs, timeout=timeout,
                                       progress=show)
    except OrcaNotFound as exc:
        fail(str(exc))
    table = Table(title=f"ORCA jobs in {folder}", title_justify="left")
    for c in ("done", "already finished", "failed"):
        table.add_column(c, justify="right")
    table.add_row(str(summary.count("done")), str(summary.count("skipped")),
                  str(summary.count("failed")))
    console.print(table)
    if summary.count("failed"):
        fail(f"{summary.count('failed')} job(s) failed; see molmag_status.json in their folders",
             code=2)
