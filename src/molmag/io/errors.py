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


class StructureError(DataFileError):
    """A structure failed :func:`molmag.io.validation.validate_structure`: non-finite or absurd
    coordinates, atoms on top of each other, or a charge/multiplicity that contradicts itself
    or the metal.  The one-line message names the file (or "structure"), the frame, the atoms
    (0-based indices with their elements) and the field."""

    def __init__(self, file, message: str, frame: int | None = None, field: str | None = None,
                 atoms: tuple[int, ...] = ()):
        self.atoms = tuple(int(i) for i in atoms)
        super().__init__(file if file is not None else "structure", message, frame, field)
