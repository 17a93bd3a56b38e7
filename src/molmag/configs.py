"""Every molmag configuration file in one table: check a file without running it
(``molmag validate``) and write the JSON schemas of all of them (``molmag schema``).

==========  ===========================  ====================================================
kind        command                      settings model
==========  ===========================  ====================================================
train       ``molmag train``             :class:`molmag.training.config.TrainConfig`
label       ``molmag label``             :class:`molmag.labelling.config.LabelConfig`
optimize    ``molmag optimize``          :class:`molmag.explore.runs.OptimizeConfig`
scan        ``molmag scan``              :class:`molmag.explore.runs.ScanConfig`
md          ``molmag md``                :class:`molmag.dynamics.md_runs.MDConfig`
learn       ``molmag learn``             :class:`molmag.dynamics.learn_runs.LearnConfig`
vae         ``molmag vae train``         :class:`molmag.generative.runs.VAETrainConfig`
ga          ``molmag ga``                :class:`molmag.screening.config.GAConfig`
==========  ===========================  ====================================================

Validation goes through each command's own loader, so it checks exactly what the command
would (relative paths, command-line defaults, cross-field rules), and errors are the one-line
``FILE: key.path: message`` of :func:`molmag.config_files.validate`.

>>> from molmag.configs import validate_config
>>> kind, cfg = validate_config("train.yaml")               # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from molmag.config_files import read_yaml


@dataclass(frozen=True)
class ConfigKind:
    """One kind of configuration file: the command that reads it, its settings model and
    its loader (both ``"module:name"``, imported on first use)."""

    name: str
    command: str
    model: str
    loader: str

    def model_class(self) -> type[BaseModel]:
        return _attr(self.model)

    def load(self, path: str | Path) -> BaseModel:
        fn: Callable[[str | Path], BaseModel] = _attr(self.loader)
        return fn(path)


def _attr(spec: str) -> Any:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


CONFIG_KINDS: dict[str, ConfigKind] = {c.name: c for c in (
    ConfigKind("train", "molmag train", "molmag.training.config:TrainConfig",
               "molmag.training.config:load_train_config"),
    ConfigKind("label", "molmag label", "molmag.labelling.config:LabelConfig",
               "molmag.labelling.config:load_label_config"),
    ConfigKind("optimize", "molmag optimize", "molmag.explore.runs:OptimizeConfig",
               "molmag.explore.runs:load_optimize_config"),
    ConfigKind("scan", "molmag scan", "molmag.explore.runs:ScanConfig",
               "molmag.explore.runs:load_scan_config"),
    ConfigKind("md", "molmag md", "molmag.dynamics.md_runs:MDConfig",
               "molmag.dynamics.md_runs:load_md_config"),
    ConfigKind("learn", "molmag learn", "molmag.dynamics.learn_runs:LearnConfig",
               "molmag.dynamics.learn_runs:load_learn_config"),
    ConfigKind("vae", "molmag vae train", "molmag.generative.runs:VAETrainConfig",
               "molmag.generative.runs:load_vae_train_config"),
    ConfigKind("ga", "molmag ga", "molmag.screening.config:GAConfig",
               "molmag.screening.config:load_ga_config"),
)}


def config_kind(name: str) -> ConfigKind:
    """The kind called ``name``; ValueError listing the kinds otherwise."""
    try:
        return CONFIG_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown configuration kind {name!r}; choose one of "
                         f"{', '.join(CONFIG_KINDS)}") from None


def _overlap(keys: set[str], kind: ConfigKind) -> int:
    return len(keys & set(kind.model_class().model_fields))


def detect_kind(path: str | Path) -> ConfigKind:
    """The kind of a configuration file, from its top-level keys: the kind whose settings
    share the most keys with the file (every key of the file must be one of its settings);
    ValueError naming the file when no kind or several fit equally (then give the kind)."""
    keys = set(read_yaml(path))
    scores = {name: _overlap(keys, k) for name, k in CONFIG_KINDS.items()}
    fits = [n for n, s in scores.items()
            if s == len(keys) and s == max(scores.values()) and s > 0]
    if len(fits) == 1:
        return CONFIG_KINDS[fits[0]]
    if fits:
        raise ValueError(f"{path}: could be a {' or a '.join(fits)} configuration; give the "
                         "kind (molmag validate FILE --kind KIND)")
    best = max(scores, key=lambda n: scores[n])
    if scores[best] == 0:
        raise ValueError(f"{path}: none of its top-level keys ({', '.join(sorted(keys))}) "
                         f"belongs to a molmag configuration ({', '.join(CONFIG_KINDS)})")
    return CONFIG_KINDS[best]            # its loader names the keys that do not belong


def validate_config(path: str | Path, kind: str | None = None) -> tuple[str, BaseModel]:
    """Read and check a configuration file as its command would, without running anything:
    ``(kind, settings)``; the command's own one-line ``FILE: key.path: message`` error
    otherwise.  ``kind`` (a key of :data:`CONFIG_KINDS`) skips the detection."""
    k = config_kind(kind) if kind is not None else detect_kind(path)
    return k.name, k.load(path)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON schema (draft 2020-12, pydantic's) of every configuration kind, with a
    title naming the command; editors (VS Code's YAML extension, PyCharm) use them for
    completion and checking."""
    out = {}
    for name, k in CONFIG_KINDS.items():
        schema = k.model_class().model_json_schema()
        schema["title"] = f"{k.command} configuration"
        schema["$id"] = f"molmag-{name}.schema.json"
        out[name] = schema
    return out


def write_schemas(folder: str | Path) -> list[Path]:
    """Write ``molmag-<kind>.schema.json`` for every kind into ``folder``; the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in json_schemas().items():
        p = folder / f"molmag-{name}.schema.json"
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(schema, indent=1) + "\n")
        tmp.replace(p)
        paths.append(p)
    return paths


__all__ = ["CONFIG_KINDS", "ConfigKind", "config_kind", "detect_kind", "validate_config",
           "json_schemas", "write_schemas"]
