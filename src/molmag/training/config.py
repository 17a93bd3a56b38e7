"""The ``molmag train`` configuration: which model, which data, how to split, where to write.

.. code-block:: yaml

    model:
      kind: covariant-ridge      # covariant-ridge | equivariant-ridge | gmnn-tensor |
                                 # gmnn-energy | snap-energy | kd-gap-ridge | cf-ridge
      committee: 3               # members (query-by-committee uncertainty, eq. 12)
      resample: null             # bootstrap (ridge default) | none (networks) | subsample
      subsample: null            # fraction of the training set per member (resample: subsample)
      calibration: conformal     # conformal | scale | scale-floor | none (on the validation split)
      hyper: {env_cutoff: 3.5}   # hyperparameters of the kind
    descriptor: {}               # overrides of the default descriptor settings
    data:
      dataset: copdms.db
      selection: null            # ASE selection of rows, e.g. "group=md1200"
      split: {by: fraction, val: 0.1, test: 0.2, n_train: null}
      seed: 0
    output: copdms-covariant     # folder: model.npz, metrics.json, parity.png, train.log

Relative paths are taken relative to the configuration file; unknown keys are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from molmag.config_files import StrictModel as _Strict
from molmag.config_files import read_yaml, resolve, validate
from molmag.models import hyperparameters as H
from molmag.models.committee import KINDS


class _ModelBase(_Strict):
    """What every model kind's section shares; ``hyper`` is the kind's own settings model
    (:mod:`molmag.models.hyperparameters`), so its keys are checked when the file is read."""

    kind: str = Field(description="model kind (molmag.models.committee.KINDS)")
    committee: int = Field(3, ge=1, description="committee members")
    resample: Literal["bootstrap", "none", "subsample"] | None = Field(
        None, description="how members differ: bootstrap resamples of the training rows "
        "(default of the ridge kinds), none (all rows; seeds differ; default of the networks) "
        "or a random subsample fraction")
    subsample: float | None = Field(None, gt=0, le=1,
                                    description="training fraction per member")
    calibration: Literal["scale", "scale-floor", "conformal", "none"] = Field(
        "conformal", description="post-hoc calibration of the committee spread on the "
        "validation split (molmag.models.calibration)")

    def hyper_kwargs(self) -> dict[str, Any]:
        """The hyperparameters the configuration sets (the model's own defaults fill the
        rest), as keyword arguments of :class:`molmag.models.committee.Committee`."""
        return self.hyper.model_dump(exclude_unset=True)  # type: ignore[attr-defined]

    @field_serializer("hyper", check_fields=False)
    def _set_only(self, hyper: BaseModel) -> dict[str, Any]:
        # the keys given, as before typed settings: stored configurations and the hashes of
        # checkpoints stay the same
        return hyper.model_dump(exclude_unset=True)


class CovariantRidgeSection(_ModelBase):
    kind: Literal["covariant-ridge"] = "covariant-ridge"
    hyper: H.CovariantRidgeHyper = Field(default_factory=H.CovariantRidgeHyper)


class EquivariantRidgeSection(_ModelBase):
    kind: Literal["equivariant-ridge"]
    hyper: H.EquivariantRidgeHyper = Field(default_factory=H.EquivariantRidgeHyper)


class GMNNTensorSection(_ModelBase):
    kind: Literal["gmnn-tensor"]
    hyper: H.GMNNTensorHyper = Field(default_factory=H.GMNNTensorHyper)


class GMNNEnergySection(_ModelBase):
    kind: Literal["gmnn-energy"]
    hyper: H.GMNNEnergyHyper = Field(default_factory=H.GMNNEnergyHyper)


class SNAPEnergySection(_ModelBase):
    kind: Literal["snap-energy"]
    hyper: H.SNAPEnergyHyper = Field(default_factory=H.SNAPEnergyHyper)


class KDGapRidgeSection(_ModelBase):
    kind: Literal["kd-gap-ridge"]
    hyper: H.KDGapRidgeHyper = Field(default_factory=H.KDGapRidgeHyper)


class CFRidgeSection(_ModelBase):
    kind: Literal["cf-ridge"]
    hyper: H.CFRidgeHyper = Field(default_factory=H.CFRidgeHyper)


def _kind_first(raw: Any) -> Any:
    """Default kind covariant-ridge; an unknown kind is named with the known ones; an empty
    ``hyper:`` (comments only) is no hyperparameters."""
    if isinstance(raw, dict):
        raw = dict(raw)
        raw.setdefault("kind", "covariant-ridge")
        if raw["kind"] not in KINDS:
            raise ValueError(f"unknown model kind {raw['kind']!r}; choose one of "
                             f"{', '.join(KINDS)}")
        if "hyper" in raw and raw["hyper"] is None:
            raw["hyper"] = {}
    return raw


#: the ``model:`` section: one settings model per kind, chosen by ``kind`` (discriminated
#: union), so ``model.hyper`` is checked against that kind's hyperparameters
ModelSection = Annotated[
    Union[CovariantRidgeSection, EquivariantRidgeSection, GMNNTensorSection,
          GMNNEnergySection, SNAPEnergySection, KDGapRidgeSection, CFRidgeSection],
    Field(discriminator="kind"), BeforeValidator(_kind_first)]
_SECTION = TypeAdapter(ModelSection)


def model_section(kind: str = "covariant-ridge", **fields: Any) -> _ModelBase:
    """The validated ``model:`` section of ``kind`` (e.g. ``model_section("snap-energy",
    committee=4, hyper={"force_weight": 0.2})``)."""
    return _SECTION.validate_python({"kind": kind, **fields})


class SplitSection(_Strict):
    """``fraction``: a seeded shuffle; ``val`` and ``test`` fractions, the rest trains.
    ``tag``: rows whose ``key`` (the row's ``split`` field or a tag) is ``train``, ``val`` or
    ``test`` (other values are left out).  ``n_train`` caps the training set (the first rows
    of the shuffled training set, so a smaller set is a subset of a larger one)."""

    by: Literal["fraction", "tag"] = "fraction"
    val: float = Field(0.1, ge=0, lt=1)
    test: float = Field(0.2, ge=0, lt=1)
    key: str = "split"
    n_train: int | None = Field(None, ge=2)

    @model_validator(mode="after")
    def _fractions(self):
        if self.by == "fraction" and self.val + self.test >= 1:
            raise ValueError("val + test must leave something to train on (< 1)")
        return self


class DataSection(_Strict):
    dataset: str
    selection: str | None = None
    split: SplitSection = Field(default_factory=SplitSection)
    seed: int = 0


def descriptor_keys(kind: str) -> tuple[str, ...]:
    """The settings of the descriptor that model ``kind`` reads (``descriptor:`` of a train
    configuration): Gaussian moments for the GM-NN kinds, the SNAP bispectrum otherwise."""
    if kind.startswith("gmnn"):
        from molmag.descriptors.gaussian_moments import SETTINGS_KEYS

        return SETTINGS_KEYS
    import dataclasses

    from molmag.descriptors.bispectrum import SNAPSettings

    return tuple(f.name for f in dataclasses.fields(SNAPSettings))


class TrainConfig(_Strict):
    model: ModelSection = Field(default_factory=CovariantRidgeSection)
    descriptor: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the default descriptor settings: "
        "SNAP bispectrum (twojmax, rcutfac, weights, quadraticflag, ...) or, for the gmnn "
        "kinds, Gaussian moments (n_radial, n_basis, r_cut, ...)")
    data: DataSection
    output: str = "model"

    @field_validator("descriptor")
    @classmethod
    def _descriptor_keys(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        model = info.data.get("model")
        if model is None:           # the model section failed: its error is reported
            return v
        known = descriptor_keys(model.kind)
        unknown = [k for k in v if k not in known]
        if unknown:
            what = "Gaussian-moment" if model.kind.startswith("gmnn") else "SNAP"
            raise ValueError(f"unknown {what} setting(s) {', '.join(unknown)} (known: "
                             f"{', '.join(known)})")
        return v


def load_train_config(path: str | Path, **overrides) -> TrainConfig:
    """Read and validate a training configuration; errors name the file and the key.

    ``overrides`` (from the command line): ``output``, ``dataset``, ``kind``, ``committee``,
    ``n_train``, ``seed``."""
    path = Path(path)
    raw = read_yaml(path)
    if overrides.get("output") is not None:
        raw["output"] = overrides["output"]
    model = dict(raw.get("model") or {})
    for key in ("kind", "committee"):
        if overrides.get(key) is not None:
            model[key] = overrides[key]
    if model:
        raw["model"] = model
    if raw.get("descriptor", {}) is None:
        raw["descriptor"] = {}
    data = dict(raw.get("data") or {})
    if overrides.get("dataset") is not None:
        data["dataset"] = overrides["dataset"]
    if overrides.get("seed") is not None:
        data["seed"] = overrides["seed"]
    if overrides.get("n_train") is not None:
        data["split"] = dict(data.get("split") or {}, n_train=overrides["n_train"])
    raw["data"] = data
    cfg = validate(path, TrainConfig, raw)
    base = path.resolve().parent
    cfg.data.dataset = resolve(cfg.data.dataset, base)
    cfg.output = resolve(cfg.output, base)
    return cfg


__all__ = ["TrainConfig", "ModelSection", "model_section", "DataSection", "SplitSection",
           "load_train_config"]
