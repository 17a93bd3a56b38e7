r"""Rigid alignment of a structure onto a reference: Kabsch and Eckart.

Kabsch (weighted): for positions p_i (structure) and q_i (reference), both taken relative to
their w-weighted centroids, find the proper rotation R minimising

.. math::  \sum_i w_i \,\lVert R\,p_i - q_i \rVert^2 ,

by the SVD of H = sum_i w_i p_i q_i^T = U S V^T: ``R = V diag(1, 1, det(V U^T)) U^T``.

Eckart: with w_i the atomic masses (centre-of-mass translation removed), the minimiser R
also satisfies the Eckart rotational conditions

.. math::  \sum_i m_i\, q_i \times (R\,p_i) = 0 ,

(Kudin & Dymarsky, J. Chem. Phys. 122, 224105 (2005)); this is the rotation used by the
covariant ridge of Lunghi & Sanvito (SI, "Eckart-Sayvetz conditions").

The returned R maps the structure onto the reference: ``R @ (x_i - com_x) ~ q_i - com_q``.
Positions in Angstrom; masses in amu (ASE's).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms


def kabsch(positions, reference, weights=None) -> tuple[np.ndarray, float]:
    """Rotation R (3x3) that best maps ``positions`` onto ``reference`` after removing the
    weighted centroids, and the weighted RMSD after alignment (Angstrom).

    ``positions`` and ``reference`` are (N, 3) arrays with corresponding rows; ``weights`` (N,)
    default to 1.  The RMSD is sqrt(sum w |R p - q|^2 / sum w).
    """
    p = np.asarray(positions, dtype=float)
    q = np.asarray(reference, dtype=float)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape != q.shape:
        raise ValueError(f"positions {p.shape} and reference {q.shape} must both be (N, 3)")
    if len(p) < 2:
        raise ValueError("alignment needs at least two points")
    w = np.ones(len(p)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(p),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be (N,), non-negative and not all zero")
    wn = w / w.sum()
    p = p - wn @ p
    q = q - wn @ q
    h = (p * w[:, None]).T @ q
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    diff = p @ r.T - q
    rmsd = float(np.sqrt(np.sum(w * np.sum(diff**2, axis=1)) / w.sum()))
    return r, rmsd


def eckart_rotation(atoms: Atoms, reference: Atoms,
                    indices: Sequence[int] | None = None) -> np.ndarray:
    """Rotation satisfying the Eckart conditions that brings ``atoms`` onto ``reference``.

    Mass-weighted Kabsch over the atoms ``indices`` (all by default), with the
    centre-of-mass translation of that set removed.  Both structures must list the same
    elements in the same order.
    """
    if len(atoms) != len(reference):
        raise ValueError(f"structure has {len(atoms)} atoms, reference has {len(reference)}")
    if not np.array_equal(atoms.numbers, reference.numbers):
        raise ValueError("structure and reference list different elements (atom order must match)")
    idx = np.arange(len(atoms)) if indices is None else np.asarray(indices, dtype=int)
    r, _ = kabsch(atoms.positions[idx], reference.positions[idx], atoms.get_masses()[idx])
    return r


def eckart_residual(positions, reference, masses, rotation) -> np.ndarray:
    """sum_i m_i q_i x (R p_i) with centre-of-mass-centred p, q: zero for the Eckart frame."""
    p = np.asarray(positions, float)
    q = np.asarray(reference, float)
    m = np.asarray(masses, float)
    p = p - (m @ p) / m.sum()
    q = q - (m @ q) / m.sum()
    return np.sum(m[:, None] * np.cross(q, p @ np.asarray(rotation).T), axis=0)


def align(atoms: Atoms, reference: Atoms, indices: Sequence[int] | None = None) -> Atoms:
    """Copy of ``atoms`` rotated (Eckart) and translated onto ``reference``."""
    r = eckart_rotation(atoms, reference, indices)
    idx = np.arange(len(atoms)) if indices is None else np.asarray(indices, dtype=int)
    m = atoms.get_masses()[idx]
    com = m @ atoms.positions[idx] / m.sum()
    com_ref = m @ reference.positions[idx] / m.sum()
    out = atoms.copy()
    out.positions = (atoms.positions - com) @ r.T + com_ref
    return out
