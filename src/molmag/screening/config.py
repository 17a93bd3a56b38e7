"""Settings of ``molmag ga`` (YAML, ``molmag template ga``); unknown keys are errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from molmag.config_files import StrictModel as _Strict
from molmag.config_files import read_yaml, resolve, validate


class PrescreenSettings(_Strict):
    enabled: bool = True
    oversample: int = Field(default=3, ge=1, description="children bred per child evaluated")
    positive_quantile: float = Field(default=0.5, ge=0.0, lt=1.0,
                                     description="'worth it' = fitness >= this quantile so far")
    explore: float = Field(default=0.25, ge=0.0, le=1.0,
                           description="share of evaluations spent on rejected children "
                                       "(measures recall)")
    min_train: int = Field(default=8, ge=2)


class CompareSettings(_Strict):
    random: bool = True
    vae: bool = True


class VAESettings(_Strict):
    model: str | None = Field(default=None,
                              description="a trained molmag VAE (.npz); null: train one "
                                          "on the library")
    max_epochs: int = Field(default=40, ge=1)
    top_seeds: int = Field(default=4, ge=1)
    sigmas: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3])
    draws_per_sigma: int = Field(default=500, ge=1)


class GAConfig(_Strict):
    metal: Literal["Dy", "Co"] = "Dy"
    objective: Literal["dE01", "D"] = "dE01"
    library: str = "default"
    max_heavy_atoms: int = Field(default=8, ge=1)
    genes: Literal["static", "dynamic"] = "static"
    population: int = Field(default=12, ge=2)
    offspring: int = Field(default=12, ge=1)
    budget: int = Field(default=120, ge=2, description="evaluations per search arm")
    mutation_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    tournament: int = Field(default=3, ge=1)
    neighbours: int = Field(default=8, ge=1)
    prescreen: PrescreenSettings = Field(default_factory=PrescreenSettings)
    compare: CompareSettings = Field(default_factory=CompareSettings)
    vae: VAESettings = Field(default_factory=VAESettings)
    relax: bool = True
    fmax: float = Field(default=0.05, gt=0)
    workers: int | None = Field(default=None, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        from .objectives import objective_for

        objective_for(self.metal, self.objective)   # ValueError: not computable for the metal
        if self.budget < self.population:
            raise ValueError(f"budget ({self.budget}) is smaller than the population "
                             f"({self.population})")
        return self

    @classmethod
    def preset(cls, name: str, *, quick: bool = False, **over) -> GAConfig:
        """The settings of template ``name`` ('dy-axial' or 'co-chelate'), quick sizes with
        ``quick``."""
        base: dict[str, Any] = dict(PRESETS[name])
        if quick:
            base.update(QUICK)
        base.update(over)
        return cls.model_validate(base)


PRESETS = {"dy-axial": {"metal": "Dy", "objective": "dE01"},
           "co-chelate": {"metal": "Co", "objective": "D"}}
#: ``--quick``: sized so that ``molmag ga --quick`` (GA, random and VAE arms, with the VAE
#: trained from scratch) finishes in under 15 minutes on 2 cores.
QUICK = {"max_heavy_atoms": 7, "population": 8, "offspring": 8, "budget": 24,
         "vae": {"max_epochs": 30, "top_seeds": 4}}


def load_ga_config(path: str | Path, **overrides) -> GAConfig:
    """Read and validate a ``molmag ga`` configuration (errors name the file and key)."""
    path = Path(path)
    raw = read_yaml(path)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = validate(path, GAConfig, raw)
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    base = path.resolve().parent
    if cfg.library != "default":
        cfg.library = resolve(cfg.library, base)
        if not Path(cfg.library).is_file():
            raise ValueError(f"{path}: library: no such file {cfg.library}")
    if cfg.vae.model is not None:
        cfg.vae.model = resolve(cfg.vae.model, base)
        if not Path(cfg.vae.model).is_file():
            raise ValueError(f"{path}: vae.model: no such file {cfg.vae.model}")
    return cfg


__all__ = ["GAConfig", "PrescreenSettings", "CompareSettings", "VAESettings", "PRESETS",
           "QUICK", "load_ga_config"]
