"""Physics shared by every molmag stage: units, rank-2 tensors, zero-field-splitting
parameters, Wigner rotation matrices and structure alignment.

Conventions (see each module for equations):

* energies of magnetic levels and spin-Hamiltonian parameters in cm-1;
* spherical components ordered m = -l, ..., +l;
* rotations are *active*: a rotation matrix R maps a position r to R r and a Cartesian
  rank-2 tensor A to R A R^T.
"""

from molmag.physics.alignment import eckart_rotation, kabsch
from molmag.physics.tensors import (
    cartesian_from_real_spherical,
    cartesian_from_spherical,
    real_from_complex_matrix,
    real_spherical_from_cartesian,
    spherical_from_cartesian,
    symmetric_part,
    traceless_part,
)
from molmag.physics.units import UNITS, convert
from molmag.physics.wigner import (
    euler_from_matrix,
    matrix_from_euler,
    wigner_D,
    wigner_D_euler,
    wigner_D_real,
    wigner_D_real_euler,
)
from molmag.physics.zfs import ZFSParameters, tensor_from_zfs, zfs_from_tensor

__all__ = [
    "UNITS",
    "ZFSParameters",
    "cartesian_from_real_spherical",
    "cartesian_from_spherical",
    "convert",
    "eckart_rotation",
    "euler_from_matrix",
    "kabsch",
    "matrix_from_euler",
    "real_from_complex_matrix",
    "real_spherical_from_cartesian",
    "spherical_from_cartesian",
    "symmetric_part",
    "tensor_from_zfs",
    "traceless_part",
    "wigner_D",
    "wigner_D_euler",
    "wigner_D_real",
    "wigner_D_real_euler",
    "zfs_from_tensor",
]
