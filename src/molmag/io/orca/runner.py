"""Run the ORCA inputs written by :func:`molmag.io.orca.inputs.write_orca_inputs` and read the
results back into a dataset.

Each folder ``ROOT/<name>/`` holds ``molmag.json`` (method, charge, multiplicity, dataset row
id, the inputs in the order they run) and the inputs.  :func:`run_orca_folders` runs
``orca <input> > <input stem>.out`` in every folder (``jobs`` folders at a time, each ORCA
using the ``%pal`` it was written with), then parses the last output
(:func:`molmag.io.qc.parse_file`) and stores its labels:

* into the row ``id`` of ``molmag.json`` when there is one (after checking that the computed
  geometry is that row's structure), otherwise as a new row (structure, charge, multiplicity
  from the output);
* for the geometry steps (``dy-geometry``): the optimised structure (ORCA's final ``.xyz``), with
  the Y(III) put back to Dy(III), as a new unlabelled row of the Dy complex.

Resumable: a folder whose outputs already end with ``****ORCA TERMINATED NORMALLY****`` is not
run again; one that failed is recorded in ``molmag_status.json`` (with ORCA's last lines) and
the others go on.  Results are written to the dataset as each folder finishes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from molmag.io.errors import DataFileError
from molmag.io.provenance import now_iso

NORMAL_END = "****ORCA TERMINATED NORMALLY****"
GEOMETRY_METHODS = ("dy-geometry", "dy-geometry-relax")


class OrcaNotFound(RuntimeError):
    """No ORCA executable: molmag cannot run the calculations here."""


def find_orca(orca: str | Path | None = None) -> Path:
    """The ORCA executable: ``orca`` given, else ``$MOLMAG_ORCA``, else ``orca`` on PATH.

    ORCA's parallel runs need the full path, so the result is absolute."""
    candidate = orca or os.environ.get("MOLMAG_ORCA") or shutil.which("orca")
    if not candidate or not Path(candidate).is_file():
        where = f"{orca!r} is not a file" if orca else "no 'orca' on PATH and MOLMAG_ORCA unset"
        raise OrcaNotFound(f"ORCA not found ({where}). Install ORCA (free for academic use, "
                           f"https://orcaforum.kofo.mpg.de), put its folder on PATH or pass "
                           f"--orca /path/to/orca; the inputs can also be run elsewhere and read "
                           f"back with 'molmag parse OUT --db DB'.")
    return Path(candidate).resolve()


def finished(out: Path) -> bool:
    """True when ``out`` exists and ORCA terminated normally."""
    if not out.is_file():
        return False
    with out.open("rb") as fh:
        fh.seek(max(0, out.stat().st_size - 4000))
        return NORMAL_END.encode() in fh.read()


@dataclass
class FolderResult:
    folder: Path
    status: str                      # "done", "skipped" (already finished), "failed"
    message: str = ""
    row: int | None = None
    row_status: str = ""


@dataclass
class RunSummary:
    results: list[FolderResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


def job_folders(root: str | Path) -> list[Path]:
    """The folders under ``root`` written by ``molmag orca write`` (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no folder {str(root)!r}")
    folders = sorted(p.parent for p in root.glob("*/molmag.json"))
    if not folders:
        raise FileNotFoundError(f"{root}: no job folders (*/molmag.json); write them with "
                                f"'molmag orca write'")
    return folders


def _meta(folder: Path) -> dict:
    try:
        meta = json.loads((folder / "molmag.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFileError(folder / "molmag.json", f"unreadable job description ({exc})") from None
    if not meta.get("inputs"):
        raise DataFileError(folder / "molmag.json", "lists no inputs", field="inputs")
    return meta


def _run_one(folder: Path, orca: Path, timeout: float | None) -> tuple[bool, str]:
    meta = _meta(folder)
    for inp in meta["inputs"]:
        out = folder / (Path(inp).stem + ".out")
        if finished(out):
            continue
        with out.open("w") as fh:
            try:
                proc = subprocess.run([str(orca), inp], cwd=folder, stdout=fh,
                                      stderr=subprocess.STDOUT, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                return False, f"{inp}: ORCA ran past {timeout} s and was stopped"
        if proc.returncode != 0 or not finished(out):
            tail = out.read_text(errors="replace").strip().splitlines()[-3:]
            return False, (f"{inp}: ORCA exit status {proc.returncode}"
                           + (f"; last lines: {' | '.join(tail)}" if tail else ""))
    return True, ""


def _store(folder: Path, meta: dict, dataset) -> tuple[int | None, str]:
    """Parse the folder's last output into the dataset; returns (row id, status)."""
    from molmag.io.qc import parse_file
    from molmag.io.records import Record

    last = folder / (Path(meta["inputs"][-1]).stem + ".out")
    if meta["method"] in GEOMETRY_METHODS:
        from ase import Atoms
        from ase.io import read

        xyz = last.with_suffix(".xyz")
        if not xyz.is_file():
            raise DataFileError(xyz, "ORCA's optimised geometry is missing")
        atoms = read(xyz)
        assert isinstance(atoms, Atoms)  # one frame
        mi = meta.get("metal_index")
        if mi is not None and atoms[mi].symbol == "Y":
            atoms[mi].symbol = "Dy"               # the Y(III) stand-in back to Dy(III)
        record = Record(atoms=atoms, charge=meta["charge"], multiplicity=meta["multiplicity"],
                        metal_index=mi)
        if dataset is None:
            return None, "geometry"
        id, status, _ = dataset.add(record)
        return id, status
    result = parse_file(last)
    if dataset is None:
        return None, "parsed"
    row = meta.get("id")
    if row is not None:
        stored = dataset.get(int(row))
        if result.atoms is not None and (
                stored.atoms.get_chemical_symbols() != result.atoms.get_chemical_symbols()
                or np.abs(stored.atoms.positions - result.atoms.positions).max() > 1e-4):
            raise DataFileError(last, f"the geometry differs from dataset row {row}: not storing "
                                      f"its labels there", field="structure")
        labels, prov = result.labels()
        if not labels:
            raise DataFileError(last, "no labels found in the output")
        dataset.set_labels(int(row), labels, prov)
        return int(row), "labelled"
    id, status, conflicts = dataset.add(result.to_record())
    return id, status + (f" (conflicts: {', '.join(conflicts)})" if conflicts else "")


def run_orca_folders(root: str | Path, *, db: str | None = None, orca: str | Path | None = None,
                     jobs: int = 1, timeout: float | None = None,
                     progress: Callable[[FolderResult], None] | None = None) -> RunSummary:
    """Run every job folder under ``root`` (``jobs`` at a time) and store the results in the
    dataset ``db`` (if given).  See the module docstring."""
    from molmag.io.dataset import Dataset

    folders = job_folders(root)
    orca_path = find_orca(orca)
    dataset = Dataset(db) if db is not None else None
    summary = RunSummary()

    def work(folder: Path) -> FolderResult:
        meta = _meta(folder)
        outs = [folder / (Path(i).stem + ".out") for i in meta["inputs"]]
        was_done = all(finished(o) for o in outs)
        ok, message = (True, "") if was_done else _run_one(folder, orca_path, timeout)
        status = "skipped" if was_done else ("done" if ok else "failed")
        return FolderResult(folder, status, message)

    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        futures = {pool.submit(work, f): f for f in folders}
        for fut in as_completed(futures):
            res = fut.result()
            if res.status != "failed":
                try:               # the dataset is written from this thread only
                    res.row, res.row_status = _store(res.folder, _meta(res.folder), dataset)
                except (DataFileError, ValueError) as exc:
                    res.status, res.message = "failed", str(exc)
            status = {"status": res.status, "message": res.message, "row": res.row,
                      "date": now_iso()}
            (res.folder / "molmag_status.json").write_text(json.dumps(status, indent=2) + "\n")
            summary.results.append(res)
            if progress is not None:
                progress(res)
    summary.results.sort(key=lambda r: r.folder.name)
    return summary


__all__ = ["FolderResult", "OrcaNotFound", "RunSummary", "find_orca", "finished", "job_folders",
           "run_orca_folders"]
