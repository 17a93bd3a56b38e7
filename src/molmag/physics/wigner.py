r"""Wigner rotation matrices for l = 0..6 (complex and real bases) and ZYZ Euler angles.

Convention
----------
Rotations are active.  The Euler angles (alpha, beta, gamma) are z-y-z:
``R = Rz(alpha) @ Ry(beta) @ Rz(gamma)``, with 0 <= beta <= pi.

molmag's Wigner matrix is the matrix that rotates spherical components:

.. math::

    T^{l}_{m}[R\cdot A] = \sum_{m'} W^{l}_{mm'}(R)\, T^{l}_{m'}[A],
    \qquad W^{l}(R) = \overline{\mathcal{D}^{l}(R)},
    \qquad \mathcal{D}^{l}(R) = \exp(-i\,\theta\,\hat n\cdot\mathbf J),

where R rotates by theta about the unit axis n, J are the angular-momentum matrices in the
|l m> basis (m = -l..l, Condon-Shortley phases) and ``R . A`` is ``R A R^T`` for a rank-2
tensor (components of :mod:`molmag.physics.tensors`) or ``Y_l^m(R r)`` for spherical
harmonics.  In Euler angles
``W^l_{mm'} = exp(+i m alpha) d^l_{mm'}(beta) exp(+i m' gamma)`` with the real small-d
matrix ``d^l(beta) = exp(-i beta J_y)``; i.e. W is the complex conjugate of the
Wigner D-matrix of Sakurai/Edmonds, which is the representation of the *rotation
operator*, whereas W is the representation acting on the components of a rotated object.
W is unitary and a representation: ``W(R1 R2) = W(R1) W(R2)``.

The real-basis matrix is ``W_real = C W C^dagger`` with C of
:func:`molmag.physics.tensors.complex_to_real_matrix`; it is real orthogonal and rotates real
(tesseral) components.  For l = 1 it is R itself with axes reordered (y, z, x).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import expm
from scipy.spatial.transform import Rotation

from molmag.physics.tensors import complex_to_real_matrix

L_MAX = 6


@lru_cache(maxsize=None)
def _angular_momentum(l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """J_x, J_y, J_z for angular momentum l in the |l m> basis, m = -l..l (hbar = 1)."""
    m = np.arange(-l, l + 1, dtype=float)
    jp = np.zeros((2 * l + 1, 2 * l + 1), dtype=complex)
    for i, mm in enumerate(m[:-1]):
        jp[i + 1, i] = np.sqrt(l * (l + 1) - mm * (mm + 1))
    jm = jp.conj().T
    jx = 0.5 * (jp + jm)
    jy = -0.5j * (jp - jm)
    jz = np.diag(m).astype(complex)
    for a in (jx, jy, jz):
        a.setflags(write=False)
    return jx, jy, jz


def _check_l(l: int) -> int:
    if not (0 <= int(l) <= L_MAX) or int(l) != l:
        raise ValueError(f"l must be an integer in 0..{L_MAX}, got {l}")
    return int(l)


def _check_rotation(r) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    if r.shape != (3, 3):
        raise ValueError(f"a rotation matrix must be 3x3, got shape {r.shape}")
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-8) or np.linalg.det(r) < 0:
        raise ValueError("not a proper rotation matrix (need R R^T = I and det R = +1)")
    return r


def matrix_from_euler(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """R = Rz(alpha) Ry(beta) Rz(gamma) (active, radians)."""
    return Rotation.from_euler("ZYZ", [alpha, beta, gamma]).as_matrix()


def euler_from_matrix(r) -> tuple[float, float, float]:
    """ZYZ Euler angles (alpha, beta, gamma), radians, 0 <= beta <= pi, of a rotation matrix.

    For R = Rz(a) Ry(b) Rz(g): R33 = cos b, (R13, R23) = sin b (cos a, sin a),
    R11 + R22 = (1 + cos b) cos(a + g), R21 - R12 = (1 + cos b) sin(a + g),
    R22 - R11 = (1 - cos b) cos(a - g), -(R21 + R12) = (1 - cos b) sin(a - g).
    beta comes from atan2 (accurate at all angles); alpha from (R13, R23); gamma from
    a + g when cos b >= 0 and from a - g otherwise, the combination that stays well
    conditioned near the gimbal-lock points b = 0 and b = pi, so that the Wigner matrix
    rebuilt from the angles matches the one from R to machine precision.  At b = 0 or pi
    exactly, alpha = 0.
    """
    r = _check_rotation(r)
    sin_b = 0.5 * (np.hypot(r[0, 2], r[1, 2]) + np.hypot(r[2, 0], r[2, 1]))
    beta = float(np.arctan2(sin_b, r[2, 2]))
    alpha = float(np.arctan2(r[1, 2], r[0, 2]))
    if r[2, 2] >= 0.0:
        gamma = float(np.arctan2(r[1, 0] - r[0, 1], r[0, 0] + r[1, 1])) - alpha
    else:
        gamma = alpha - float(np.arctan2(-(r[1, 0] + r[0, 1]), r[1, 1] - r[0, 0]))
    gamma = float(np.mod(gamma + np.pi, 2.0 * np.pi) - np.pi)
    return alpha, beta, gamma


def wigner_D(l: int, r) -> np.ndarray:
    """Complex Wigner matrix W^l(R), shape (2l+1, 2l+1), rows/columns m = -l..l.

    ``W = conj(expm(-i theta n.J))`` from the rotation vector theta*n of R (no Euler-angle
    singularities).  See the module docstring for the convention.
    """
    l = _check_l(l)
    r = _check_rotation(r)
    if l == 0:
        return np.ones((1, 1), dtype=complex)
    rotvec = Rotation.from_matrix(r).as_rotvec()
    jx, jy, jz = _angular_momentum(l)
    gen = rotvec[0] * jx + rotvec[1] * jy + rotvec[2] * jz
    return expm(-1j * gen).conj()


def small_d(l: int, beta: float) -> np.ndarray:
    """Real reduced Wigner matrix d^l(beta) = exp(-i beta J_y), rows/columns m = -l..l."""
    l = _check_l(l)
    if l == 0:
        return np.ones((1, 1))
    _, jy, _ = _angular_momentum(l)
    return expm(-1j * beta * jy).real


def wigner_D_euler(l: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """W^l for R = Rz(alpha) Ry(beta) Rz(gamma):
    W_mm' = e^{i m alpha} d_mm'(beta) e^{i m' gamma}."""
    l = _check_l(l)
    m = np.arange(-l, l + 1)
    return np.exp(1j * m * alpha)[:, None] * small_d(l, beta) * np.exp(1j * m * gamma)[None, :]


def wigner_D_real(l: int, r) -> np.ndarray:
    """Real orthogonal Wigner matrix C W^l(R) C^dagger for real (tesseral) components."""
    c = complex_to_real_matrix(l)
    return (c @ wigner_D(l, r) @ c.conj().T).real


def wigner_D_real_euler(l: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Real Wigner matrix from ZYZ Euler angles."""
    c = complex_to_real_matrix(l)
    return (c @ wigner_D_euler(l, alpha, beta, gamma) @ c.conj().T).real
