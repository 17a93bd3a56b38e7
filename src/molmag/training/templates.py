"""Commented example ``molmag train`` configurations, one per model kind."""

from __future__ import annotations

import textwrap
from typing import Any

_HEAD = """\
# molmag train configuration: {title}
# Run with:  molmag train {name}.yaml        (evaluate: molmag evaluate {name}/model.npz DATASET)
# Learning curve:  molmag learning-curve {name}.yaml --sizes 50,100,200,400,900

model:
  kind: {kind}
  committee: {committee}           # members; their spread is the uncertainty (eq. 12)
  resample: null         # how members differ: bootstrap (ridge default) | none (networks:
                         # all rows, own seeds) | subsample (a `subsample` fraction each)
  subsample: null        # training fraction per member when resample: subsample
  calibration: conformal     # spread -> calibrated sigma on the validation split:
                             # conformal | scale | scale-floor | none
  hyper:
{hyper}
descriptor:              # overrides of the default descriptor settings
{descriptor}
data:
  dataset: {dataset}     # a molmag dataset (molmag label writes one)
  selection: null        # ASE selection of rows, e.g. "group=md1200"
  split:
    by: fraction         # fraction: seeded shuffle | tag: rows' split field train/val/test
    val: 0.1
    test: 0.2            # the rest trains
    n_train: null        # at most this many training structures
  seed: 0

output: {name}           # folder: model.npz, metrics.json, parity.png, train.log
"""

_SNAP = """\
  # SNAP bispectrum (LAMMPS ML-SNAP): species and weights default to the dataset's elements
  # twojmax: 8           # 2J = 8 as in the Lunghi-Sanvito SI (55 components)
  # rcutfac: {rcut}       # Angstrom
"""
_GM = """\
  # Gaussian moments (Zaverkin et al. 2022)
  # n_radial: 5          # 360 invariants per atom
  # n_basis: 7
  # r_cut: {rcut}         # Angstrom
"""

_GM_TENSOR = """\
  # Gaussian moments (Zaverkin et al. 2022)
  # n_radial: 5          # 360 invariants per atom
  # n_basis: 7
  r_cut: 5.0             # Angstrom (paper: 8.0); with env_cutoff the environment's atoms
                         # see their neighbours up to here
"""

#: Descriptor of the shipped SNAP energy model: quadratic SNAP at 2J = 4 (LAMMPS
#: quadraticflag: the 14 bispectrum components and their 105 products per species) with
#: element weights w_j of the neighbour density (heavier atoms weigh more), the best force
#: RMSE measured on held-out 100 K xTB MD of [Co(pdms)2]2- (0.060 eV/A vs 0.078 for linear
#: 2J = 8 with unit weights) and ~8x faster in LAMMPS (benchmarks/potentials.py,
#: DEVELOPERS.md "Potentials for MD").
SNAP_ENERGY_DESCRIPTOR = {"twojmax": 4, "quadraticflag": True, "rcutfac": 3.1,
                          "weights": {"Co": 1.0, "S": 0.8, "O": 0.6, "N": 0.5, "C": 0.4,
                                      "H": 0.2}}
#: Hyperparameters and descriptor of the shipped GM-NN D-tensor model (``molmag template train
#: --model gmnn-tensor``, the block below): metal origin, a 3.6 Angstrom environment, r_cut 5,
#: 2 x 128, 200 epochs, e_weight 50 (DEVELOPERS.md, "D-tensor models at the issue-17 protocol").
GMNN_TENSOR_HYPER = {"origin": "metal", "env_cutoff": 3.6, "hidden": [128, 128],
                     "max_epochs": 200, "e_weight": 50.0}
GMNN_TENSOR_DESCRIPTOR = {"r_cut": 5.0}
_SNAP_ENERGY = """\
  # SNAP bispectrum (LAMMPS ML-SNAP): species default to the dataset's elements
  twojmax: 4             # 2J = 4: 14 components per atom ...
  quadraticflag: true    # ... and their 105 products (quadratic SNAP)
  rcutfac: 3.1           # Angstrom (2.6-3.1 equal; 3.5 worse)
  weights: {Co: 1.0, S: 0.8, O: 0.6, N: 0.5, C: 0.4, H: 0.2}
                         # neighbour weights w_j for [Co(pdms)2]2- (every element of the
                         # dataset needs one, or delete the line for w_j = 1); w_j ~ Z_j/Z_metal
                         # does as well.  F RMSE on 100 K xTB MD, SNAP alone: 0.058 eV/A
                         # from 792 frames (unit weights 0.073, linear 2J = 8 0.078); 8x
                         # faster MD than 2J = 8.  More accurate, slower (SNAP alone, same
                         # data; LAMMPS pair_style snap at fixed positions): twojmax: 5 ->
                         # 0.046 eV/A, 1.75x slower; twojmax: 6 -> 0.038 eV/A, 3.5x slower.
                         # Faster: twojmax: 3 runs 1.9x faster (with the pair term below
                         # 0.056 eV/A against 0.042 at 2J = 4; with weights {Co: 1, S: 1,
                         # O: 1, N: 1, C: 1, H: 0.5} and pair_basis: 20, 0.050 eV/A)
"""

SPECS: dict[str, dict[str, Any]] = {
    "covariant-ridge": dict(
        title="covariant bispectrum ridge of the D tensor (Lunghi & Sanvito 2020)",
        hyper="""\
    features: donors     # donors: donor geometry in the Eckart frame of the metal and
                         # its donors (molmag; RMSE D_ij 0.23 cm-1 on co-pdms) |
                         # bispectrum: the paper's eq. 4 (1.04; benchmarks/models.py)
    degree: 2            # donors: monomials of the donor geometry up to this degree
    env_cutoff: 3.5      # Angstrom: atoms of the metal's environment (bispectrum)
    n_references: 1      # reference environments l0
    lambda_selection: loo  # ridge penalty by leave-one-out on the training rows (steady
                         # on 100-200 structures) | validation: on the validation split""",
        descriptor=_SNAP.format(rcut=3.5), dataset="copdms.db", committee=3),
    "equivariant-ridge": dict(
        title="equivariant spherical-harmonic ridge of the D tensor (Nguyen & Lunghi 2022)",
        hyper="""\
    features: donors     # donors: local-frame tensors of the donors with invariant
                         # polynomial weights (molmag; RMSE D_ij 0.26 cm-1 on
                         # co-pdms) | bispectrum: Nguyen & Lunghi (1.62)
    degree: 2            # donors: degree of the invariant weights
    env_cutoff: 3.5      # Angstrom (bispectrum)""",
        descriptor=_SNAP.format(rcut=3.5), dataset="copdms.db", committee=3),
    "gmnn-tensor": dict(
        title="Gaussian-moment network of the D tensor (Zaverkin et al. 2022)",
        hyper="""\
    origin: metal        # metal | centroid (paper): the origin of eq. 7
    env_cutoff: 3.6      # Angstrom: only atoms this close to the metal (the donors
                         # and their substituents) add to eq. 7, smoothly cut off;
                         # null: every atom (paper)
    hidden: [128, 128]   # paper: [512, 512] (slower, no better at 900 structures)
    max_epochs: 200      # paper: 1000 on a GPU; the best validation epoch is kept
    e_weight: 50         # loss weight of the first-order error of E (0: the paper's
                         # loss; without it the network does not beat the mean on E)""",
        descriptor=_GM_TENSOR, dataset="copdms.db", committee=3),
    "gmnn-energy": dict(
        title="Gaussian-moment network of the energy and forces (Zaverkin et al. 2022, eq. 13)",
        hyper="",
        descriptor=_GM.format(rcut=6.5), dataset="copdms.db", committee=3),
    "snap-energy": dict(
        title="SNAP ridge of the energy and forces (Lunghi & Sanvito 2020; quadratic SNAP)",
        hyper="""\
    pair_cutoff: 5.0     # Angstrom: a learned element-pair term (12 Gaussians per pair
                         # of elements, fitted with SNAP; LAMMPS pair_style table): F RMSE
                         # on 100 K xTB MD 0.058 -> 0.042 eV/A, E 0.029 -> 0.013 eV; MD
                         # ~0.65x as fast in LAMMPS.  0: SNAP alone (the library default,
                         # safer on a few dozen strongly displaced structures)
    pair_basis: 12       # Gaussians per pair of elements""",
        descriptor=_SNAP_ENERGY, dataset="copdms.db", committee=3),
    "kd-gap-ridge": dict(
        title="invariant ridge of the Kramers-doublet energies of a Dy(III) complex",
        hyper="""\
    env_cutoff: 3.5      # Angstrom""",
        descriptor=_SNAP.format(rcut=3.5), dataset="dy-ligands.db", committee=3),
    "cf-ridge": dict(
        title="equivariant ridge of the crystal-field parameters (k = 2, 4, 6)",
        hyper="""\
    env_cutoff: 3.5      # Angstrom""",
        descriptor=_SNAP.format(rcut=3.5), dataset="dy-ligands.db", committee=3),
}


def _yaml_value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        if len(v) > 6:
            return f"[{_yaml_value(v[0])}, ..., {_yaml_value(v[-1])}]  ({len(v)} values)"
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    return str(v)


def hyper_reference(kind: str, skip: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """Commented lines documenting every hyperparameter of ``kind`` not in ``skip``: name,
    default and description, from its settings model
    (:mod:`molmag.models.hyperparameters`)."""
    from molmag.models.hyperparameters import hyper_model

    lines = []
    for name, field in hyper_model(kind).model_fields.items():
        if name in skip or name == "checkpoint":      # checkpoints: molmag train sets them
            continue
        entry = f"    # {name}: {_yaml_value(field.default)}"
        desc = textwrap.wrap(field.description or "", width=100 - 38)
        if len(entry) > 35 and desc:
            lines.append(entry)
            entry = ""
        for i, text in enumerate(desc or [""]):
            lines.append(((entry if i == 0 else "").ljust(36) + f"# {text}").rstrip()
                         if text else entry)
    return "\n".join(lines)


def train_template(kind: str, name: str | None = None) -> str:
    """The commented ``molmag train`` configuration of ``kind``: the recommended settings,
    then every other hyperparameter of the kind commented out with its default."""
    if kind not in SPECS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(SPECS)}")
    spec = dict(SPECS[kind])
    given = {line.split(":")[0].strip() for line in spec["hyper"].splitlines()
             if line.strip() and not line.strip().startswith("#")}
    rest = hyper_reference(kind, given)
    if rest:
        head = spec["hyper"].rstrip("\n")
        spec["hyper"] = (head + "\n" if head else "") + \
            "    # every other hyperparameter, with its default:\n" + rest
    return _HEAD.format(kind=kind, name=name or kind, **spec)


__all__ = ["train_template", "hyper_reference", "SPECS"]
