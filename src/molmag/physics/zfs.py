r"""Zero-field-splitting parameters from a D tensor, and back.

For the spin Hamiltonian H = S . D . S (cm-1), the symmetric tensor D (3x3, cm-1) is written
in its principal frame as diag(X, Y, Z) + (Tr D / 3) I with X + Y + Z = 0. molmag uses

.. math::

    D = \tfrac32 Z, \qquad E = \tfrac12 (X - Y),

where Z is the eigenvalue of the traceless part with the largest magnitude (the z axis is
the principal axis of largest |eigenvalue|), and X, Y are ordered so that
``0 <= E/D <= 1/3`` (E carries the sign of D).  Axial anisotropy (easy axis) has D < 0.
The axes are returned as the columns (x, y, z) of a proper rotation matrix (det = +1), so
``D_tensor = axes @ diag(X, Y, Z) @ axes.T + iso * I`` (:func:`tensor_from_zfs`).

Only the symmetric part of the input enters; its antisymmetric part (which does not
contribute to S.D.S for a single spin) is discarded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from molmag.physics.tensors import symmetric_part


@dataclass(frozen=True)
class ZFSParameters:
    """Axial and rhombic zero-field-splitting parameters (cm-1) and principal axes.

    Attributes
    ----------
    D, E : float
        D = 3/2 Z, E = (X - Y)/2, cm-1.
    E_over_D : float
        E/D in [0, 1/3]; 0 when D = 0.
    axes : (3, 3) ndarray
        Columns are the principal axes x, y, z (a proper rotation matrix).
    eigenvalues : (3,) ndarray
        (X, Y, Z) of the traceless part, cm-1.
    iso : float
        Tr D / 3, cm-1 (0 for the traceless tensors of a spin Hamiltonian).
    """

    D: float
    E: float
    E_over_D: float
    axes: np.ndarray
    eigenvalues: np.ndarray
    iso: float = 0.0

    def tensor(self) -> np.ndarray:
        """The 3x3 tensor these parameters describe (see :func:`tensor_from_zfs`)."""
        return tensor_from_zfs(self.D, self.E, self.axes, self.iso)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["E/D"] = d.pop("E_over_D")
        d["axes"] = np.asarray(self.axes).tolist()
        d["eigenvalues"] = np.asarray(self.eigenvalues).tolist()
        return d


def zfs_from_tensor(tensor, *, rtol: float = 1e-12) -> ZFSParameters:
    """D, E, E/D, principal axes and isotropic part of a 3x3 D tensor (cm-1).

    ``rtol`` decides when two eigenvalue magnitudes count as equal (the rhombic limit
    E/D = 1/3); the choice of z among them is then the negative eigenvalue, which still
    gives E/D = 1/3.
    """
    t = np.asarray(tensor, dtype=float)
    if t.shape != (3, 3):
        raise ValueError(f"a D tensor must be 3x3, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("D tensor contains non-finite values")
    s = symmetric_part(t)
    iso = float(np.trace(s) / 3.0)
    w, v = np.linalg.eigh(s - iso * np.eye(3))
    scale = max(float(np.max(np.abs(w))), np.finfo(float).tiny)
    mags = np.abs(w)
    # largest magnitude; among near-ties take the most negative eigenvalue (w is ascending)
    iz = int(np.flatnonzero(mags >= mags.max() - rtol * scale * 10)[0])
    Z = w[iz]
    rest = [i for i in range(3) if i != iz]
    a, b = rest
    # order X, Y so that E = (X - Y)/2 has the sign of D (0 <= E/D <= 1/3)
    if (w[a] - w[b]) * Z < 0:
        a, b = b, a
    X, Y = w[a], w[b]
    D = 1.5 * Z
    E = 0.5 * (X - Y)
    axes = np.column_stack([v[:, a], v[:, b], v[:, iz]])
    if np.linalg.det(axes) < 0:
        axes[:, 0] *= -1.0
    if abs(D) <= rtol * max(scale, abs(iso)) or D == 0.0:
        e_over_d = 0.0
    else:
        e_over_d = float(E / D) + 0.0  # + 0.0 turns -0.0 into 0.0
    return ZFSParameters(D=float(D), E=float(E), E_over_D=e_over_d, axes=axes,
                         eigenvalues=np.array([X, Y, Z]), iso=iso)


def zfs_DE(tensors, *, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """D and E (cm-1) of a stack of 3x3 D tensors ``(n, 3, 3)``: the ``D`` and ``E`` of
    :func:`zfs_from_tensor` for each (same conventions, D = 3/2 D_zz, E = (D_xx - D_yy)/2
    with |D_zz| the largest traceless eigenvalue and 0 <= E/D <= 1/3), from one batched
    eigenvalue call: for the thousands of tensors of a trajectory or a committee."""
    t = np.asarray(tensors, dtype=float)
    if t.ndim != 3 or t.shape[1:] != (3, 3):
        raise ValueError(f"D tensors must have shape (n, 3, 3), got {t.shape}")
    if not np.all(np.isfinite(t)):
        bad = int(np.flatnonzero(~np.isfinite(t).all(axis=(1, 2)))[0])
        raise ValueError(f"D tensor {bad} contains non-finite values")
    s = 0.5 * (t + np.swapaxes(t, 1, 2))
    iso = np.trace(s, axis1=1, axis2=2) / 3.0
    w = np.linalg.eigvalsh(s - iso[:, None, None] * np.eye(3))        # ascending
    mags = np.abs(w)
    scale = np.maximum(mags.max(1), np.finfo(float).tiny)
    near = mags >= (mags.max(1) - rtol * scale * 10)[:, None]
    iz = np.argmax(near, axis=1)                                        # first near-tie
    rows = np.arange(len(w))
    z = w[rows, iz]
    rest = np.array([[1, 2], [0, 2], [0, 1]])[iz]
    wa, wb = w[rows, rest[:, 0]], w[rows, rest[:, 1]]
    swap = (wa - wb) * z < 0
    return 1.5 * z, 0.5 * np.where(swap, wb - wa, wa - wb)


def tensor_from_zfs(D: float, E: float, axes=None, iso: float = 0.0) -> np.ndarray:
    """D tensor (cm-1) from D, E, principal axes (columns x, y, z) and isotropic part.

    ``axes @ diag(-D/3 + E, -D/3 - E, 2D/3) @ axes.T + iso * I``; axes default to the
    identity (z along the laboratory z).
    """
    axes = np.eye(3) if axes is None else np.asarray(axes, dtype=float)
    if axes.shape != (3, 3):
        raise ValueError(f"axes must be a 3x3 matrix of column vectors, got shape {axes.shape}")
    diag = np.diag([-D / 3.0 + E, -D / 3.0 - E, 2.0 * D / 3.0])
    return axes @ diag @ axes.T + iso * np.eye(3)
