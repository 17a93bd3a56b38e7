"""Atomic file writes: a reader (or a crashed run) never sees half a file.  Write to
``<name>.part`` beside the target, then rename over it.  And the reader of molmag's ``.npz``
model files (arrays plus a JSON ``header`` with ``format`` and ``version``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def write_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez_compressed`` of ``arrays`` to ``path``, atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # numpy stub: **kw vs allow_pickle
    os.replace(tmp, path)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``path.write_text(text)``, atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def read_npz_model(path: str | Path, fmt: str, version: int, what: str = "model",
                   arrays: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of an ``.npz`` model file whose JSON ``header`` has ``format == fmt``
    and ``version <= version``; ``arrays=False`` reads the header only.  Errors name the file:
    FileNotFoundError, or ValueError for another kind of file or a newer version."""
    import zipfile

    import molmag

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            out = {k: data[k] for k in data.files if k != "header"} if arrays else {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: not a molmag {what} file ({exc})") from None
    if header.get("format") != fmt:
        raise ValueError(f"{path}: not a molmag {what} file (format {header.get('format')!r})")
    if header.get("version", 1) > version:
        raise ValueError(f"{path}: {what} file version {header['version']} is newer than this "
                         f"molmag ({molmag.__version__}) reads; update molmag")
    return header, out


__all__ = ["write_npz_atomic", "write_text_atomic", "read_npz_model"]
