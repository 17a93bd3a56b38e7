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

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors():
    """Turn the library's input errors into one clear line and exit status 1."""
    try:
        yield
    except (ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        fail(str(msg))


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
    return url


def read_frames(path, index=":") -> list:
    """Every frame of a structure file (any format ``ase.io.read`` reads) at ``index``, as a
    list; errors name the file (missing, unreadable, empty)."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no structure file at {path}: no such file")
    try:
        frames = ase.io.read(str(path), index=index)
    except Exception as exc:  # ASE raises many types for unreadable files
        raise ValueError(f"cannot read structures from {path}: "
                         f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames or any(len(a) == 0 for a in frames):
        raise ValueError(f"{path}: no structures (or a frame without atoms)")
    return frames
