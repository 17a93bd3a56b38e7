"""Reading the frames of a structure file with validation: every command and library
function that takes a structure file (``molmag lf``, ``molmag train --predict``, the ASE
calculators of :mod:`molmag.explore`) reads it here, so errors look the same everywhere.

>>> from molmag.io.frames import read_frames
>>> frames = read_frames("traj.extxyz", "::10")          # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path


def frame_numbers(n: int, index, path) -> list[int]:
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
    for i in frame_numbers(len(frames), index, path):
        validate_frame(frames[i], path, i, charge=charge, multiplicity=multiplicity,
                       metal_index=metal_index)
        out.append((i, frames[i]) if numbered else frames[i])
    return out


__all__ = ["frame_numbers", "read_frames"]
