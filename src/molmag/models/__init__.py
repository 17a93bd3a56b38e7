"""Symmetry-aware models of magnetic anisotropy and energy, as committees with calibrated
uncertainty: covariant and equivariant ridges of the D tensor (Lunghi & Sanvito 2020; Nguyen &
Lunghi 2022), Gaussian-moment networks (Zaverkin et al. 2022), SNAP energy ridges, ridges of
Kramers-doublet energies and crystal-field parameters.

The modules are imported on use (no imports here, so ``import molmag.models.x`` stays light):
:mod:`molmag.models.committee` (any kind as a committee, model files),
:mod:`molmag.models.calculator` (every target as an ASE calculator),
:mod:`molmag.models.hyperparameters` (typed hyperparameters per kind),
:mod:`molmag.models.calibration` (spread -> calibrated sigma).
"""
