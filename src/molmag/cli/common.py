"""Helpers shared by the CLI commands: consoles, error exits, JSON output."""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

#: Width of the output when it is not a terminal (a pipe, a file) and COLUMNS is not set:
#: wide enough that no table is ever cut or wrapped (rich's default would be 80).
PIPE_WIDTH = 1000


class _Console(Console):
    """A rich console that, writing to a pipe or file, uses COLUMNS or :data:`PIPE_WIDTH`
    instead of 80 columns, so tables are never truncated ("gamma (eV/cm-...")."""

    @property
    def size(self):
        dims = super().size
        if self._width is None and not self.is_terminal:
            return dims._replace(width=PIPE_WIDTH)
        return dims

    @size.setter
    def size(self, new_size):
        Console.size.fset(self, new_size)


console = _Console(soft_wrap=True)
err_console = _Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    # one line, never read as rich markup ("[nan, 0.0, 0.0]" is a value, not a style)
    message = " ".join(str(message).split())
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors():
    """Turn the library's input errors into one clear line and exit status 1."""
    import zipfile

    try:
        yield
    except (ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        fail(str(msg))
    except zipfile.BadZipFile as exc:  # a damaged .npz model file
        fail(f"not a readable .npz file: {exc}")


def _default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "model_dump"):
        return o.model_dump()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9.eE+-]+|null|true|false)(?:,\s*(?:-?[0-9.eE+-]+|null|true|false))*)\s*\]")


def to_json(obj) -> str:
    """Indented JSON with innermost lists of numbers kept on one line."""
    text = json.dumps(obj, indent=2, default=_default)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
                            text)


def print_json(obj) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def existing_db(url: str) -> str:
    """A database URL for reading: a file path must exist (ASE would create an empty one)."""
    if "://" not in url and not Path(url).exists():
        fail(f"no dataset at {url!r}")
    try:
        writable_db(url)
    except ValueError as exc:
        fail(str(exc).replace("--db ", "", 1))
    return url


def writable_db(url: str) -> str:
    """A database URL for writing: a file path must lie in an existing folder and, if the
    file exists, be an SQLite database (or empty); ValueError otherwise (before ASE/sqlite3
    would fail with a traceback)."""
    if "://" in url:
        return url
    path = Path(url)
    if path.is_dir():
        raise ValueError(f"--db {url}: is a folder, not a dataset file")
    if not path.parent.is_dir():
        raise ValueError(f"--db {url}: the folder {path.parent} does not exist")
    if path.suffix.lower() == ".json":
        return url
    if path.exists():
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise ValueError(f"--db {url}: cannot read: {exc.strerror or exc}") from None
        if head and head != b"SQLite format 3\x00":
            raise ValueError(f"--db {url}: exists and is not an SQLite database (molmag will "
                             "not overwrite it)")
    return url


def select_frames(n: int, index, path) -> list[int]:
    """Frame numbers of an ASE index (``":"``, ``"2"``, ``"-1"``, ``"0:10:2"`` or an int) into a
    file of ``n`` frames; ValueError naming the file when the index is malformed or out of
    range."""
    from ase.io.formats import string2index

    try:
        idx = string2index(index) if isinstance(index, str) else index
        if isinstance(idx, slice):
            sel = list(range(n))[idx]
            if not sel:
                raise ValueError(f"{path}: index {index!r} selects none of its {n} frame(s)")
            return sel
        idx = int(idx)
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: index {index!r} is not a frame number or slice "
                         "(e.g. 0, -1, 0:10, ::2)") from None
    if not -n <= idx < n:
        raise ValueError(f"{path}: cannot read frame {idx}: the file has {n} frame(s) "
                         f"(0..{n - 1})")
    return [int(idx) % n]


def read_frames(path, index=":", *, charge=None, multiplicity=None, metal_index=None,
                numbered: bool = False) -> list:
    """The frames of a structure file (extxyz for .xyz/.extxyz, else any format ASE reads) at
    ``index`` (an ASE index), as a list; with ``numbered`` as ``(frame, atoms)`` pairs.

    Every selected frame passes :func:`molmag.io.validation.validate_structure` (with the
    given charge/multiplicity/metal index, else the frame's own); errors are ValueErrors with
    one line naming the file, the frame, the atoms and the field (missing, unreadable, empty,
    malformed, non-finite, clashing, inconsistent charge)."""
    from molmag.io.extxyz import iter_frames, validate_frame

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no structure file at {path}: no such file")
    frames = [a for _, a in iter_frames(path)]
    out = []
    for i in select_frames(len(frames), index, path):
        validate_frame(frames[i], path, i, charge=charge, multiplicity=multiplicity,
                       metal_index=metal_index)
        out.append((i, frames[i]) if numbered else frames[i])
    return out
