"""Typed hyperparameters of every model kind: one pydantic settings model per kind.

``molmag train`` reads ``model.hyper`` of a configuration into the settings model of the
configuration's ``model.kind`` (:data:`HYPERPARAMETERS`), so a misspelled or ill-typed key is
refused when the file is read, with the usual one-line ``FILE: model.hyper.key: message``
(e.g. ``train.yaml: model.hyper.foo: unknown key``), before any data is loaded.  The same
settings models check the hyperparameters of the library API (``Committee(kind, ...,
**hyper)``: :func:`check_hyperparameters`), and ``molmag schema`` writes them into the JSON
schema of the training configuration.

Only the keys a user sets are passed on to the model (``exclude_unset``), so the defaults
below document the members' own defaults (a test keeps both the same) and a model file means
what it meant when it was written.  Units: Angstrom for cut-offs, eV/Angstrom-based weights
as documented per field.

==================  =============================================================
kind                settings model
==================  =============================================================
covariant-ridge     :class:`CovariantRidgeHyper`  (Lunghi & Sanvito 2020, eqs. 4-6)
equivariant-ridge   :class:`EquivariantRidgeHyper` (Nguyen & Lunghi 2022)
gmnn-tensor         :class:`GMNNTensorHyper`      (Zaverkin et al. 2022, eqs. 7-11)
gmnn-energy         :class:`GMNNEnergyHyper`      (Zaverkin et al. 2022, eq. 13)
snap-energy         :class:`SNAPEnergyHyper`      (linear/quadratic SNAP ridge)
kd-gap-ridge        :class:`KDGapRidgeHyper`      (invariant ridge of Kramers gaps)
cf-ridge            :class:`CFRidgeHyper`         (equivariant ridge of B(k,q))
==================  =============================================================
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from molmag.config_files import StrictModel
from molmag.models.ridge import DEFAULT_LAMBDAS  # 1e-10 .. 1e3, 27 log-spaced values


class _Lambdas(StrictModel):
    lambdas: tuple[float, ...] = Field(
        DEFAULT_LAMBDAS, description="ridge penalties searched (the lowest validation RMSE "
        "wins; covariant-ridge: the lowest leave-one-out RMSE, see lambda_selection)")

    @field_validator("lambdas")
    @classmethod
    def _positive(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or min(v) <= 0:
            raise ValueError("a non-empty list of positive ridge penalties")
        return v


class _EnvCutoff(StrictModel):
    env_cutoff: float = Field(3.5, gt=0, description="Angstrom: the metal's environment "
                              "(atoms this close to the metal enter the features)")


class CovariantRidgeHyper(_EnvCutoff, _Lambdas):
    """Covariant ridge of the D tensor (:class:`molmag.models.covariant_ridge.CovariantRidge`)."""

    features: Literal["donors", "bispectrum"] = Field(
        "donors", description="donors: donor geometry in the Eckart frame of the metal and its "
        "donors | bispectrum: the paper's eq. 4")
    degree: int = Field(2, ge=1, le=4, description="donors: monomials of the donor geometry "
                        "up to this degree")
    n_references: int = Field(1, ge=1, description="reference environments l0")
    lambda_selection: Literal["validation", "loo"] = Field(
        "loo", description="how the ridge penalty is chosen: leave-one-out RMSE of the "
        "training rows (closed form; steadier on small data sets) | validation: the "
        "validation split's RMSE (the paper)")


class EquivariantRidgeHyper(_EnvCutoff, _Lambdas):
    """Equivariant ridge of the D tensor
    (:class:`molmag.models.equivariant_ridge.EquivariantRidge`)."""

    features: Literal["donors", "bispectrum"] = Field(
        "donors", description="donors: local-frame tensors of the donors with invariant "
        "polynomial weights | bispectrum: Nguyen & Lunghi")
    degree: int = Field(2, ge=1, le=3, description="donors: degree of the invariant weights")


class _GMNNCommon(StrictModel):
    """What both Gaussian-moment networks share (paper values in the descriptions)."""

    hidden: tuple[int, ...] = Field((512, 512), min_length=1,
                                    description="hidden layer widths (paper: 512, 512)")
    batch_size: int = Field(32, ge=1, description="structures per mini-batch (paper: 32)")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam beta1, beta2")
    eps: float = Field(1e-7, gt=0, description="Adam epsilon (paper: 1e-7)")
    patience: int | None = Field(None, ge=1, description="stop after this many epochs "
                                 "without a better validation loss (paper: none)")
    checkpoint: str | None = Field(None, description="per-epoch checkpoint file of a member "
                                   "(molmag train sets one per member itself)")
    predict_batch: int = Field(256, ge=1, description="structures per prediction batch")
    max_epochs: int = Field(80, ge=1, description="training epochs (the best validation "
                            "epoch is kept)")
    lr_nn: float = Field(0.02, gt=0, description="learning rate of the network weights")
    lr_descriptor: float = Field(0.02, ge=0, description="learning rate of the radial "
                                 "coefficients of the Gaussian moments")
    lr_shift: float = Field(0.025, ge=0, description="learning rate of the per-species shift")
    lr_scale: float = Field(0.025, ge=0, description="learning rate of the per-species scale")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay of the network "
                                "weights (AdamW, Loshchilov & Hutter 2019; 0: Adam, the paper)")

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _path(cls, v: Any) -> Any:
        return None if v is None else str(v)

    @field_validator("hidden")
    @classmethod
    def _widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if min(v) < 1:
            raise ValueError("every hidden layer needs at least one unit")
        return v


class GMNNTensorHyper(_GMNNCommon):
    """Gaussian-moment network of the D tensor (:class:`molmag.models.gmnn.GMNNTensor`)."""

    origin: Literal["centroid", "metal"] = Field(
        "centroid", description="the origin of eq. 7: centroid (paper) | metal")
    scale_shift_init: Literal["lstsq", "paper"] = Field(
        "lstsq", description="initial per-species scale and shift")
    env_cutoff: float | None = Field(
        None, gt=0, description="Angstrom: only atoms this close to the metal add to eq. 7 "
        "(needs origin: metal); null: every atom (paper)")
    e_weight: float = Field(
        0.0, ge=0, description="weight of the rhombic error term added to the loss of eq. 10: "
        "the first-order error of E in the reference's principal frame (0: the paper's loss)")

    @model_validator(mode="after")
    def _metal_centred(self) -> GMNNTensorHyper:
        if self.env_cutoff is not None and self.origin != "metal":
            raise ValueError("env_cutoff (a metal-centred environment) needs origin: metal")
        return self


class GMNNEnergyHyper(_GMNNCommon):
    """Gaussian-moment network of energy and forces (:class:`molmag.models.gmnn.GMNNEnergy`,
    loss of eq. 13)."""

    max_epochs: int = Field(35, ge=1, description="training epochs")
    lr_nn: float = Field(0.03, gt=0, description="learning rate of the network weights")
    lr_shift: float = Field(0.05, ge=0, description="learning rate of the per-species shift")
    lr_scale: float = Field(0.001, ge=0, description="learning rate of the per-species scale")
    energy_weight: float = Field(1.0, ge=0, description="weight of the energy term of eq. 13")
    force_weight: float = Field(12.0, ge=0, description="weight of the force term of eq. 13 "
                                "(Angstrom^2)")
    stop_on: Literal["sum", "energy", "forces"] = Field(
        "sum", description="the validation loss that picks the best epoch")


class SNAPEnergyHyper(_Lambdas):
    """SNAP ridge of energy and forces (:class:`molmag.models.snap_energy.SNAPEnergyRidge`)."""

    force_weight: float = Field(0.1, ge=0, description="Angstrom: weight of the force rows "
                                "against per-atom energies")
    pair_cutoff: float = Field(0.0, ge=0, description="Angstrom: cutoff of the learned "
                               "element-pair term (0: none; molmag template train ships 5)")
    pair_basis: int = Field(12, ge=2, description="radial Gaussians per pair of species of the "
                            "pair term")

    @field_validator("pair_cutoff")
    @classmethod
    def _pair_cutoff(cls, v: float) -> float:
        from molmag.descriptors.pair_basis import R0

        if 0 < v <= R0:
            raise ValueError(f"pair_cutoff must be 0 (no pair term) or above {R0} Angstrom "
                             f"(the first Gaussian's centre), got {v}")
        return v


class KDGapRidgeHyper(_EnvCutoff, _Lambdas):
    """Invariant ridge of Kramers-doublet energies
    (:class:`molmag.models.invariant_ridge.KDGapRidge`)."""

    include_metal: bool = Field(True, description="the metal's own bispectrum is a feature "
                                "block")


class CFRidgeHyper(_EnvCutoff, _Lambdas):
    """Equivariant ridge of crystal-field parameters (:class:`molmag.models.cf_ridge.CFRidge`)."""


#: model kind -> its hyperparameter settings model
HYPERPARAMETERS: dict[str, type[StrictModel]] = {
    "covariant-ridge": CovariantRidgeHyper,
    "equivariant-ridge": EquivariantRidgeHyper,
    "gmnn-tensor": GMNNTensorHyper,
    "gmnn-energy": GMNNEnergyHyper,
    "snap-energy": SNAPEnergyHyper,
    "kd-gap-ridge": KDGapRidgeHyper,
    "cf-ridge": CFRidgeHyper,
}


def hyper_model(kind: str) -> type[StrictModel]:
    """The settings model of ``kind``; ValueError listing the kinds for an unknown one."""
    try:
        return HYPERPARAMETERS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; choose one of "
                         f"{', '.join(HYPERPARAMETERS)}") from None


def check_hyperparameters(kind: str, hyper: dict[str, Any], *,
                          complete: bool = False) -> dict[str, Any]:
    """``hyper`` checked against the settings model of ``kind``: the keys given (all keys,
    defaults filled in, with ``complete``), values coerced (lists of widths to tuples, ...).

    One-line ValueErrors: ``unknown gmnn-tensor hyperparameters: foo (known: ...)`` or
    ``gmnn-tensor hyperparameter hidden: message``."""
    model = hyper_model(kind)
    try:
        obj = model.model_validate(dict(hyper))
    except ValidationError as exc:
        errors = exc.errors()
        extra = [".".join(str(x) for x in e["loc"]) for e in errors
                 if e["type"] == "extra_forbidden"]
        if extra:
            raise ValueError(f"unknown {kind} hyperparameters: {', '.join(extra)} (known: "
                             f"{', '.join(sorted(model.model_fields))})") from None
        e = errors[0]
        where = ".".join(str(x) for x in e["loc"]) or "(all)"
        raise ValueError(f"{kind} hyperparameter {where}: {e['msg']}") from None
    return obj.model_dump() if complete else obj.model_dump(include=set(hyper))


__all__ = ["HYPERPARAMETERS", "DEFAULT_LAMBDAS", "hyper_model", "check_hyperparameters",
           "CovariantRidgeHyper", "EquivariantRidgeHyper", "GMNNTensorHyper",
           "GMNNEnergyHyper", "SNAPEnergyHyper", "KDGapRidgeHyper", "CFRidgeHyper"]
