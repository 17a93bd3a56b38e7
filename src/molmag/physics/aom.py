r"""Angular overlap model (AOM): the one-electron ligand-field matrix of the d shell.

Each donor L at unit direction n (metal -> donor) has a local frame (x', y', z' = n) and
contributes, in the basis of real d orbitals (xy, yz, z^2, xz, x^2-y^2) — the real spherical
harmonics of :func:`molmag.physics.tensors.complex_to_real_matrix` times sqrt(4 pi / 5) —

.. math::

    V = \sum_L \; e_\sigma F_\sigma F_\sigma^T + e_{\pi x} F_{\pi x} F_{\pi x}^T
                 + e_{\pi y} F_{\pi y} F_{\pi y}^T ,

with the angular overlap factors F_sigma[i] = n^T Q_i n, F_pi_x[i] = (2/sqrt3) x'^T Q_i n,
F_pi_y[i] = (2/sqrt3) y'^T Q_i n, where d_i(r) = r^T Q_i r / r^2 (Q_i symmetric traceless:
d_xy = sqrt3 xy, d_z2 = (3z^2 - r^2)/2, ...).  These are the overlaps of the d orbitals
with a sigma (along z') and pi (along x', y') ligand orbital, normalised so that d_z2 along
its own axis gives F_sigma = 1 (Schaeffer & Joergensen; Larsen & La Mar, J. Chem. Educ. 51,
633 (1974)).  The e parameters are in cm-1 and V comes out in cm-1.

Distance dependence: e(r) = e(r0) (r0 / r)^n_exp (Bridgeman & Gerloch, Prog. Inorg. Chem. 45,
179 (1997), use n_exp = 5-6).

Checks (tests): an octahedron gives t2g/eg with 10Dq = 3 e_sigma - 4 e_pi, a tetrahedron
10Dq_t = (4/3) e_sigma - (16/9) e_pi.
"""

from __future__ import annotations

import numpy as np

from molmag.physics.tensors import complex_to_real_matrix

_S3 = np.sqrt(3.0)


def _q_matrices() -> np.ndarray:
    q = np.zeros((5, 3, 3))
    q[0, 0, 1] = q[0, 1, 0] = _S3 / 2  # xy
    q[1, 1, 2] = q[1, 2, 1] = _S3 / 2  # yz
    q[2] = np.diag([-0.5, -0.5, 1.0])  # z^2
    q[3, 0, 2] = q[3, 2, 0] = _S3 / 2  # xz
    q[4] = np.diag([_S3 / 2, -_S3 / 2, 0.0])  # x^2 - y^2
    q.setflags(write=False)
    return q


#: Q_i of the real d orbitals (xy, yz, z^2, xz, x^2-y^2): d_i(r) = r^T Q_i r / r^2.
Q_D = _q_matrices()
REAL_D_LABELS = ("xy", "yz", "z2", "xz", "x2-y2")


def local_frames(directions, pi_normals=None) -> np.ndarray:
    """Orthonormal donor frames (..., 3, 3) with columns (x', y', z').

    z' = the unit metal->donor direction; y' = the given normal made perpendicular to z'
    (the axis of the out-of-plane pi interaction, e.g. the normal of the S-N-C plane of a
    sulfonamide N); x' = y' x z' (in-plane pi).  Without a normal (or a normal parallel to the
    bond) y' is any vector perpendicular to z'.
    """
    z = np.asarray(directions, dtype=float)
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    if pi_normals is None:
        ref = np.zeros_like(z)
    else:
        ref = np.asarray(pi_normals, dtype=float) * np.ones_like(z)
    y = ref - np.sum(ref * z, axis=-1, keepdims=True) * z
    ny = np.linalg.norm(y, axis=-1, keepdims=True)
    # fall back to a perpendicular built from the smallest component of z
    fallback = np.zeros_like(z)
    idx = np.argmin(np.abs(z), axis=-1)
    np.put_along_axis(fallback, idx[..., None], 1.0, axis=-1)
    fallback = fallback - np.sum(fallback * z, axis=-1, keepdims=True) * z
    fallback /= np.linalg.norm(fallback, axis=-1, keepdims=True)
    bad = ny[..., 0] < 1e-8
    y = np.where(bad[..., None], fallback, y / np.where(bad[..., None], 1.0, ny))
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=-1)


def frames_from_angles(theta, phi, chi=0.0) -> np.ndarray:
    """Donor frames from polar angles (radians): z' at (theta from z, phi from x);
    for chi = 0, x' = theta-hat (towards -z in the xz-plane of the donor) and y' = phi-hat;
    chi turns (x', y') about z' anticlockwise.  Columns (x', y', z') = Rz(phi) Ry(theta) Rz(chi).
    """
    theta, phi, chi = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (theta, phi, chi)))
    ct, st, cp, sp, cc, sc = (np.cos(theta), np.sin(theta), np.cos(phi), np.sin(phi),
                              np.cos(chi), np.sin(chi))
    th_hat = np.stack([ct * cp, ct * sp, -st], axis=-1)
    ph_hat = np.stack([-sp, cp, np.zeros_like(sp)], axis=-1)
    z = np.stack([st * cp, st * sp, ct], axis=-1)
    x = cc[..., None] * th_hat + sc[..., None] * ph_hat
    y = -sc[..., None] * th_hat + cc[..., None] * ph_hat
    return np.stack([x, y, z], axis=-1)


def overlap_factors(frames) -> np.ndarray:
    """AOM factors F (..., 3, 5): rows sigma, pi_x, pi_y; columns the real d orbitals."""
    f = np.asarray(frames, dtype=float)
    x, y, z = f[..., :, 0], f[..., :, 1], f[..., :, 2]
    fs = np.einsum("...a,iab,...b->...i", z, Q_D, z)
    fx = (2 / _S3) * np.einsum("...a,iab,...b->...i", x, Q_D, z)
    fy = (2 / _S3) * np.einsum("...a,iab,...b->...i", y, Q_D, z)
    return np.stack([fs, fx, fy], axis=-2)


def aom_matrix(frames, e_sigma, e_pi_x, e_pi_y) -> np.ndarray:
    """V (..., 5, 5) in cm-1 in the real d basis, summed over the donor axis.

    ``frames``: (..., n_donors, 3, 3); e_*: (..., n_donors) in cm-1 (already scaled for
    distance).
    """
    F = overlap_factors(frames)  # (..., nd, 3, 5)
    shape = F.shape[:-2]
    e = np.stack([np.broadcast_to(np.asarray(a, float), shape) for a in (e_sigma, e_pi_x, e_pi_y)],
                 axis=-1)  # (..., nd, 3)
    return np.einsum("...dl,...dli,...dlj->...ij", e, F, F)


def real_to_complex_operator(v_real) -> np.ndarray:
    """A one-electron operator from the real d basis to the complex m_l = -2..2 basis:
    V_c = C^T V_r C^* with real = C complex (:func:`complex_to_real_matrix`)."""
    c = complex_to_real_matrix(2)
    return np.einsum("mi,...ij,jn->...mn", c.T, np.asarray(v_real), c.conj())


def scale_with_distance(e0, r, r0, exponent) -> np.ndarray:
    """e(r) = e(r0) (r0 / r)^exponent."""
    ratio = np.asarray(r0, float) / np.asarray(r, float)
    return np.asarray(e0, float) * ratio ** np.asarray(exponent, float)
