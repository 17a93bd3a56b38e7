"""Helpers shared by the CLI commands: consoles, error exits, JSON output."""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NoReturn

import typer
from rich.console import Console

from molmag.io.frames import frame_numbers as select_frames  # noqa: F401  (re-exported)
from molmag.io.frames import read_frames  # noqa: F401  (re-exported)
from molmag.io.jsonable import json_default

if TYPE_CHECKING:
    from molmag.progress import ProgressFn

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


def fail(message: str, code: int = 1) -> NoReturn:
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


@contextmanager
def progress_bars() -> Iterator[ProgressFn]:
    """A :data:`molmag.progress.ProgressFn` drawn as transient rich bars on stderr, one per
    task label (``with progress_bars() as progress: optimize(..., progress=progress)``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                    transient=True)
    tasks: dict[str, Any] = {}

    def progress(done: int, total: int, label: str) -> None:
        if label not in tasks:
            tasks[label] = bars.add_task(label, total=total)
        bars.update(tasks[label], completed=done, total=total)

    with bars:
        yield progress


_SCALAR = r"(?:-?[0-9.eE+-]+|null|true|false)"
_NUMBER_LIST = re.compile(rf"\[\s*({_SCALAR}(?:,\s*{_SCALAR})*)\s*\]")


def to_json(obj) -> str:
    """Indented JSON with innermost lists of numbers kept on one line."""
    text = json.dumps(obj, indent=2, default=json_default)
    return _NUMBER_LIST.sub(
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


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


