"""Crystal-field spin-phonon couplings and relaxation of a Dy(III) complex
(molmag.dynamics.cf_spin_phonon; `molmag spin-phonon` / `molmag relaxation` on a lanthanide):
Dy(H2O)5(OH)2+ with GFN2-xTB (f in core) normal modes and the crystal-field engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

pytest.importorskip("tblite")

from molmag.chem.sampling import NormalModes  # noqa: E402
from molmag.chem.xtb import XTBCalculator, relax  # noqa: E402
from molmag.cli.main import app  # noqa: E402
from molmag.dynamics.cf_spin_phonon import (  # noqa: E402
    add_cf_second_order,
    cf_couplings,
    cf_parameter_batch,
    cf_relaxation_times,
)
from molmag.dynamics.spin_phonon import real_modes  # noqa: E402
from molmag.physics.crystal_field import CrystalFieldCalculator, hamiltonian, solve  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def built():
    from molmag.chem.builders import build

    return build("dy-h2o5l2", ligand="[OH-]")


@pytest.fixture(scope="module")
def dy_modes(built) -> NormalModes:
    """A minimum of Dy(H2O)5(OH)2+ and its (53-54) real modes: the builder's D5h-like
    geometry is a saddle point of xTB, which `vibrations` follows down its imaginary modes."""
    from molmag.dynamics.vibrations import vibrations

    modes = vibrations(built, XTBCalculator())
    assert np.all(modes.frequencies_cm1 > -20.0)
    modes = real_modes(modes)
    assert modes.n_modes >= 53                   # at most one soft mode near zero dropped
    return modes


def test_relaxation_is_followed_down_imaginary_modes(built, dy_modes):
    """Relaxed alone, the symmetric start stays on its saddle (seven imaginary modes); the
    minimum found by following them is lower in energy."""
    from molmag.dynamics.vibrations import vibrations

    saddle = vibrations(built, XTBCalculator(), follow_imaginary=0)
    assert np.sum(saddle.frequencies_cm1 < -20.0) >= 3 and "saddle_escapes" not in \
        saddle.atoms.info
    e = [XTBCalculator().get_potential_energy(m.atoms) for m in (saddle, dy_modes)]
    assert e[1] < e[0] - 1e-3


@pytest.fixture(scope="module")
def couplings(dy_modes):
    return cf_couplings(dy_modes, CrystalFieldCalculator())


def test_kd_derivatives_are_the_hellmann_feynman_traces(couplings):
    """dE_i/dQ of every Kramers doublet equals half the trace of dH_CF/dQ over the doublet
    minus the ground doublet's (first-order perturbation theory), to the finite differences'
    error."""
    c = couplings
    assert c.b0.shape == (27,) and c.kd0.shape == (8,)
    assert c.db_dq.shape == (len(c.frequencies_cm1), 27)
    levels = solve("Dy", c.b0)
    v = levels.vectors
    dh = hamiltonian("Dy", c.db_dq)                              # (M, 16, 16)
    diag = np.einsum("in,kij,jn->kn", v.conj(), dh, v).real     # <n|dH|n>
    per_kd = 0.5 * (diag[:, 0::2] + diag[:, 1::2])
    expected = per_kd - per_kd[:, :1]
    np.testing.assert_allclose(c.dkd_dq, expected, atol=2e-3 * np.abs(expected).max())
    assert np.abs(c.dkd_dq[:, 1]).max() > 1.0                   # the modes move the gap


def test_couplings_do_not_depend_on_the_step(dy_modes, couplings):
    fine = cf_couplings(dy_modes, CrystalFieldCalculator(), step_fraction=0.1)
    np.testing.assert_allclose(fine.per_zero_point, couplings.per_zero_point,
                               atol=0.01 * np.abs(couplings.per_zero_point).max())


def test_coupling_sizes_and_tau_are_invariant_under_rotation(dy_modes, couplings):
    """The same modes rotated with the molecule: B_k^q mix within each rank, the operators
    V_alpha are unitarily transformed, so |V_alpha|, their sum and tau(T) (field along the
    rotated easy axis) are unchanged."""
    r = Rotation.random(random_state=7).as_matrix()
    m = dy_modes
    rot_atoms = m.atoms.copy()
    rot_atoms.positions = m.atoms.positions @ r.T
    rot = NormalModes(rot_atoms, m.masses, m.hessian, m.force_constants, m.vectors @ r.T,
                      m.frequencies_cm1, m.linear, m.delta_A)
    cr = cf_couplings(rot, CrystalFieldCalculator())
    assert not np.allclose(cr.b0, couplings.b0, atol=1.0)       # the parameters do change
    np.testing.assert_allclose(cr.norms, couplings.norms, rtol=1e-6)
    assert cr.norms.sum() == pytest.approx(couplings.norms.sum(), rel=1e-8)
    np.testing.assert_allclose(cr.kd0, couplings.kd0, atol=1e-6)
    np.testing.assert_allclose(cr.dkd_dq, couplings.dkd_dq, atol=1e-6)
    t = [10.0, 40.0, 90.0]
    tau, info = cf_relaxation_times(couplings, t, linewidth=20.0)
    tau_r, _ = cf_relaxation_times(cr, t, linewidth=20.0)
    # Orbach (90 K) to rounding.  Below, tau is set by rates ~1e-11 s-1 next to ~1e12 s-1
    # (the nearly forbidden crossings between the +-15/2-like states): their matrix elements
    # are cancellations of much larger terms, so a relative change of 1e-12 in the couplings
    # already moves tau(40 K) by ~5e-4 (measured); equal to that conditioning
    assert tau_r[2] == pytest.approx(tau[2], rel=1e-6)
    np.testing.assert_allclose(tau_r, tau, rtol=1e-2)
    assert np.all(np.isfinite(tau)) and np.all(np.diff(tau) < 0)
    assert info["gap"] == pytest.approx(couplings.kd0[1]) and len(info["levels_cm-1"]) == 16


def test_no_overflow_with_gaps_far_above_kT(couplings):
    """Doublets ~2000 cm-1 up at 2 K (E/kT ~ 1500): the rate matrix is symmetrised without
    overflow and tau is finite and grows as T falls."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        tau, _ = cf_relaxation_times(couplings, [2.0, 5.0, 100.0])
    assert np.all(np.isfinite(tau)) and tau[0] > tau[1] > tau[2]


def test_second_order_couplings_are_symmetric_and_consistent(dy_modes, couplings):
    import copy

    c = add_cf_second_order(copy.deepcopy(couplings), dy_modes, CrystalFieldCalculator(),
                            max_wavenumber=100.0)
    idx = c.second_modes
    assert len(idx) == int(np.sum(dy_modes.frequencies_cm1 <= 100.0)) >= 3
    np.testing.assert_allclose(c.second, c.second.transpose(1, 0, 2), atol=1e-9)
    # d2B/dQ_a dQ_b = d(dB/dQ_a)/dQ_b: first-order couplings at +-h along mode b
    a, b = int(idx[0]), int(idx[1])
    h = 0.25 * c.zero_point[b]
    pos = dy_modes.atoms.positions
    shifted = []
    for sign in (1, -1):
        at = dy_modes.atoms.copy()
        at.positions = pos + sign * h * dy_modes.cartesian_vectors[b]
        m2 = NormalModes(at, dy_modes.masses, dy_modes.hessian, dy_modes.force_constants,
                         dy_modes.vectors, dy_modes.frequencies_cm1, dy_modes.linear,
                         dy_modes.delta_A)
        shifted.append(cf_couplings(m2, CrystalFieldCalculator()).db_dq[a])
    fd = (shifted[0] - shifted[1]) / (2 * h)
    np.testing.assert_allclose(c.second[0, 1], fd, atol=0.05 * np.abs(fd).max())
    tau1, _ = cf_relaxation_times(c, [20.0, 60.0], linewidth=20.0, order=1)
    tau2, _ = cf_relaxation_times(c, [20.0, 60.0], linewidth=20.0, order=2)
    assert np.all(tau2 < tau1)                                   # Raman only adds rates


class _WybourneCF(CrystalFieldCalculator):
    """The crystal-field engine reporting its parameters in Wybourne's convention, as a
    model trained on Wybourne labels would."""

    cf_convention = "wybourne"

    def calculate(self, atoms=None, properties=("kd_energies",), system_changes=None):
        from molmag.physics.ase_properties import cf_parameters_array, cf_parameters_dict
        from molmag.physics.crystal_field import convert_cf_parameters

        super().calculate(atoms, properties, system_changes or [])
        st = cf_parameters_dict(self.results["cf_parameters"], "stevens")
        self.results["cf_parameters"] = cf_parameters_array(
            convert_cf_parameters(st, "wybourne", "Dy"))


def test_parameters_in_another_convention_are_converted(dy_modes):
    base = dy_modes.atoms
    pos = [base.positions, base.positions + 0.01]
    np.testing.assert_allclose(cf_parameter_batch(_WybourneCF(), base, pos, "Dy"),
                               cf_parameter_batch(CrystalFieldCalculator(), base, pos, "Dy"),
                               rtol=1e-10, atol=1e-10)


def test_a_crystal_field_model_gives_couplings_in_one_batch(dy_modes, couplings, tmp_path):
    """A cf-ridge committee trained on engine labels around the minimum: the batched path
    equals one call per structure, and its couplings follow the engine's."""
    from molmag.descriptors.bispectrum import SNAPSettings, snap_available

    if not snap_available():
        pytest.skip("LAMMPS ML-SNAP unavailable")
    from molmag.models.calculator import ModelCalculator
    from molmag.models.committee import Committee
    from molmag.physics.crystal_field import cf_parameter_set, values_from_vector

    base = dy_modes.atoms
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(60):
        a = base.copy()
        a.info = dict(base.info)
        a.positions += rng.uniform(-0.04, 0.04, a.positions.shape)
        frames.append(a)
    b = cf_parameter_batch(CrystalFieldCalculator(), base, [f.positions for f in frames], "Dy")
    labels = [cf_parameter_set(values_from_vector(p), "stevens") for p in b]
    desc = SNAPSettings(species=("Dy", "O", "H"), rcutfac=3.5, twojmax=6).as_dict()
    com = Committee("cf-ridge", desc, n_members=2).fit(
        frames[:50], {"cf_parameters": labels[:50]}, frames[50:], {"cf_parameters": labels[50:]})
    calc = ModelCalculator(com)
    pos = [f.positions for f in frames[50:54]]
    loop = np.array([calc.get_property("cf_parameters", f) for f in frames[50:54]])
    np.testing.assert_allclose(cf_parameter_batch(calc, base, pos, "Dy"), loop, atol=1e-8)
    ml = cf_couplings(dy_modes, calc)
    top = couplings.strongest(10)
    r = np.corrcoef(ml.norms[top], couplings.norms[top])[0, 1]
    assert np.isfinite(ml.norms).all() and r > 0.0


def test_errors_name_the_problem(dy_modes):
    from ase import Atoms

    from molmag.chem.sampling import normal_modes as nm

    co = Atoms("CoCl4", positions=np.vstack([[0, 0, 0], 2.28 * np.eye(3), [[-1.3, -1.3,
                                                                                -1.3]]]))
    m = nm(relax(co, fmax=0.05, steps=50).atoms, XTBCalculator(), imaginary="ignore")
    with pytest.raises(ValueError, match="not a lanthanide|lanthanide"):
        cf_couplings(real_modes(m), CrystalFieldCalculator())
    gd = dy_modes.atoms.copy()
    gd[0].symbol = "Gd"
    mg = NormalModes(gd, dy_modes.masses, dy_modes.hessian, dy_modes.force_constants,
                     dy_modes.vectors, dy_modes.frequencies_cm1, dy_modes.linear,
                     dy_modes.delta_A)
    with pytest.raises(ValueError, match="no crystal-field splitting"):
        cf_couplings(mg, CrystalFieldCalculator())


def test_cli_relaxation_and_spin_phonon_of_a_lanthanide(tmp_path, dy_modes):
    import ase.io

    f = tmp_path / "dy.xyz"
    ase.io.write(str(f), dy_modes.atoms, format="extxyz")
    r = runner.invoke(app, ["relaxation", str(f), "--no-relax", "--temperatures", "10,40,90",
                            "--linewidth", "20", "--json", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["ion"] == "Dy" and "spin" not in res and res["tensor"] == "cf"
    assert res["n_modes"] == dy_modes.n_modes and len(res["kd_energies_cm-1"]) == 8
    assert res["gap"] == pytest.approx(res["kd_energies_cm-1"][1])
    assert res["U_eff"] > 0 and len(res["tau"]) == 3
    csv = np.loadtxt(tmp_path / "out" / "tau.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv[:, 1], [x for _, x in res["tau"]])
    r = runner.invoke(app, ["spin-phonon", str(f), "--no-relax", "--json", "--order", "2",
                            "--raman-max", "80"])
    assert r.exit_code == 0, r.output
    sp = json.loads(r.stdout)
    m = sp["modes"][sp["strongest"][0]]
    np.testing.assert_allclose(np.array(m["dB_per_zero_point"]),
                               np.array(m["dB_dQ"]) * m["zero_point_amplitude"], rtol=1e-12)
    assert len(m["dKD_per_zero_point"]) == 8 and m["dKD_per_zero_point"][0] == 0.0
    so = sp["second_order"]
    assert so["modes"] and np.array(so["d2B_per_zero_point"]).shape == (
        len(so["modes"]), len(so["modes"]), 27)
    r = runner.invoke(app, ["relaxation", str(f), "--no-relax", "--tensor", "lf"])
    assert r.exit_code == 1 and "lanthanide" in r.output and "--tensor cf" in r.output
    r = runner.invoke(app, ["spin-phonon", str(f), "--no-relax"])
    assert r.exit_code == 0 and "dE01/dQ" in r.output
