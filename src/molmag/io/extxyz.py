"""extxyz (and other ASE-readable files) <-> molmag records.

Labels are stored under ``REF_``-prefixed keys, as MACE and apax do: per-frame ``REF_energy``
(eV), ``REF_zfs_tensor`` (3x3, cm-1), ``REF_kd_energies`` (cm-1), ``REF_g_tensors``,
``REF_cf_parameters`` (JSON: convention and values) and per-atom ``REF_forces`` (eV/Angstrom).
The electronic state and bookkeeping go in ``charge``, ``multiplicity``, ``metal_index`` and
``split``; ``provenance`` is a JSON object with one record per label.

Files written by other programs may instead carry ``energy``/``forces`` (read by ASE into a
single-point calculator); those are taken as labels when no ``REF_`` value is present.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, cast, overload

import ase.io
import numpy as np
from ase import Atoms
from ase.io.extxyz import key_val_str_to_dict

from molmag.io.errors import DataFileError, LabelError
from molmag.io.labels import LABELS, PER_ATOM_LABELS
from molmag.io.provenance import Provenance, now_iso
from molmag.io.records import Record
from molmag.io.validation import validate_structure
from molmag.physics.elements import metal_indices

PREFIX = "REF_"
_MULTIPLICITY_KEYS = ("multiplicity", "spin_multiplicity", "mult")
_META_KEYS = {"charge", "metal_index", "split", "provenance", *_MULTIPLICITY_KEYS}


def _unflatten_special_3x3(name: str, value):
    """ASE reads any 9-number value as a 3x3 matrix in Fortran order; undo that for labels
    that are stored flat."""
    arr = np.asarray(value)
    if name == "kd_energies" and arr.shape == (3, 3):
        return arr.ravel(order="F")
    return value


def _frame_to_record(atoms: Atoms, file: str, frame: int, defaults: dict,
                     warn: Callable[[str], None]) -> Record:
    info = dict(atoms.info)
    labels: dict = {}
    for key in list(info):
        if key.startswith(PREFIX):
            name = key[len(PREFIX):]
            if name in LABELS:
                labels[name] = _unflatten_special_3x3(name, info.pop(key))
            else:
                warn(f"{file}, frame {frame}: ignoring unknown label {key!r}")
                info.pop(key)
    for key in list(atoms.arrays):
        if key.startswith(PREFIX):
            name = key[len(PREFIX):]
            if name in PER_ATOM_LABELS:
                labels[name] = atoms.arrays[key]
            else:
                warn(f"{file}, frame {frame}: ignoring unknown per-atom label {key!r}")
    calc_results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    for name in ("energy", "forces"):
        if name not in labels and name in calc_results:
            labels[name] = calc_results[name]

    meta = dict(defaults)
    if "charge" in info:
        meta["charge"] = info["charge"]
    for k in _MULTIPLICITY_KEYS:
        if k in info:
            meta["multiplicity"] = info[k]
            break
    for k in ("metal_index", "split"):
        if k in info:
            meta[k] = info[k]
    validate_structure(atoms, source=file, frame=frame, charge=meta.get("charge"),
                       multiplicity=meta.get("multiplicity"), metal_index=meta.get("metal_index"))
    if metal_indices(atoms):
        for k in ("charge", "multiplicity"):
            if meta.get(k) is None:
                raise DataFileError(file, f"a metal complex needs its {k}: put '{k}=...' in the "
                                    f"frame's comment line or pass --{k}", frame, k)
    if meta.get("charge") is None:
        meta["charge"] = 0
    if meta.get("multiplicity") is None:  # no metal: lowest multiplicity the electrons allow
        meta["multiplicity"] = 1 + (int(np.sum(atoms.numbers)) - int(meta["charge"])) % 2

    prov_in = info.get("provenance", {}) or {}
    if not isinstance(prov_in, dict):
        raise DataFileError(file, "must be a JSON object keyed by label name", frame, "provenance")
    provenance: dict[str, Any] = {}
    for name in labels:
        p = dict(prov_in.get(name, {}))
        p.setdefault("source", f"{file}:{frame}")
        p.setdefault("imported", now_iso())
        provenance[name] = p
    clean = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    try:
        return Record(clean, charge=meta["charge"], multiplicity=meta["multiplicity"],
                      metal_index=meta.get("metal_index"), split=meta.get("split"),
                      labels=labels,
                      # Record validates the dicts into Provenance (errors name the label)
                      provenance=cast("dict[str, Provenance]", provenance))
    except LabelError as exc:
        field = exc.field if exc.field in _META_KEYS or exc.field.startswith("provenance") \
            else PREFIX + exc.field
        raise DataFileError(file, exc.message, frame, field) from None


_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*("(?:[^"\\]|\\.)*"|\{[^}]*\}|\S+)')


def _column_ok(kind: str, text: str) -> bool:
    if kind == "R":
        try:
            float(text.replace("d", "e").replace("D", "e"))
        except ValueError:
            return False
        return True
    if kind == "I":
        try:
            int(text)
        except ValueError:
            return False
        return True
    if kind == "L":
        return text in ("T", "F", "True", "False", "true", "false", "TRUE", "FALSE")
    return True


_Diagnosis = tuple[str | None, int | None]
_DiagnosisAll = tuple[str | None, int | None, int | None]


@overload
def _diagnose(path: Path, frame: int) -> _Diagnosis: ...


@overload
def _diagnose(path: Path, frame: None) -> _DiagnosisAll: ...


def _diagnose(path: Path, frame: int | None) -> _Diagnosis | _DiagnosisAll:
    """Find which field of an (ext)xyz frame ASE could not parse: a key of the comment line,
    the atom count, or a value of an atom line (named by its property, e.g. ``pos``).
    Returns (field, 1-based line number); (None, None) when nothing is found.  With
    ``frame=None`` every frame is checked and the first problem is returned as
    (field, line, frame) instead."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return (None, None) if frame is not None else (None, None, None)
    i, f = 0, 0

    def found(field, line):
        return (field, line) if frame is not None else (field, line, f)

    while i < len(lines):
        if frame is not None and f > frame:
            break
        mine = frame is None or f == frame
        if not lines[i].strip():
            if frame is None and not any(x.strip() for x in lines[i:]):
                break  # trailing blank lines
            if mine:
                return found("atom count", i + 1)
        try:
            natoms = int(lines[i].split()[0])
            if natoms < 0:
                raise ValueError
        except (ValueError, IndexError):
            return found("atom count", i + 1) if mine else (None, None)
        if mine:
            comment = lines[i + 1] if i + 1 < len(lines) else ""
            for key, value in _PAIR.findall(comment):
                try:
                    key_val_str_to_dict(f"{key}={value}")
                except Exception:
                    return found(key, i + 2)
            body = lines[i + 2:i + 2 + natoms]
            if len(body) < natoms:
                return found("atom lines", i + 2 + len(body) + 1)
            try:
                props = str(key_val_str_to_dict(comment).get("Properties", "species:S:1:pos:R:3"))
                parts = props.split(":")
                if len(parts) % 3:
                    raise ValueError
                cols = []
                for name, kind, count in zip(parts[0::3], parts[1::3], parts[2::3]):
                    if kind not in "RILS" or int(count) < 1:
                        raise ValueError
                    cols += [(name, kind)] * int(count)
            except Exception:
                return found("Properties", i + 2)
            for k, line in enumerate(body):
                values = line.split()
                if len(values) != len(cols):
                    return found("atom lines", i + 3 + k)
                for (name, kind), text in zip(cols, values):
                    if not _column_ok(kind, text):
                        return found(name, i + 3 + k)
            after = i + 2 + natoms
            if frame is not None and after < len(lines) and lines[after].strip():
                try:
                    int(lines[after].split()[0])
                except ValueError:
                    return found("atom count", after + 1)
            if frame is not None:
                return None, None
        i += natoms + 2
        f += 1
    return (None, None) if frame is not None else (None, None, None)


def iter_frames(path, format: str | None = None) -> Iterator[tuple[int, Atoms]]:
    """Yield ``(frame, atoms)`` for every frame of a structure file (extxyz for .xyz/.extxyz,
    else any format ASE reads), unvalidated.  A frame that cannot be read raises
    :class:`DataFileError` naming the file, the frame, the field and the line where the
    (ext)xyz text is at fault; an empty file raises one saying so."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    if format is None and path.suffix.lower() in (".xyz", ".extxyz"):
        format = "extxyz"
    frame = 0
    try:
        it = ase.io.iread(path, index=":", format=format)
    except Exception as exc:  # unknown format and the like
        raise DataFileError(path, f"cannot read: {_reason(exc)}") from None
    while True:
        try:
            atoms = next(it)
        except StopIteration:
            break
        except DataFileError:
            raise
        except Exception as exc:
            field, line = _diagnose(path, frame) if format == "extxyz" else (None, None)
            where = f" (line {line})" if line else ""
            raise DataFileError(path, f"malformed frame{where}: {_reason(exc)}",
                                frame, field) from None
        if frame == 0 and format == "extxyz":
            # ASE passes over some faults (extra columns, a count that skips an atom line):
            # one pass over the text finds them before any frame is used
            field, line, bad = _diagnose(path, None)
            if field is not None:
                raise DataFileError(path, f"malformed frame (line {line})", bad, field)
        yield frame, atoms
        frame += 1
    if frame == 0:
        raise DataFileError(path, "contains no structures")


def _reason(exc: BaseException) -> str:
    """One line: the exception's type and message (the type alone when it has none)."""
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def validate_frame(atoms: Atoms, file, frame: int, *, charge=None, multiplicity=None,
                   metal_index=None) -> None:
    """:func:`~molmag.io.validation.validate_structure` for a frame read from ``file``; the
    charge and multiplicity are the frame's own (``info``) unless given."""
    info = atoms.info
    if charge is None:
        charge = info.get("charge")
    if multiplicity is None:
        multiplicity = next((info[k] for k in _MULTIPLICITY_KEYS if k in info), None)
    if metal_index is None:
        metal_index = info.get("metal_index")
    validate_structure(atoms, source=str(file), frame=frame, charge=charge,
                       multiplicity=multiplicity, metal_index=metal_index)


def read_records(path, *, charge: int | None = None, multiplicity: int | None = None,
                 metal_index: int | None = None, split: str | None = None,
                 format: str | None = None,
                 warn: Callable[[str], None] | None = None) -> Iterator[Record]:
    """Yield one :class:`Record` per frame of an extxyz (or any ASE-readable) file.

    ``charge``, ``multiplicity``, ``metal_index`` and ``split`` are used for frames that do
    not carry their own.  A frame that cannot be read, holds a malformed field or fails
    :func:`~molmag.io.validation.validate_structure` raises :class:`DataFileError` (a
    :class:`~molmag.io.errors.StructureError` for the latter) naming the file, the frame
    (0-based), the atoms and the field.
    """
    warn = warn or (lambda msg: None)
    defaults = {"charge": charge, "multiplicity": multiplicity, "metal_index": metal_index,
                "split": split}
    for frame, atoms in iter_frames(path, format):
        yield _frame_to_record(atoms, str(Path(path)), frame, defaults, warn)


def _json_safe(obj):
    """extxyz stores JSON in a quoted string; ASE does not round-trip escaped quotes or
    backslashes inside it, so replace them (" -> ', \\ -> /) and newlines."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, str):
        return obj.replace('"', "'").replace("\\", "/").replace("\n", " ")
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def record_to_atoms(record: Record) -> Atoms:
    """ASE Atoms carrying the record's metadata and ``REF_`` labels in ``info``/``arrays``."""
    a = Atoms(numbers=record.atoms.numbers, positions=record.atoms.positions,
              cell=record.atoms.cell, pbc=record.atoms.pbc)
    a.info["charge"] = record.charge
    a.info["multiplicity"] = record.multiplicity
    if record.metal_index is not None:
        a.info["metal_index"] = record.metal_index
    if record.split is not None:
        a.info["split"] = record.split
    for name, value in record.labels.items():
        if name == "forces":
            a.arrays[PREFIX + "forces"] = np.asarray(value, dtype=float)
        elif name == "cf_parameters":
            a.info[PREFIX + name] = _json_safe(value)
        else:
            a.info[PREFIX + name] = value
    if record.provenance:
        a.info["provenance"] = _json_safe({
            k: {f: v for f, v in p.as_dict().items() if v not in (None, "", {})}
            for k, p in record.provenance.items()})
    return a


def write_records(path, records: Iterable[Record], append: bool = False) -> int:
    """Write records to an extxyz file; returns how many frames were written."""
    frames = [record_to_atoms(r) for r in records]
    if not frames:
        Path(path).open("a" if append else "w").close()
        return 0
    ase.io.write(path, frames, format="extxyz", append=append)
    return len(frames)
