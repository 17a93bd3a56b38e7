"""Line-oriented reading of program outputs, with errors that name the file and line.

Quantum-chemistry outputs are read block by block: find a header, then read a fixed layout
below it.  :class:`TextScan` keeps the lines and turns every failure (a missing line, a
number that does not parse, a row with the wrong number of columns) into a
:class:`molmag.io.errors.DataFileError` that names the file, the 1-based line and what was
expected there, so a truncated or garbled file never surfaces as an ``IndexError``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from molmag.io.errors import DataFileError

#: A Fortran/C floating-point number, including ``1.0D-03`` and a bare ``-0.``.
FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?"
_FLOAT_RE = re.compile(FLOAT)


def to_float(text: str) -> float:
    """Parse one finite number, accepting Fortran ``D`` exponents; ValueError if it is not one
    (NaN and overflowing values such as ``1e999`` included: no program prints them as data)."""
    value = float(text.strip().replace("D", "E").replace("d", "e"))
    if not math.isfinite(value):
        raise ValueError(f"{text.strip()!r} is not a finite number")
    return value


def found(m: re.Match[str] | None) -> re.Match[str]:
    """``m``, the match of a pattern on a line that was found with that same pattern."""
    assert m is not None, "the line was found with this pattern"
    return m


class TextScan:
    """The lines of a text file with error reporting by line number."""

    def __init__(self, lines: list[str], file: str | Path):
        self.lines = lines
        self.file = str(file)

    @classmethod
    def read(cls, path: str | Path) -> "TextScan":
        path = Path(path)
        try:
            text = path.read_text(errors="replace")
        except (OSError, ValueError) as exc:        # ValueError: a NUL byte in the path
            reason = getattr(exc, 'strerror', None) or exc
            raise DataFileError(path, f"cannot read the file ({reason})") from None
        return cls(text.splitlines(), path)

    def __len__(self) -> int:
        return len(self.lines)

    def error(self, message: str, line: int | None = None,
              field: str | None = None) -> DataFileError:
        """A DataFileError at 0-based ``line`` (reported 1-based)."""
        where = f"line {line + 1}: " if line is not None else ""
        return DataFileError(self.file, where + message, field=field)

    # ---------------------------------------------------------------------------- search
    def find(self, pattern: str | re.Pattern, start: int = 0,
             stop: int | None = None) -> int | None:
        """Index of the first line at or after ``start`` (before ``stop``) matching the regex."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        stop = len(self.lines) if stop is None else min(stop, len(self.lines))
        for i in range(start, stop):
            if rx.search(self.lines[i]):
                return i
        return None

    def find_all(self, pattern: str | re.Pattern, start: int = 0,
                 stop: int | None = None) -> list[int]:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        stop = len(self.lines) if stop is None else min(stop, len(self.lines))
        return [i for i in range(start, stop) if rx.search(self.lines[i])]

    def require(self, pattern: str, start: int, what: str, stop: int | None = None,
                field: str | None = None) -> int:
        """Like :meth:`find`, but a missing line is an error naming ``what`` was expected."""
        i = self.find(pattern, start, stop)
        if i is None:
            raise self.error(f"{what} not found after line {start + 1} "
                             f"(the file is truncated or not the expected output)", field=field)
        return i

    def line(self, i: int, what: str, field: str | None = None) -> str:
        if i >= len(self.lines):
            raise self.error(f"the file ends before {what}", field=field)
        return self.lines[i]

    # ---------------------------------------------------------------------------- numbers
    def floats(self, i: int, what: str, n: int | None = None,
               field: str | None = None) -> list[float]:
        """All numbers on line ``i`` (exactly ``n`` of them if given)."""
        text = self.line(i, what, field)
        vals = [self.number(m, i, what, field) for m in _FLOAT_RE.findall(text)]
        if n is not None and len(vals) != n:
            raise self.error(f"{what}: expected {n} numbers, found {len(vals)} in {text.strip()!r}",
                             i, field)
        return vals

    def matrix(self, i: int, rows: int, cols: int, what: str,
               field: str | None = None) -> np.ndarray:
        """``rows`` lines of ``cols`` numbers starting at line ``i``."""
        return np.array([self.floats(i + r, f"{what} (row {r + 1})", cols, field)
                         for r in range(rows)])

    def number(self, text: str, i: int, what: str, field: str | None = None) -> float:
        """:func:`to_float` with a DataFileError naming line ``i``."""
        try:
            return to_float(text)
        except ValueError as exc:
            raise self.error(f"{what}: {exc}", i, field) from None

    def match(self, i: int, pattern: str, what: str, field: str | None = None) -> re.Match:
        text = self.line(i, what, field)
        m = re.search(pattern, text)
        if m is None:
            raise self.error(f"{what}: cannot read {text.strip()!r}", i, field)
        return m

    def value_after(self, i: int, pattern: str, what: str, field: str | None = None) -> float:
        """The number that follows ``pattern`` on line ``i``."""
        m = self.match(i, pattern + r"\s*(" + FLOAT + ")", what, field)
        return self.number(m.group(1), i, what, field)


__all__ = ["FLOAT", "TextScan", "found", "to_float"]
