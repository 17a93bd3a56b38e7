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


class DiversitySettings(_Strict):
    """How the GA keeps its population diverse (``molmag ga``; measured in DEVELOPERS.md,
    'GA screening').  All off (``DiversitySettings.off()``) is the plain GA of molmag <= the
    first issue-19 version, whose runs resume unchanged."""

    random_ligand: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="static genes: share of mutations that put a random library ligand on the "
                    "site instead of one of the `neighbours` most similar ones")
    adaptive: bool = Field(
        default=False,
        description="raise mutation_rate and random_ligand towards 1 in proportion to the loss "
                    "of the population's fingerprint diversity against generation 0")
    niching: Literal["none", "clearing", "crowding"] = Field(
        default="clearing",
        description="survivor selection: none (the best `population`), clearing (the best of "
                    "each niche first, then the rest) or "
                    "deterministic crowding (a child replaces its most similar parent-population "
                    "member if it is at least as good)")
    niche_radius: float = Field(
        default=0.7, ge=0.0, le=1.0,
        description="clearing: Tanimoto distance (Morgan counts, sites summed) below which two "
                    "individuals share a niche (individuals of equal objective value always "
                    "do; 0: the value alone)")
    niche_capacity: int = Field(default=2, ge=1, description="clearing: winners per niche")
    niche_on: Literal["molecule", "donor"] = Field(
        default="donor",
        description="the fingerprint of niching: Morgan (radius 2) of the whole ligands, or of "
                    "their donor environments only (radius 1 around the donor atom: "
                    "individuals with the same donor set share a niche)")
    immigrants: float = Field(
        default=0.2, ge=0.0, le=1.0,
        description="share of each generation's evaluations spent on new random library "
                    "individuals (not pre-screened)")
    restart_after: int = Field(
        default=0, ge=0,
        description="generations without a better best after which the population restarts "
                    "(0: never): the generation evaluates random individuals only and the "
                    "population becomes the `restart_keep` best so far plus those")
    restart_keep: int = Field(default=2, ge=0, description="individuals kept at a restart")

    @classmethod
    def off(cls) -> DiversitySettings:
        """No diversity mechanism: the plain (mu + lambda) GA."""
        return cls(random_ligand=0.1, adaptive=False, niching="none", immigrants=0.0,
                   restart_after=0)


class CompareSettings(_Strict):
    random: bool = True
    vae: bool = True


class VAESettings(_Strict):
    model: str | None = Field(default="gauss-ii-qm9",
                              description="the VAE of the comparison: a model shipped with "
                                          "molmag (gauss-ii-qm9, the pretrained GAUSS-II) or a "
                                          "trained molmag VAE (.npz); null: train one on the "
                                          "library")
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
    diversity: DiversitySettings = Field(default_factory=DiversitySettings)
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
#: ``--quick``: sized so that ``molmag ga --quick`` (GA, random and VAE arms; the VAE arm
#: samples the shipped GAUSS-II model, or trains one on the library with ``vae.model: null``)
#: finishes in under 15 minutes on 2 cores.
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
    if cfg.vae.model is not None and not _shipped_vae(cfg.vae.model, base):
        cfg.vae.model = resolve(cfg.vae.model, base)
        if not Path(cfg.vae.model).is_file():
            raise ValueError(f"{path}: vae.model: no such file {cfg.vae.model}")
    return cfg


def _shipped_vae(name: str, base: Path) -> bool:
    """``name`` is a VAE shipped with molmag (and no file of that name next to the config)."""
    from molmag.generative.pretrained import MODELS

    return name in MODELS and not (base / name).exists()


__all__ = ["GAConfig", "PrescreenSettings", "DiversitySettings", "CompareSettings",
           "VAESettings", "PRESETS", "QUICK", "load_ga_config"]
