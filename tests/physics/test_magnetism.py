"""Magnetic observables (molmag.physics.magnetism, `molmag magnetism`): Curie limits,
saturation, the Ising powder average, Van Vleck against a finite-field derivative, rotation
invariance and Kramers g values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from molmag.cli.main import app
from molmag.physics.magnetism import (
    CURIE_CONSTANT,
    K_B_CM,
    MU_B_CM,
    chi_t_tensor,
    crystal_field_system,
    curie_chi_t,
    kramers_g,
    magnetisation,
    powder_chi_t,
    spin_system,
    temperature_grid,
)

runner = CliRunner()
CE = {"convention": "stevens", "values": {"2,0": -115.37457113, "4,0": 0.56360024}}


def test_curie_constant_and_limits():
    assert CURIE_CONSTANT == pytest.approx(0.1250494, rel=1e-6)
    assert curie_chi_t(2.0, 1.5) == pytest.approx(1.8757, abs=1e-4)
    assert curie_chi_t(4 / 3, 7.5) == pytest.approx(14.172, abs=1e-3)     # Dy3+ 6H15/2
    s = spin_system("3/2", g=2.0)
    np.testing.assert_allclose(powder_chi_t(s, [2, 300]), 1.8757404806, rtol=1e-9)
    # with zero-field splitting the Curie value is reached at high T
    zfs = spin_system("3/2", D=-20.0, E=2.0, g=2.0)
    assert powder_chi_t(zfs, [1e5])[0] == pytest.approx(curie_chi_t(2.0, 1.5), rel=1e-3)
    dy = crystal_field_system("Dy3+")
    g_j = dy.moment[2].real.max() / 7.5
    assert powder_chi_t(dy, [300])[0] == pytest.approx(curie_chi_t(g_j, 7.5), rel=1e-12)
    assert powder_chi_t(dy, [300])[0] == pytest.approx(14.19, abs=0.01)   # g_e = 2.00232


def test_saturation():
    s = spin_system("5/2", g=2.0)
    assert magnetisation(s, [200.0], 0.5)[0] == pytest.approx(5.0, rel=1e-4)
    dy = crystal_field_system("Dy3+")
    g_j = dy.moment[2].real.max() / 7.5
    assert magnetisation(dy, [200.0], 0.5)[0] == pytest.approx(g_j * 7.5, rel=1e-4)
    assert magnetisation(s, [0.0], 2.0)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("t, b", [(2.0, 0.5), (2.0, 2.0), (10.0, 7.0)])
def test_ising_doublet_powder_average(t, b):
    """An effective S = 1/2 with g = (0, 0, g): M(theta) = (g|cos|/2) tanh(x|cos|), x = g mu_B
    B / 2kT; the Lebedev powder average reproduces the analytic integral."""
    g = 19.8
    s = spin_system("1/2", g=[0.0, 0.0, g])
    x = g * MU_B_CM * b / (2 * K_B_CM * t)
    ref = quad(lambda u: g * u / 2 * np.tanh(x * u), 0, 1)[0]
    assert magnetisation(s, [b], t, order=47)[0] == pytest.approx(ref, rel=2e-4)
    # the default grid is converged to a few 1e-4 even for this non-smooth (|cos|) integrand
    assert magnetisation(s, [b], t)[0] == pytest.approx(ref, rel=3e-3)


def test_axial_lanthanide_doublet_is_ising_plus_van_vleck():
    ce = crystal_field_system("Ce3+", CE)
    e, g = kramers_g(ce)
    g_j = ce.moment[2].real.max() / 2.5
    np.testing.assert_allclose(g[0], [0.0, 0.0, 2 * g_j * 2.5], atol=1e-10)
    assert e[1] == pytest.approx(1249.2308, abs=1e-3) and e[2] == pytest.approx(2110.5583, abs=1e-3)
    t, b = 2.0, 1.0
    x = g[0, 2] * MU_B_CM * b / (2 * K_B_CM * t)
    ising = quad(lambda u: g[0, 2] * u / 2 * np.tanh(x * u), 0, 1)[0]
    # the excited doublets add a small temperature-independent (Van Vleck) moment
    m = magnetisation(ce, [b], t)[0]
    assert 0 < m - ising < 2e-3 * ising


def test_van_vleck_equals_the_field_derivative():
    """chi_zz T of eq. (1) against T dM/dB from finite fields (CGS: N_A mu_B dM/dB / 1e4)."""
    s = spin_system("3/2", D=-50.0, E=5.0, g=[2.1, 2.2, 2.4])
    for t in (2.0, 20.0):
        h = 1e-3
        mz = magnetisation(s, [h], t, direction=[0, 0, 1])[0]
        mx = magnetisation(s, [h], t, direction=[1, 0, 0])[0]
        n_a_mu_b = 6.02214076e23 * 9.2740100783e-21 / 1e4
        chi = chi_t_tensor(s, [t])[0]
        assert chi[2, 2] == pytest.approx(n_a_mu_b * mz / h * t, rel=1e-5)
        assert chi[0, 0] == pytest.approx(n_a_mu_b * mx / h * t, rel=1e-5)


def test_rotating_the_molecule_changes_no_powder_number():
    d = np.diag([10.0, 14.0, -24.0])
    r = Rotation.random(random_state=3).as_matrix()
    a = spin_system("3/2", d_tensor=d, g=2.0)
    b = spin_system("3/2", d_tensor=r @ d @ r.T, g=2.0)
    temps = [2.0, 10.0, 100.0]
    np.testing.assert_allclose(powder_chi_t(a, temps), powder_chi_t(b, temps), rtol=1e-12)
    np.testing.assert_allclose(magnetisation(a, [1.0, 5.0], 2.0, order=47),
                               magnetisation(b, [1.0, 5.0], 2.0, order=47), rtol=1e-4)
    np.testing.assert_allclose(kramers_g(a)[1], kramers_g(b)[1], atol=1e-10)


def test_bad_input():
    with pytest.raises(ValueError, match="multiple of 1/2"):
        spin_system("1/3")
    with pytest.raises(ValueError, match="positive kelvin"):
        powder_chi_t(spin_system("1/2"), [0.0])
    with pytest.raises(ValueError, match="no Kramers doublets"):
        kramers_g(spin_system("1", D=5.0))
    with pytest.raises(ValueError, match="start:stop:n"):
        temperature_grid("2:300")


def test_cli_json_files_and_errors(tmp_path):
    r = runner.invoke(app, ["magnetism", "--spin", "3/2", "--D", "-100", "--E", "1", "--g",
                            "2.0,2.0,2.3", "--temperatures", "2,300", "--fields", "0:7:8",
                            "--mh-temperatures", "2", "--json", "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [t for t, _ in out["chi_T"]] == [2.0, 300.0]
    assert len(out["magnetisation"]["2"]) == 8
    g0 = out["kramers_g"][0]["g"]
    assert g0[2] == pytest.approx(3 * 2.3, rel=1e-3) and g0[0] < 0.1   # |+-3/2>: g_z = 6.9
    assert out["kramers_g"][1]["energy_cm-1"] == pytest.approx(200.0, abs=0.1)
    for f in ("chi_T.csv", "magnetisation.csv", "magnetism.png", "magnetism.json"):
        assert (tmp_path / "m" / f).stat().st_size > 0
    csv = np.loadtxt(tmp_path / "m" / "chi_T.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv[:, 1], [c for _, c in out["chi_T"]])
    r = runner.invoke(app, ["magnetism", "--ion", "Ce3+", "-p", "2,0=-115.37457113",
                            "-p", "4,0=0.56360024", "--temperatures", "300", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["kramers_g"][0]["g"][2] == pytest.approx(4.284, abs=1e-3)
    for args, msg in ((["--temperatures", "300"], "either --spin"),
                      (["--spin", "1/2", "--ion", "Dy3+"], "either --spin"),
                      (["--ion", "Dy3+", "--D", "5"], "--D/--E go with --spin"),
                      (["--spin", "3/2", "--temperatures", "-5"], "positive kelvin"),
                      (["--spin", "3/2", "--g", "a,b"], "--g"),
                      (["--spin", "3/2", "--order", "1"], "--order")):
        r = runner.invoke(app, ["magnetism", *args])
        assert r.exit_code == 1 and msg in r.output, (args, r.output)


def test_cli_from_a_structure_uses_the_ligand_field_d_and_g(tmp_path):
    """[CoCl4]2- squeezed along z: the ligand-field engine's D and g give the spin system;
    the high-temperature chi*T is the Curie value of that g (S = 3/2)."""
    import ase.io
    from ase import Atoms

    from molmag.physics.ligand_field import LigandFieldCalculator

    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    a = Atoms("CoCl4", positions=np.vstack([[0, 0, 0], 2.28 * v * [1, 1, 0.9]]),
              info={"charge": -2, "multiplicity": 4})
    f = tmp_path / "cocl4.xyz"
    ase.io.write(str(f), a, format="extxyz")
    r = runner.invoke(app, ["magnetism", "--structure", str(f), "--temperatures", "2,2000",
                            "--fields", "0,1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert "ligand-field engine" in out["source"]
    calc = LigandFieldCalculator(charge=-2, multiplicity=4)
    g = calc.get_property("g_tensor", a)
    d = calc.get_property("zfs_tensor", a)
    ref = powder_chi_t(spin_system("3/2", d_tensor=d, g=g), [2.0, 2000.0])
    np.testing.assert_allclose([c for _, c in out["chi_T"]], ref, rtol=1e-6)  # extxyz digits
    curie = CURIE_CONSTANT * np.trace(g @ g.T) / 3 * 3.75
    assert out["chi_T"][1][1] == pytest.approx(curie, rel=0.02)
    r = runner.invoke(app, ["magnetism", "--structure", str(f), "--spin", "1/2"])
    assert r.exit_code == 1 and "one source" in r.output
    r = runner.invoke(app, ["magnetism", "--structure", str(f), "--tensor", "nope.npz"])
    assert r.exit_code == 1 and "neither lf nor a model file" in r.output
