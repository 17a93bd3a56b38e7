"""Atomic file writes: a reader (or a crashed run) never sees half a file.  Write to
``<name>.part`` beside the target, then rename over it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez_compressed`` of ``arrays`` to ``path``, atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
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


__all__ = ["write_npz_atomic", "write_text_atomic"]
