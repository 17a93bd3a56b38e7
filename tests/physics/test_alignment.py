import numpy as np
import pytest
from ase.build import molecule
from conftest import rotations
from hypothesis import given, settings

from molmag.physics.alignment import align, eckart_residual, eckart_rotation, kabsch


@settings(max_examples=100, deadline=None)
@given(rotations())
def test_kabsch_recovers_an_exact_rotation(r):
    ref = molecule("CH3CH2OH").positions
    moved = (ref - ref.mean(0)) @ r.T + [1.0, -2.0, 3.0]
    r_back, rmsd = kabsch(moved, ref)
    np.testing.assert_allclose(r_back, r.T, atol=1e-10)
    assert rmsd < 1e-10


@settings(max_examples=100, deadline=None)
@given(rotations())
def test_eckart_recovers_a_known_rotation_of_a_displaced_molecule(r):
    ref = molecule("CH3CH2OH")
    rng = np.random.default_rng(0)
    distorted = ref.copy()
    distorted.positions += rng.uniform(-0.1, 0.1, size=(len(ref), 3))  # intramolecular motion
    # bring the distorted structure into its own Eckart frame, then rotate and translate it
    distorted = align(distorted, ref)
    moved = distorted.copy()
    com = moved.get_center_of_mass()
    moved.positions = (moved.positions - com) @ r.T + com + [5.0, 0.0, -1.0]
    r_back = eckart_rotation(moved, ref)
    np.testing.assert_allclose(r_back, r.T, atol=1e-9)
    # the Eckart rotational conditions hold for the recovered rotation
    res = eckart_residual(moved.positions, ref.positions, ref.get_masses(), r_back)
    assert np.abs(res).max() < 1e-9


def test_eckart_on_the_copdms_configurations(shared_data):
    from ase.io import read

    frames = read(shared_data / "copdms" / "copdms_configurations_1200.xyz", index=":20")
    ref = frames[0]
    for f in frames[1:]:
        r = eckart_rotation(f, ref)
        res = eckart_residual(f.positions, ref.positions, ref.get_masses(), r)
        assert np.abs(res).max() < 1e-8
        assert np.linalg.det(r) == pytest.approx(1.0)


def test_alignment_refuses_mismatched_structures():
    with pytest.raises(ValueError, match="atoms"):
        eckart_rotation(molecule("H2O"), molecule("CH4"))
    a = molecule("CH3OH")
    b = a.copy()
    b.numbers = b.numbers[::-1]
    with pytest.raises(ValueError, match="elements"):
        eckart_rotation(a, b)
