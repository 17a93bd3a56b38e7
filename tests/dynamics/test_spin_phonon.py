"""Spin-phonon couplings of the ZFS tensor (molmag.dynamics.spin_phonon) and `molmag
relaxation`, on [CoCl4]2- with GFN2-xTB vibrations and the ligand-field engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

pytest.importorskip("tblite")

from molmag.chem.sampling import normal_modes  # noqa: E402
from molmag.chem.xtb import XTBCalculator, relax  # noqa: E402
from molmag.cli.main import app  # noqa: E402
from molmag.dynamics.spin_phonon import real_modes, relaxation_times, zfs_couplings  # noqa: E402
from molmag.physics.ligand_field import LigandFieldCalculator  # noqa: E402

runner = CliRunner()


def cocl4(seed=0) -> Atoms:
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    pos = np.vstack([[0, 0, 0], 2.28 * v]) + np.random.default_rng(seed).uniform(-0.05, 0.05,
                                                                                  (5, 3))
    return Atoms("CoCl4", positions=pos, info={"charge": -2, "multiplicity": 4})


@pytest.fixture(scope="module")
def relaxed():
    a = cocl4()
    b = relax(a, fmax=1e-4, steps=500).atoms
    b.info = dict(a.info)
    return b


def couplings_of(atoms, **kw):
    modes = real_modes(normal_modes(atoms, XTBCalculator(), delta=0.005, imaginary="ignore"))
    return modes, zfs_couplings(modes, LigandFieldCalculator(charge=-2, multiplicity=4), **kw)


def test_breathing_mode_does_not_couple_and_steps_agree(relaxed):
    modes, c = couplings_of(relaxed)
    assert modes.n_modes == 9
    # Td: the totally symmetric stretch (the highest, non-degenerate mode) keeps D = 0
    k = int(np.argmax(modes.frequencies_cm1))
    assert c.norms[k] < 0.05 * c.norms.max()
    assert np.all(c.norms[np.arange(9) != k] > 0.5)
    # the derivative does not depend on the finite-difference step (same modes)
    fine = zfs_couplings(modes, LigandFieldCalculator(charge=-2, multiplicity=4),
                         step_fraction=0.1)
    np.testing.assert_allclose(fine.per_zero_point, c.per_zero_point, atol=0.02 * c.norms.max())


def test_coupling_norm_is_invariant_under_rotation(relaxed):
    """The same modes rotated with the molecule: every coupling rotates as R C R^T, so its
    norm (and the sum over modes) is unchanged to the finite differences' rounding."""
    from molmag.chem.sampling import NormalModes

    r = Rotation.random(random_state=5).as_matrix()
    modes, c = couplings_of(relaxed)
    rot_atoms = modes.atoms.copy()
    rot_atoms.positions = modes.atoms.positions @ r.T
    rot = NormalModes(rot_atoms, modes.masses, modes.hessian, modes.force_constants,
                      modes.vectors @ r.T, modes.frequencies_cm1, modes.linear, modes.delta_A)
    cr = zfs_couplings(rot, LigandFieldCalculator(charge=-2, multiplicity=4))
    np.testing.assert_allclose(cr.norms, c.norms, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cr.per_zero_point, r @ c.per_zero_point @ r.T, atol=1e-6)
    assert np.sum(cr.norms) == pytest.approx(np.sum(c.norms), rel=1e-8)
    # modes recomputed in the rotated frame agree to the Hessian's finite-difference error
    rot2 = relaxed.copy()
    rot2.positions = relaxed.positions @ r.T
    _, c2 = couplings_of(rot2)
    assert np.sum(c2.norms ** 2) == pytest.approx(np.sum(c.norms ** 2), rel=1e-3)


def test_relaxation_times_from_couplings(relaxed):
    _, c = couplings_of(relaxed)
    t = np.array([5.0, 20.0, 80.0])
    tau, info = relaxation_times(c, 1.5, t, field_T=0.5, linewidth=20.0)
    assert np.all(np.isfinite(tau)) and np.all(np.diff(tau) < 0)
    assert len(info["levels_cm-1"]) == 4


def test_cli_relaxation(tmp_path, relaxed):
    import ase.io

    f = tmp_path / "cocl4.xyz"
    ase.io.write(str(f), relaxed, format="extxyz")
    r = runner.invoke(app, ["relaxation", str(f), "--no-relax", "--temperatures", "5,20,80",
                            "--field", "0.5", "--linewidth", "20", "--json", "--out",
                            str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["spin"] == 1.5 and res["n_modes"] == 9 and len(res["tau"]) == 3
    assert res["U_eff"] is not None and res["strongest_modes"][0]["coupling_cm-1"] > 0
    csv = np.loadtxt(tmp_path / "out" / "tau.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv[:, 1], [x for _, x in res["tau"]])
    assert len(ase.io.read(str(tmp_path / "out" / "modes.extxyz"), ":")) == 9
    for args, msg in ((["--linewidth", "0"], "--linewidth"), (["--field", "0"], "--field"),
                      (["--multiplicity", "2"], "S = 0.5 has no zero-field splitting"),
                      (["--temperatures", "-3,4"], "positive kelvin")):
        r = runner.invoke(app, ["relaxation", str(f), "--no-relax", *args])
        assert r.exit_code == 1 and msg in r.output, (args, r.output)


def test_vibrations_match_ase_and_are_invariant(tmp_path, relaxed):
    """molmag's projected modes against ASE's Vibrations on the same calculator (<= 1 cm-1),
    and unchanged by a rotation plus translation of the molecule."""
    from ase.vibrations import Vibrations

    from molmag.dynamics.vibrations import vibrations

    modes = vibrations(relaxed, XTBCalculator(), relax=False)
    a = relaxed.copy()
    a.calc = XTBCalculator()
    vib = Vibrations(a, name=str(tmp_path / "ase-vib"), delta=0.005, nfree=2)
    vib.run()
    ase_f = np.sort(np.real(vib.get_frequencies()))[-9:]      # the 9 vibrations of 5 atoms
    np.testing.assert_allclose(modes.frequencies_cm1, ase_f, atol=1.0)
    moved = relaxed.copy()
    moved.positions = relaxed.positions @ Rotation.random(random_state=2).as_matrix().T + 3.7
    # to the finite differences' and the SCF's noise (0.2 cm-1 in a degenerate triplet)
    np.testing.assert_allclose(vibrations(moved, XTBCalculator(), relax=False).frequencies_cm1,
                               modes.frequencies_cm1, atol=0.5)


def test_cli_vibrations(tmp_path, relaxed):
    import ase.io

    f = tmp_path / "cocl4.xyz"
    ase.io.write(str(f), relaxed, format="extxyz")
    r = runner.invoke(app, ["vibrations", str(f), "--no-relax", "--json", "--out",
                            str(tmp_path / "v")])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["n_modes"] == 9 and res["n_imaginary"] == 0
    frames = ase.io.read(str(tmp_path / "v" / "modes.extxyz"), ":")
    assert [fr.info["wavenumber_cm-1"] for fr in frames] == pytest.approx(
        [m["wavenumber_cm-1"] for m in res["modes"]])
    assert frames[0].arrays["mode"].shape == (5, 3)


def test_cli_spin_phonon(tmp_path, relaxed):
    import ase.io

    f = tmp_path / "cocl4.xyz"
    ase.io.write(str(f), relaxed, format="extxyz")
    r = runner.invoke(app, ["spin-phonon", str(f), "--no-relax", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["n_modes"] == 9 and len(res["modes"]) == 9
    m = res["modes"][res["strongest"][0]]
    # the per-zero-point coupling is dD/dQ times the amplitude, and its norm is reported
    np.testing.assert_allclose(np.array(m["dD_per_zero_point"]),
                               np.array(m["dD_dQ"]) * m["zero_point_amplitude"], rtol=1e-12)
    assert m["coupling_cm-1"] == pytest.approx(np.linalg.norm(m["dD_per_zero_point"]))
    r = runner.invoke(app, ["spin-phonon", str(f), "--no-relax"])
    assert r.exit_code == 0 and "strongest" in r.output


def test_second_order_couplings_are_symmetric_rotate_and_match_first_order(relaxed):
    """d2D/dQa dQb: symmetric in (a, b); rotates with the molecule as R X R^T; its diagonal
    agrees with the derivative of the first-order coupling along the same mode."""
    from molmag.chem.sampling import NormalModes
    from molmag.dynamics.spin_phonon import add_second_order

    lf = LigandFieldCalculator(charge=-2, multiplicity=4)
    modes, c = couplings_of(relaxed)
    add_second_order(c, modes, lf, max_wavenumber=1e4)
    x = c.second
    assert x.shape == (9, 9, 3, 3)
    np.testing.assert_allclose(x, x.transpose(1, 0, 2, 3), atol=1e-9)
    # d/dQ of the first-order coupling, by a finite difference of eq. (1) at +-h
    k = int(np.argmax(np.linalg.norm(x[np.arange(9), np.arange(9)], axis=(1, 2))))
    h = 0.25 * c.zero_point[k]
    shifted = []
    for sign in (1, -1):
        a = modes.atoms.copy()
        a.info = dict(modes.atoms.info)
        a.positions = modes.atoms.positions + sign * h * modes.cartesian_vectors[k]
        m = NormalModes(a, modes.masses, modes.hessian, modes.force_constants, modes.vectors,
                        modes.frequencies_cm1, modes.linear, modes.delta_A)
        shifted.append(zfs_couplings(m, lf).d_dq[k])
    np.testing.assert_allclose(x[k, k], (shifted[0] - shifted[1]) / (2 * h),
                               atol=0.05 * np.abs(x[k, k]).max())
    r = Rotation.random(random_state=2).as_matrix()
    rot_atoms = modes.atoms.copy()
    rot_atoms.positions = modes.atoms.positions @ r.T
    rot = NormalModes(rot_atoms, modes.masses, modes.hessian, modes.force_constants,
                      modes.vectors @ r.T, modes.frequencies_cm1, modes.linear, modes.delta_A)
    cr = add_second_order(zfs_couplings(rot, lf), rot, lf, max_wavenumber=1e4)
    np.testing.assert_allclose(cr.second, r @ x @ r.T, atol=1e-5 * np.abs(x).max())


def test_two_phonon_relaxation_adds_to_one_phonon(relaxed):
    from molmag.dynamics.spin_phonon import add_second_order

    modes, c = couplings_of(relaxed)
    add_second_order(c, modes, LigandFieldCalculator(charge=-2, multiplicity=4),
                     max_wavenumber=150.0)
    t = np.array([5.0, 20.0, 80.0])
    one, _ = relaxation_times(c, 1.5, t, field_T=0.5, linewidth=20.0)
    two, _ = relaxation_times(c, 1.5, t, field_T=0.5, linewidth=20.0, order=2)
    assert np.all(two <= one * (1 + 1e-9)) and np.any(two < 0.99 * one)
