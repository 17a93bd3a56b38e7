import numpy as np
import pytest
from ase import Atoms
from conftest import rotations
from hypothesis import given, settings

from molmag.physics.aom import REAL_D_LABELS, aom_matrix, frames_from_angles, local_frames
from molmag.physics.ligand_field import (
    DONOR_DEFAULTS,
    LigandFieldCalculator,
    LigandFieldEngine,
    LigandFieldModel,
    ion_parameters,
)
from molmag.physics.spin_hamiltonian import G_E
from molmag.physics.zfs import zfs_from_tensor

OCT = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1.0]])
TET = np.array([[1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1.0]]) / np.sqrt(3)


def levels(energies, tol=1e-6):
    """(energy, degeneracy) of sorted energies."""
    out = []
    for e in np.sort(energies):
        if out and abs(e - out[-1][0]) < tol * max(1.0, abs(e)):
            out[-1][1] += 1
        else:
            out.append([e, 1])
    return [(float(e), n) for e, n in out]


@pytest.mark.parametrize("es, ep", [(4000.0, 900.0), (5500.0, -300.0), (3000.0, 0.0)])
def test_octahedral_and_tetrahedral_one_electron_splitting(es, ep):
    w = np.linalg.eigvalsh(aom_matrix(local_frames(OCT), es, ep, ep))
    np.testing.assert_allclose(w[3:].mean() - w[:3].mean(), 3 * es - 4 * ep, atol=1e-9)
    np.testing.assert_allclose([np.ptp(w[:3]), np.ptp(w[3:])], 0, atol=1e-9)
    w = np.linalg.eigvalsh(aom_matrix(local_frames(TET), es, ep, ep))
    np.testing.assert_allclose(abs(w[2:].mean() - w[:2].mean()), abs(4 / 3 * es - 16 / 9 * ep),
                               atol=1e-9)
    # the many-electron engine sees the same splitting for d1 (no spin-orbit coupling)
    eng = LigandFieldEngine("Ti3+", zeta=0.0)
    v = aom_matrix(local_frames(OCT), es, ep, ep)
    lv = levels(eng.solve(v).energies_spin_free[0])
    assert lv[0][1] == 6 and lv[1][1] == 4 and lv[1][0] == pytest.approx(abs(3 * es - 4 * ep))


def test_pi_axis_convention():
    # donor on +x (theta = 90 deg, phi = 0): x' = theta-hat = -z, y' = phi-hat = +y
    f = frames_from_angles(np.pi / 2, 0.0, 0.0)
    np.testing.assert_allclose(f[:, 0], [0, 0, -1], atol=1e-15)
    np.testing.assert_allclose(f[:, 1], [0, 1, 0], atol=1e-15)
    v = aom_matrix(f[None], 0.0, 1000.0, 0.0)  # pi only along x' (z): raises d_xz
    assert REAL_D_LABELS[int(np.argmax(np.diag(v)))] == "xz"
    v = aom_matrix(frames_from_angles(np.pi / 2, 0.0, np.pi / 2)[None], 0.0, 1000.0, 0.0)
    assert REAL_D_LABELS[int(np.argmax(np.diag(v)))] == "xy"  # chi = 90 deg turns x' onto y


@pytest.mark.parametrize("ion, high, low, n_high, n_low", [
    ("V3+", "3F", "3P", 21, 9), ("Ni2+", "3F", "3P", 21, 9),
    ("Cr3+", "4F", "4P", 28, 12), ("Co2+", "4F", "4P", 28, 12)])
def test_free_ion_term_separation_is_15B(ion, high, low, n_high, n_low):
    B, C = 1000.0, 4200.0
    eng = LigandFieldEngine(ion, B=B, C=C, zeta=0.0)
    lv = levels(eng.solve(np.zeros((5, 5))).energies_spin_free[0])
    assert lv[0] == (0.0, n_high)
    p_level = [e for e, n in lv if n == n_low]
    assert p_level[0] == pytest.approx(15 * B, rel=1e-10)
    if ion in ("V3+", "Ni2+"):  # 1D at 5B + 2C, 1G at 12B + 2C above 3F
        assert [e for e, n in lv if n == 5][0] == pytest.approx(5 * B + 2 * C)
        assert [e for e, n in lv if n == 9 and e > 20 * B][0] == pytest.approx(12 * B + 2 * C)


def nicl6(axial: float = 2.40, equatorial: float = 2.40) -> Atoms:
    pos = np.vstack([[0, 0, 0], OCT * [[equatorial]] * 1.0])
    pos[5:, :] = OCT[4:] * axial
    a = Atoms("NiCl6", positions=pos)
    a.info.update(charge=-4, multiplicity=3)
    return a


def test_regular_octahedral_nickel_has_no_zfs_and_tetragonal_signs_differ():
    calc = LigandFieldCalculator()
    a = nicl6()
    a.calc = calc
    assert np.abs(calc.get_property("zfs_tensor", a)).max() < 1e-8
    d_elong = LigandFieldCalculator().get_property("zfs_D", nicl6(axial=2.60))
    d_comp = LigandFieldCalculator().get_property("zfs_D", nicl6(axial=2.25))
    assert abs(d_elong) > 0.5 and abs(d_comp) > 0.5
    assert np.sign(d_elong) == -np.sign(d_comp)


def test_octahedral_nickel_g_matches_second_order_formula():
    """Ni(II) 3A2g: g = g_e + 4 k zeta / 10Dq for weak spin-orbit coupling."""
    zeta, k = 20.0, 0.9
    eng = LigandFieldEngine("Ni2+", zeta=zeta, k=k)
    es, ep = 3500.0, 500.0
    r = eng.solve(aom_matrix(local_frames(OCT), es, ep, ep))
    g = np.linalg.eigvalsh(r.g_tensor[0])
    np.testing.assert_allclose(g - G_E, 4 * k * zeta / (3 * es - 4 * ep), rtol=0.02)
    assert np.abs(r.zfs_tensor[0]).max() < 1e-8


def distorted_cocl4(seed=0) -> Atoms:
    rng = np.random.default_rng(seed)
    pos = np.vstack([[0, 0, 0], TET * 2.28]) + rng.uniform(-0.12, 0.12, size=(5, 3))
    a = Atoms("CoCl4", positions=pos)
    a.info.update(charge=-2, multiplicity=4)
    return a


def test_kramers_pairs_and_exact_spin_hamiltonian_for_s32():
    calc = LigandFieldCalculator()
    a = distorted_cocl4()
    a.calc = calc
    e = calc.get_property("lf_energies", a)
    np.testing.assert_allclose(e[0::2], e[1::2], atol=1e-7)  # Kramers degeneracy, all states
    p = zfs_from_tensor(calc.results["zfs_tensor"])
    # the 4 states of S = 3/2 are described exactly: gap = 2 sqrt(D^2 + 3E^2)
    assert e[2] == pytest.approx(2 * np.sqrt(p.D**2 + 3 * p.E**2), rel=1e-9)
    assert calc.info["zfs_fit_rms_cm-1"] < 1e-8
    assert calc.info["spin"] == 1.5 and calc.info["ion"] == "Co2+"


def test_second_order_D_approaches_exact_D_for_weak_spin_orbit():
    a = distorted_cocl4(3)
    model = LigandFieldModel.from_atoms(a)
    for zeta, tol in ((5.0, 0.01), (40.0, 0.06)):
        r = LigandFieldEngine("Co2+", zeta=zeta).solve(model.aom_matrix(), pt2=True)
        np.testing.assert_allclose(r.zfs_tensor_pt2[0], r.zfs_tensor[0],
                                   atol=tol * np.abs(r.zfs_tensor[0]).max())


@settings(max_examples=15, deadline=None)
@given(rotations())
def test_D_and_g_rotate_with_the_structure(r):
    a = distorted_cocl4(1)
    b = a.copy()
    b.positions = a.positions @ r.T + [1.0, -2.0, 0.5]
    ca, cb = LigandFieldCalculator(), LigandFieldCalculator()
    ta = ca.get_property("zfs_tensor", a)
    tb = cb.get_property("zfs_tensor", b)
    np.testing.assert_allclose(tb, r @ ta @ r.T, atol=1e-8 * np.abs(ta).max())
    np.testing.assert_allclose(cb.results["g_tensor"], r @ ca.results["g_tensor"] @ r.T, atol=1e-9)


def test_results_do_not_depend_on_atom_order(shared_data):
    from ase.io import read

    a = read(shared_data / "copdms" / "copdms_configurations_1200.xyz", index="7")
    a.info.update(charge=-2, multiplicity=4)
    perm = np.random.default_rng(0).permutation(len(a))
    b = a[perm]
    b.info.update(a.info)
    ta = LigandFieldCalculator().get_property("zfs_tensor", a)
    tb = LigandFieldCalculator().get_property("zfs_tensor", b)
    np.testing.assert_allclose(ta, tb, atol=1e-9)


def test_calibrated_copdms_D(shared_data):
    from ase.io import read

    frames = read(shared_data / "copdms" / "copdms_configurations_1200.xyz", index=":")
    mean = frames[0].copy()
    mean.positions = np.mean([f.positions for f in frames], axis=0)
    mean.info.update(charge=-2, multiplicity=4)
    calc = LigandFieldCalculator()
    mean.calc = calc
    props = mean.get_properties(["zfs_D", "zfs_E", "zfs_tensor", "g_tensor"])  # ASE protocol
    assert -125.0 <= props["zfs_D"] <= -95.0
    assert props["zfs_E"] / props["zfs_D"] < 0.1
    assert [d["type"] for d in calc.info["donors"]] == ["N_sulfonamide"] * 4
    # batched conformers give the same numbers as one structure at a time
    model = LigandFieldModel.from_atoms(mean)
    batch = model.aom_matrices(np.stack([f.positions for f in frames[:5]]))
    single = [LigandFieldModel.from_atoms(f, charge=-2, multiplicity=4).aom_matrix()
              for f in frames[:5]]
    np.testing.assert_allclose(batch, single, atol=1e-9)


def test_refusals():
    with pytest.raises(ValueError, match="no transition metal"):
        water = Atoms("H2O", positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
        LigandFieldCalculator().get_property("zfs_D", water)
    zn = nicl6()
    zn.numbers[0] = 30
    with pytest.raises(ValueError, match="not a 3d ion"):
        LigandFieldCalculator().get_property("zfs_D", zn)
    cu = nicl6()
    cu.numbers[0] = 29
    cu.info["multiplicity"] = 2
    with pytest.raises(ValueError, match="S = 0.5"):
        LigandFieldCalculator().get_property("zfs_D", cu)
    wrong = nicl6()
    wrong.info["multiplicity"] = 1  # low spin: the ligand field says otherwise
    with pytest.raises(ValueError,
                       match="S = 1 .multiplicity 3., but the structure says multiplicity 1"):
        LigandFieldCalculator().get_property("zfs_D", wrong)
    wrong.info["multiplicity"] = 2  # impossible for d8
    with pytest.raises(ValueError, match="cannot have spin multiplicity 2"):
        LigandFieldCalculator().get_property("zfs_D", wrong)
    with pytest.raises(ValueError, match="unsupported ion"):
        ion_parameters("Co7+")
    br = nicl6()
    br.numbers[1] = 35
    with pytest.raises(ValueError, match="Br1"):
        LigandFieldCalculator().get_property("zfs_D", br)


def test_engine_lists_sources_for_every_default():
    assert all(p.source for p in DONOR_DEFAULTS.values())
    assert ion_parameters("Co(II)").name == "Co2+"
    assert ion_parameters("Fe3+").n_d == 5


@pytest.mark.parametrize("ion, charge, mult, s", [("Fe2+", -2, 5, 2.0), ("Fe3+", -1, 6, 2.5),
                                                  ("Mn2+", -2, 6, 2.5)])
def test_high_spin_iron_and_manganese(ion, charge, mult, s):
    """S = 2 and S = 5/2 ground multiplets: the spin is found, D is rotation covariant, the
    effective Hamiltonian's D tends to the second-order one for weak spin-orbit coupling."""
    a = distorted_cocl4(5)
    a.numbers[0] = {"Fe": 26, "Mn": 25}[ion[:2]]
    a.info.update(charge=charge, multiplicity=mult)
    calc = LigandFieldCalculator()
    t = calc.get_property("zfs_tensor", a)
    assert calc.info["ion"] == ion and calc.info["spin"] == s
    assert np.all(np.isfinite(t)) and abs(np.trace(t)) < 1e-9
    assert abs(calc.results["zfs_D"]) > 1e-4
    r = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))[0]
    r *= np.linalg.det(r)
    b = a.copy()
    b.positions = a.positions @ r.T
    np.testing.assert_allclose(LigandFieldCalculator().get_property("zfs_tensor", b),
                               r @ t @ r.T, atol=1e-7 * np.abs(t).max())
    if s == 2.0:  # first order in D for a non-degenerate quintet: PT2 and exact agree
        model = LigandFieldModel.from_atoms(a)
        res = LigandFieldEngine(ion, zeta=5.0).solve(model.aom_matrix(), pt2=True)
        np.testing.assert_allclose(res.zfs_tensor_pt2[0], res.zfs_tensor[0],
                                   atol=0.02 * np.abs(res.zfs_tensor[0]).max())


def test_point_charge_term_octahedral_limit_and_orientation():
    from molmag.physics.ligand_field import RADIAL_3D, point_charge_matrix

    r = 2.1
    v = point_charge_matrix(OCT * r, -np.ones(6), RADIAL_3D["Co2+"])
    w = np.linalg.eigvalsh(v)
    r4 = RADIAL_3D["Co2+"][1]
    ten_dq = 5 / 3 * r4 / (r / 0.529177210903) ** 5 * 219474.6313632  # (5/3) q <r^4>/R^5
    assert w[3:].mean() - w[:3].mean() == pytest.approx(ten_dq, rel=1e-10)
    assert np.trace(v) == pytest.approx(0, abs=1e-9)  # k = 0 term left out
    v = point_charge_matrix(np.array([[0, 0, 2.5]]), [-0.5], RADIAL_3D["Ni2+"])
    assert REAL_D_LABELS[int(np.argmax(np.diag(v)))] == "z2"


def test_outer_point_charges_in_the_calculator():
    a = distorted_cocl4(2)
    # a counter-ion 4 A away on z: only the point-charge term sees it
    a += Atoms("Na", positions=[[0.3, -0.2, 4.0]])
    a.info.update(charge=-1, multiplicity=4)
    q = np.zeros(len(a))
    q[-1] = 1.0
    base = LigandFieldCalculator(charge=-2)
    d0 = base.get_property("zfs_tensor", a)
    calc = LigandFieldCalculator(charge=-2, outer_charges=q)
    d1 = calc.get_property("zfs_tensor", a)
    assert calc.info["point_charges"]["atoms"] == 1
    assert np.abs(d1 - d0).max() > 1e-3  # the counter-ion changes D ...
    far = LigandFieldCalculator(charge=-2, outer_charges=q, outer_cutoff=3.0)
    # ... unless cut off
    np.testing.assert_allclose(far.get_property("zfs_tensor", a), d0, atol=1e-12)
    # rotation covariance holds with the point charges too
    rot = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))[0]
    rot *= np.linalg.det(rot)
    b = a.copy()
    b.positions = a.positions @ rot.T
    calc = LigandFieldCalculator(charge=-2, outer_charges=q)
    np.testing.assert_allclose(calc.get_property("zfs_tensor", b),
                               rot @ d1 @ rot.T, atol=1e-8 * np.abs(d1).max())
    model = LigandFieldModel.from_atoms(a, charge=-2, outer_charges=q)
    np.testing.assert_allclose(model.aom_matrices(a.positions[None])[0], model.aom_matrix(),
                               atol=1e-9)
    with pytest.raises(ValueError, match="one charge per atom"):
        LigandFieldCalculator(charge=-2, outer_charges=[1.0]).get_property("zfs_D", a)


def test_donor_overrides_reach_unclassifiable_donors():
    from dataclasses import replace

    br = nicl6()
    br.numbers[1] = 35  # Br has no default; a type or parameters given for it make it usable
    c = LigandFieldCalculator(donor_types={1: "Cl"})
    assert np.abs(c.get_property("zfs_tensor", br)).max() < 1e-8  # same as [NiCl6]4-
    assert c.info["donors"][0]["type"] == "Cl"
    weaker = replace(DONOR_DEFAULTS["Cl"], e_sigma=2500.0)
    c2 = LigandFieldCalculator(donor_parameters={1: weaker})
    assert abs(c2.get_property("zfs_D", br)) > 0.1
    assert c2.info["donors"][0]["e_sigma"] < 2500.0  # scaled to 2.40 A from r0 = 2.28 A
    with pytest.raises(ValueError, match="unknown donor type 'Xx'"):
        LigandFieldCalculator(donor_types={1: "Xx"}).get_property("zfs_D", br)
