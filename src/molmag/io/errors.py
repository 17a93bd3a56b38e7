"""Errors raised for bad input data: each names the file, frame and field at fault."""

from __future__ import annotations


class LabelError(ValueError):
    """A label or metadata field has the wrong shape, type or value."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"field {field!r}: {message}")


class DataFileError(ValueError):
    """A data file could not be read; names the file, the frame (0-based) and the field."""

    def __init__(self, file, message: str, frame: int | None = None, field: str | None = None):
        self.file = str(file)
        self.frame = frame
        self.field = field
        self.message = message
        where = self.file
        if frame is not None:
            where += f", frame {frame}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
