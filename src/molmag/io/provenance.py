"""Provenance of a label: which method, with which parameters, by which program, when."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import Field, field_validator

from molmag.config_files import StrictModel


def now_iso() -> str:
    """Current UTC time, ISO 8601, seconds resolution."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Provenance(StrictModel):
    """Where a label came from.

    ``method`` names the level of theory (e.g. ``"CASSCF(7,5)/NEVPT2"``, ``"GFN2-xTB"``,
    ``"ligand-field AOM"``); ``parameters`` holds what is needed to repeat it; ``program`` and
    ``version`` the code that computed it; ``date`` when (ISO 8601); ``source`` the file and
    frame it was read from and ``imported`` when, if the label was imported.  ``"unknown"``
    marks labels imported without any record of their origin.
    """

    method: str = "unknown"
    parameters: dict[str, Any] = Field(default_factory=dict)
    program: str = "unknown"
    version: str = ""
    date: str | None = None
    source: str | None = None
    imported: str | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _date_to_str(cls, v):
        if isinstance(v, datetime):
            return v.isoformat()
        return v

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()
