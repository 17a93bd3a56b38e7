"""GFN2-xTB through tblite: published numbers, units, symmetries, f-in-core spin, retry,
failures and constrained relaxation."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.constraints import FixAtoms
from scipy.spatial.transform import Rotation

from molmag.chem.xtb import (
    RETRY_SETTINGS,
    RelaxationError,
    XTBCalculator,
    XTBError,
    relax,
    singlepoint,
    xtb_spin,
)


def water() -> Atoms:
    return molecule("H2O")


def test_water_matches_tblite_reference_and_units():
    """tblite's documented GFN2-xTB energy of ASE's water: -137.96777594 eV."""
    a = water()
    a.calc = XTBCalculator()
    assert a.get_potential_energy() == pytest.approx(-137.96777594, abs=1e-5)
    q = a.get_charges()
    assert q.sum() == pytest.approx(0.0, abs=1e-8) and q[0] < -0.4 and q[1] == pytest.approx(q[2])
    mu = a.get_dipole_moment()  # e*Angstrom: along z for C2v water, ~0.48 e*A (2.3 D)
    assert abs(mu[0]) < 1e-8 and abs(mu[1]) < 1e-8 and 0.4 < abs(mu[2]) < 0.6


def test_forces_are_minus_energy_gradient():
    a = water()
    a.positions[1] += [0.05, -0.03, 0.02]
    calc = XTBCalculator(accuracy=0.01)
    f = singlepoint(a, ["forces"], accuracy=0.01)["forces"]
    h = 1e-4
    for i, k in [(0, 2), (1, 0), (2, 1)]:
        e = []
        for s in (+1, -1):
            b = a.copy()
            b.positions[i, k] += s * h
            calc.calculate(b, ["energy"])
            e.append(calc.results["energy"])
        assert f[i, k] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=2e-4)


def test_rotation_translation_permutation():
    a = molecule("CH3OH")
    ref = singlepoint(a, ["energy", "forces", "dipole", "charges"])
    r = Rotation.random(random_state=3).as_matrix()
    b = a.copy()
    b.positions = a.positions @ r.T + [1.0, -2.0, 0.5]
    out = singlepoint(b, ["energy", "forces", "dipole", "charges"])
    assert out["energy"] == pytest.approx(ref["energy"], abs=1e-7)
    np.testing.assert_allclose(out["forces"], ref["forces"] @ r.T, atol=1e-5)
    np.testing.assert_allclose(out["dipole"], ref["dipole"] @ r.T, atol=1e-5)
    perm = np.array([0, 1, 3, 2, 5, 4])  # swap identical H atoms
    assert list(a.numbers[perm]) == list(a.numbers)
    c = a[perm]
    out = singlepoint(c, ["energy", "charges"])
    assert out["energy"] == pytest.approx(ref["energy"], abs=1e-7)
    np.testing.assert_allclose(out["charges"], ref["charges"][perm], atol=1e-6)


def test_d4_polarisabilities():
    a = water()
    a.calc = XTBCalculator()
    alpha = a.calc.get_property("polarizabilities", a)
    # Angstrom^3; the molecular sum is near water's static polarisability (1.45-1.5 A^3)
    assert alpha.shape == (3,) and np.all(alpha > 0)
    assert 1.2 < alpha.sum() < 1.8


def test_charge_and_multiplicity():
    oh = Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])
    anion = singlepoint(oh, ["energy", "charges"], charge=-1)
    assert anion["charges"].sum() == pytest.approx(-1, abs=1e-6)
    radical = singlepoint(oh, ["energy"], charge=0, multiplicity=2)
    assert anion["energy"] < radical["energy"]  # OH- is bound relative to the radical
    with pytest.raises(XTBError, match="multiplicity 1 is impossible"):
        singlepoint(oh, charge=0, multiplicity=1)
    o2 = molecule("O2")
    o2.info.update(charge=0, multiplicity=3)
    t = singlepoint(o2)["energy"]
    o2.info["multiplicity"] = 1
    # GFN2-xTB without spin polarisation does not order O2's states right; it must still see
    # the multiplicity (two unpaired electrons change the occupations and the energy)
    assert abs(t - singlepoint(o2)["energy"]) > 0.01


def test_lanthanide_f_in_core_spin():
    """Dy(III) 4f9 is S = 5/2 (multiplicity 6), but xTB keeps 4f in the core: singlet."""
    dy = Atoms("DyO2H4", positions=[[0, 0, 0], [0, 0, 2.4], [0, 0, -2.4],
                                    [0.76, 0, 3.0], [-0.76, 0, 3.0],
                                    [0.76, 0, -3.0], [-0.76, 0, -3.0]])
    assert xtb_spin(dy, 3, 6) == (3, 0)
    dy.info.update(charge=3, multiplicity=6)
    e = singlepoint(dy)["energy"]
    assert np.isfinite(e)
    la = dy.copy()
    la.numbers[0] = 57  # La(III) 4f0 gives the same parity
    assert xtb_spin(la, 3, 1) == (3, 0)


def test_retry_then_failure():
    a = molecule("C6H6")
    calc = XTBCalculator(max_iterations=2)
    calc.calculate(a, ["energy"])
    assert calc.retried and calc.attempts[0]["error"] and calc.attempts[1]["error"] is None
    assert calc.settings()["retry_settings"] == RETRY_SETTINGS
    fresh = singlepoint(a)["energy"]
    assert calc.results["energy"] == pytest.approx(fresh, abs=1e-6)  # same Hamiltonian
    with pytest.raises(XTBError, match=r"C6H6.*attempt 1: SCF not converged"):
        XTBCalculator(max_iterations=2, retry=False).calculate(a, ["energy"])


def test_relax_with_constraints_and_errors():
    a = water()
    a.positions[1] += [0.1, 0.0, 0.1]
    r = relax(a, fmax=0.01)
    assert r.converged and r.fmax < 0.01 and r.energies[-1] <= r.energies[0]
    oh = np.linalg.norm(r.atoms.positions[1] - r.atoms.positions[0])
    assert 0.93 < oh < 1.0
    fixed = relax(a, fmax=0.01, constraints=FixAtoms(indices=[0, 1]))
    np.testing.assert_allclose(fixed.atoms.positions[:2], a.positions[:2], atol=1e-12)
    assert not fixed.atoms.constraints  # constraints apply during the optimisation only
    with pytest.raises(RelaxationError, match="did not converge in 1 steps"):
        relax(a, fmax=1e-6, steps=1, name="strained water")
    with pytest.raises(ValueError, match="unknown optimizer"):
        relax(a, optimizer="Newton")
