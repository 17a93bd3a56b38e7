r"""Cartesian rank-2 tensors and their spherical components.

Spherical components (complex, m = -2..2, ordered ``[T^-2, T^-1, T^0, T^1, T^2]``) follow
eqs. 7-11 of the supplementary information of Lunghi & Sanvito, *Sci. Adv.* 6, eaax7163
(2020), for a Cartesian tensor A (indices 1, 2, 3 = x, y, z):

.. math::

    T^{0}  &= \tfrac{1}{\sqrt6}\,(3A_{33} - (A_{11}+A_{22}+A_{33}))            \\
    T^{-1} &= \tfrac12\,(A_{13}+A_{31} - i(A_{23}+A_{32}))                     \\
    T^{1}  &= -\tfrac12\,(A_{13}+A_{31} + i(A_{23}+A_{32}))                    \\
    T^{-2} &= \tfrac12\,(A_{11}-A_{22} - i(A_{12}+A_{21}))                     \\
    T^{2}  &= \tfrac12\,(A_{11}-A_{22} + i(A_{12}+A_{21}))

These are the standard (Condon-Shortley) rank-2 components of the symmetric traceless part
of A; for real A, ``T^{-m} = (-1)^m conj(T^m)`` and ``sum_m |T^m|^2 = ||A_st||_F^2``.
Antisymmetric and isotropic parts of A do not enter them.

The real (tesseral) form uses the unitary matrix C of :func:`complex_to_real_matrix`
(``T_real = C T``), which gives, ordered m = -2..2,

.. math::

    (\sqrt2 A_{xy},\ \sqrt2 A_{yz},\ \tfrac{1}{\sqrt6}(2A_{zz}-A_{xx}-A_{yy}),\
     \sqrt2 A_{xz},\ \tfrac{1}{\sqrt2}(A_{xx}-A_{yy}))

for symmetric A — the same orthonormal basis as the real spherical harmonics
(xy, yz, 3z^2-r^2, xz, x^2-y^2).  Under an active rotation R (A -> R A R^T) the complex
components transform with :func:`molmag.physics.wigner.wigner_D` and the real ones with
:func:`molmag.physics.wigner.wigner_D_real`.

Units are those of A (cm-1 for a D tensor).  Every function accepts a single 3x3 tensor or a
stack ``(..., 3, 3)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_SQRT2 = np.sqrt(2.0)
_SQRT6 = np.sqrt(6.0)


def _as_tensor(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.shape[-2:] != (3, 3):
        raise ValueError(f"expected a 3x3 tensor (or a stack of them), got shape {a.shape}")
    return a


def symmetric_part(a) -> np.ndarray:
    """S = (A + A^T) / 2."""
    a = _as_tensor(a)
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def antisymmetric_part(a) -> np.ndarray:
    """(A - A^T) / 2."""
    a = _as_tensor(a)
    return 0.5 * (a - np.swapaxes(a, -1, -2))


def isotropic_part(a) -> np.ndarray:
    """(Tr A / 3) * I."""
    a = _as_tensor(a)
    tr = np.trace(a, axis1=-2, axis2=-1)
    return tr[..., None, None] / 3.0 * np.eye(3)


def traceless_part(a) -> np.ndarray:
    """A - (Tr A / 3) I  (A's symmetry is kept; combine with :func:`symmetric_part`)."""
    a = _as_tensor(a)
    return a - isotropic_part(a)


def symmetric_traceless_part(a) -> np.ndarray:
    """The rank-2 (l = 2) part of A: (A + A^T)/2 - (Tr A / 3) I."""
    return traceless_part(symmetric_part(a))


def spherical_from_cartesian(a) -> np.ndarray:
    """Complex rank-2 components ``[T^-2, T^-1, T^0, T^1, T^2]`` of A (eqs. 7-11, SI of
    Lunghi & Sanvito 2020).  Shape ``(..., 5)``, complex, units of A."""
    a = _as_tensor(a)
    xx, yy, zz = a[..., 0, 0], a[..., 1, 1], a[..., 2, 2]
    sxy = a[..., 0, 1] + a[..., 1, 0]
    sxz = a[..., 0, 2] + a[..., 2, 0]
    syz = a[..., 1, 2] + a[..., 2, 1]
    t = np.empty(a.shape[:-2] + (5,), dtype=complex)
    t[..., 0] = 0.5 * (xx - yy - 1j * sxy)
    t[..., 1] = 0.5 * (sxz - 1j * syz)
    t[..., 2] = (3.0 * zz - (xx + yy + zz)) / _SQRT6
    t[..., 3] = -0.5 * (sxz + 1j * syz)
    t[..., 4] = 0.5 * (xx - yy + 1j * sxy)
    return t


def cartesian_from_spherical(t) -> np.ndarray:
    """Inverse of :func:`spherical_from_cartesian`: the real symmetric traceless tensor whose
    components are ``t`` (eqs. 7-11 solved for A).

    A_zz = sqrt(2/3) T^0, A_xx - A_yy = 2 Re T^2, A_xy = Im T^2, A_xz = -Re T^1,
    A_yz = -Im T^1.  Only m >= 0 is read: a real tensor has T^-m = (-1)^m conj(T^m), and
    components that violate it (no real tensor has them) raise ``ValueError``.
    """
    t = np.asarray(t, dtype=complex)
    if t.shape[-1] != 5:
        raise ValueError(f"expected 5 spherical components (m = -2..2), got shape {t.shape}")
    mismatch = max(np.max(np.abs(t[..., 0] - np.conj(t[..., 4])), initial=0.0),
                   np.max(np.abs(t[..., 1] + np.conj(t[..., 3])), initial=0.0),
                   np.max(np.abs(t[..., 2].imag), initial=0.0))
    scale = max(np.max(np.abs(t), initial=0.0), 1.0)
    if mismatch > 1e-9 * scale:
        raise ValueError("spherical components are not those of a real tensor "
                         "(need T^-m = (-1)^m conj(T^m) and real T^0)")
    zz = np.sqrt(2.0 / 3.0) * t[..., 2].real
    xx_minus_yy = 2.0 * t[..., 4].real
    xy = t[..., 4].imag
    xz = -t[..., 3].real
    yz = -t[..., 3].imag
    a = np.empty(t.shape[:-1] + (3, 3))
    a[..., 0, 0] = 0.5 * (-zz + xx_minus_yy)
    a[..., 1, 1] = 0.5 * (-zz - xx_minus_yy)
    a[..., 2, 2] = zz
    a[..., 0, 1] = a[..., 1, 0] = xy
    a[..., 0, 2] = a[..., 2, 0] = xz
    a[..., 1, 2] = a[..., 2, 1] = yz
    return a


@lru_cache(maxsize=None)
def _complex_to_real(l: int) -> np.ndarray:
    c = np.zeros((2 * l + 1, 2 * l + 1), dtype=complex)
    inv_sqrt2 = 1.0 / _SQRT2
    for m in range(-l, l + 1):
        row = m + l
        if m == 0:
            c[row, l] = 1.0
        elif m > 0:
            c[row, l - m] = inv_sqrt2
            c[row, l + m] = (-1) ** m * inv_sqrt2
        else:
            mu = -m
            c[row, l - mu] = 1j * inv_sqrt2
            c[row, l + mu] = -1j * (-1) ** mu * inv_sqrt2
    c.setflags(write=False)
    return c


def complex_to_real_matrix(l: int) -> np.ndarray:
    r"""Unitary C with ``T_real = C T_complex`` (rows and columns ordered m = -l..l).

    Row m > 0:  (T^{-m} + (-1)^m T^{m}) / sqrt2;  row 0: T^0;
    row m < 0:  i (T^{-|m|} - (-1)^{|m|} T^{|m|}) / sqrt2.
    This maps complex spherical harmonics Y_l^m (Condon-Shortley) to the usual real
    spherical harmonics; e.g. l = 1 gives (y, z, x) and l = 2 (xy, yz, 3z^2-r^2, xz, x^2-y^2).
    """
    if l < 0:
        raise ValueError(f"l must be >= 0, got {l}")
    return _complex_to_real(int(l))


def real_from_complex_matrix(l: int, w) -> np.ndarray:
    """Change of basis of an operator/rotation matrix: ``C W C^dagger`` (real for a Wigner
    matrix)."""
    c = complex_to_real_matrix(l)
    return c @ np.asarray(w) @ c.conj().T


def real_spherical_from_cartesian(a) -> np.ndarray:
    """Real (tesseral) rank-2 components of A, ordered m = -2..2 (see module docstring)."""
    t = spherical_from_cartesian(a)
    r = t @ complex_to_real_matrix(2).T
    return r.real


def cartesian_from_real_spherical(r) -> np.ndarray:
    """Inverse of :func:`real_spherical_from_cartesian` (symmetric traceless result)."""
    r = np.asarray(r, dtype=float)
    if r.shape[-1] != 5:
        raise ValueError(f"expected 5 real spherical components (m = -2..2), got shape {r.shape}")
    t = r @ complex_to_real_matrix(2).conj()
    return cartesian_from_spherical(t)
