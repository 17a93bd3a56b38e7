"""Shared fixtures and hypothesis strategies for molmag's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data next to the checkout; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} not present")
    return SHARED_DATA


# --- hypothesis strategies -------------------------------------------------------------
_unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


@st.composite
def rotations(draw) -> np.ndarray:
    """Proper rotation matrices from (non-normalised) quaternions, identity and 180-degree
    turns included."""
    q = np.array([draw(_unit) for _ in range(4)])
    if np.linalg.norm(q) < 1e-3:
        q = np.array([0.0, 0.0, 0.0, 1.0])
    return Rotation.from_quat(q / np.linalg.norm(q)).as_matrix()


_entry = st.floats(-200.0, 200.0, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def tensors(draw, symmetric: bool = True, traceless: bool = False) -> np.ndarray:
    a = np.array([[draw(_entry) for _ in range(3)] for _ in range(3)])
    if symmetric:
        a = 0.5 * (a + a.T)
    if traceless:
        a = a - np.trace(a) / 3.0 * np.eye(3)
    return a


def morse_frames(n: int, seed: int = 0, amp: float = 0.05, base=None):
    """``n`` copies of ``base`` (default: ethanol) with Gaussian displacements of ``amp`` Å and
    their energies (eV) and forces (eV/Å) from ASE's Morse pair potential: training data with
    a known pair-potential answer for the energy models."""
    from ase.build import molecule
    from ase.calculators.morse import MorsePotential

    base = molecule("CH3CH2OH") if base is None else base
    rng = np.random.default_rng(seed)
    frames, e, f = [], [], []
    for _ in range(n):
        a = base.copy()
        a.positions += rng.normal(0.0, amp, a.positions.shape)
        a.calc = MorsePotential(epsilon=0.5, r0=1.3, rho0=5.0)
        e.append(a.get_potential_energy())
        f.append(a.get_forces())
        a.calc = None
        frames.append(a)
    return frames, {"energy": np.array(e), "forces": f}
