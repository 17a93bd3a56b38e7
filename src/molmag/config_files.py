"""Reading YAML configuration files into pydantic models, with errors that name the file
and the key at fault (shared by every ``molmag ... CONFIG.yaml`` command)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, overload

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """The base of every molmag configuration section: unknown keys are refused
    (``extra="forbid"``), so a misspelled setting is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML file; clear errors for a missing file, bad YAML or a
    file that is not a mapping."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such configuration file") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of settings at the top level")
    return dict(raw)


def validate(path: str | Path, model: type[M], raw: dict) -> M:
    """``model.model_validate(raw)`` with every error as ``FILE: key.path: message``."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            where = ".".join(_key_path(raw, e["loc"]))
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            msg = msg.removeprefix("Value error, ")
            lines.append(f"{where}: {msg}" if where else msg)   # whole-file rules name keys
        raise ValueError(f"{path}: " + "; ".join(lines)) from None


def _key_path(raw: Any, loc: tuple) -> list[str]:
    """The keys of an error location as written in the file: pydantic adds the tag of a
    discriminated union (``model.gmnn-tensor.hyper.foo``), which is not a key of the file
    (``model.hyper.foo``)."""
    out, node = [], raw
    for i, key in enumerate(loc):
        if isinstance(node, dict) and key not in node and i < len(loc) - 1:
            continue                      # a union tag, not a key of the file
        out.append(str(key))
        node = node.get(key) if isinstance(node, dict) else (
            node[key] if isinstance(node, list) and isinstance(key, int)
            and -len(node) <= key < len(node) else None)
    return out


@overload
def resolve(p: str, base: Path) -> str: ...
@overload
def resolve(p: None, base: Path) -> None: ...


def resolve(p: str | None, base: Path) -> str | None:
    """A path relative to ``base`` (URLs and absolute paths are left alone)."""
    if p is None or "://" in p or Path(p).is_absolute():
        return p
    return str((base / p).resolve())


__all__ = ["StrictModel", "read_yaml", "validate", "resolve"]
