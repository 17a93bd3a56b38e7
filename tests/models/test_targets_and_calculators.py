"""The target registry (molmag.models.targets), committee ensembles, and ASE's conventions in
molmag's calculators: the property registry, ASE's exceptions, array-form cf_parameters.

The committees are real, small and trained here (three members each; module-scoped, about
15 s in all): a covariant ridge of the D tensor and a SNAP energy ridge on distorted CoCl4^2-
tetrahedra (D tensors from molmag's ligand-field engine, energies and forces from ASE's Morse
pair potential; the helpers of tests/test_models_gmnn.py), and a crystal-field ridge on
Dy(H2O)5(OMe)2 structures labelled by the crystal-field engine (as
tests/test_models_energy_cf.py builds them)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, outputs
from ase.calculators.calculator import (
    CalculationFailed,
    InputError,
    PropertyNotImplementedError,
)
from test_models_gmnn import cocl4, lf_tensors, morse

from molmag.descriptors.bispectrum import SNAPSettings, snap_available
from molmag.explore.calculators import RoutedCalculator
from molmag.models.base import TARGETS as BASE_TARGETS
from molmag.models.calculator import PROPERTIES, ModelCalculator
from molmag.models.committee import CALIBRATED, Committee, reference_errors
from molmag.models.targets import TARGETS, TargetSpec, reference_values, target_spec
from molmag.physics.ase_properties import (
    CF_PARAMETER_KEYS,
    cf_parameter_order,
    cf_parameters_array,
    cf_parameters_dict,
)
from molmag.physics.zfs import zfs_from_tensor
from molmag.training.data import REQUIRED
from molmag.training.metrics import headline, metrics

needs_snap = pytest.mark.skipif(not snap_available(), reason="LAMMPS ML-SNAP unavailable")

N_MEMBERS = 3
#: CoCl4 rows: training, validation (ridge lambda, calibration), held out
TRAIN, VAL, TEST = slice(0, 20), slice(20, 26), slice(26, 32)
CO_CL = SNAPSettings(species=("Co", "Cl"), rcutfac=4.0, twojmax=6).as_dict()
DY = SNAPSettings(species=("Dy", "O", "C", "H"), rcutfac=3.5, twojmax=6,
                  weights={"H": 0.3, "C": 0.6, "O": 0.8}).as_dict()


def _rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def cocl4_data() -> tuple[list[Atoms], np.ndarray, np.ndarray, list[np.ndarray]]:
    """32 CoCl4^2- tetrahedra (every coordinate displaced by +-0.15 A): frames, ligand-field
    D tensors (cm-1), Morse energies (eV) and forces (eV/A)."""
    frames = cocl4(32, seed=11)
    energies, forces = morse(frames)
    return frames, lf_tensors(frames), energies, forces


@pytest.fixture(scope="module")
def tensor_committee(cocl4_data) -> Committee:
    frames, t, _, _ = cocl4_data
    c = Committee("covariant-ridge", CO_CL, n_members=N_MEMBERS, degree=1)
    return c.fit(frames[TRAIN], {"zfs_tensor": t[TRAIN]}, frames[VAL], {"zfs_tensor": t[VAL]})


@pytest.fixture(scope="module")
def tensor_model_file(tensor_committee, tmp_path_factory):
    """The tensor committee's model file (tests that change a committee load their own)."""
    return tensor_committee.save(tmp_path_factory.mktemp("tensor") / "model.npz")


@pytest.fixture(scope="module")
def energy_committee(cocl4_data) -> Committee:
    frames, _, e, f = cocl4_data
    c = Committee("snap-energy", CO_CL, n_members=N_MEMBERS)
    return c.fit(frames[TRAIN], {"energy": e[TRAIN], "forces": f[TRAIN]},
                 frames[VAL], {"energy": e[VAL], "forces": f[VAL]})


@pytest.fixture(scope="module")
def dy_data() -> tuple[list[Atoms], np.ndarray, list[dict]]:
    """26 Dy(H2O)5(OMe)2 structures (unrelaxed template, every coordinate displaced by
    +-0.05 A) with their crystal-field parameters (Stevens, cm-1) from the crystal-field
    engine, as arrays and as labels."""
    from molmag.chem.builders import build
    from molmag.physics.crystal_field import (
        cf_parameter_set,
        crystal_field_batch,
        values_from_vector,
    )

    base = build("dy-h2o5l2", ligand="[O-]C", relax=False)
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(26):
        a = base.copy()
        a.positions += rng.uniform(-0.05, 0.05, a.positions.shape)
        frames.append(a)
    levels = crystal_field_batch([base] + frames, metal_index=0,
                                 donors=base.info["donor_indices"])
    params = np.asarray(levels.parameters)[1:]
    labels = [cf_parameter_set(values_from_vector(p), "stevens") for p in params]
    return frames, params, labels


@pytest.fixture(scope="module")
def cf_committee(dy_data) -> Committee:
    frames, _, labels = dy_data
    c = Committee("cf-ridge", DY, n_members=N_MEMBERS)
    return c.fit(frames[:20], {"cf_parameters": labels[:20]},
                 frames[20:23], {"cf_parameters": labels[20:23]})


def _held_out(cocl4_data, k: int = 0) -> Atoms:
    """A copy of held-out CoCl4 structure ``k``."""
    return cocl4_data[0][TEST][k].copy()


# -- the registry -------------------------------------------------------------------------------
def test_every_target_has_one_spec_that_every_stage_reads():
    assert set(TARGETS) == {"zfs_tensor", "energy", "kd_energies", "cf_parameters"}
    assert BASE_TARGETS == tuple(TARGETS)
    for name, spec in TARGETS.items():
        assert isinstance(spec, TargetSpec) and spec.name == name
        assert spec.quantities[0] == name and spec.results[0] == name
        assert CALIBRATED[name] == spec.calibrated
        assert REQUIRED[name] == spec.labels
        assert PROPERTIES[name] == list(spec.results)
        assert set(spec.calibrated) <= set(spec.quantities)
        for q in spec.quantities:
            assert f"{q}_std" in spec.results and f"{q}_ensemble" in spec.results
        # every calculator result is registered with ASE
        assert set(spec.results) <= set(outputs.all_outputs), name
    assert target_spec("zfs_tensor").derived == ("zfs_D", "zfs_E")
    assert target_spec("energy").forces and not target_spec("zfs_tensor").forces
    with pytest.raises(AttributeError):
        target_spec("energy").unit = "Ha"  # type: ignore[misc]


def test_unknown_target_is_a_one_line_error_listing_the_known_ones():
    with pytest.raises(ValueError) as exc:
        target_spec("spin_phonon")
    msg = str(exc.value)
    assert "\n" not in msg and "'spin_phonon'" in msg
    for name in TARGETS:
        assert name in msg


# -- committees: ensembles and the member protocol ----------------------------------------------
@needs_snap
def test_the_committees_learn_their_labels(tensor_committee, energy_committee, cf_committee,
                                           cocl4_data, dy_data):
    """The committees below are real models: each beats the spread of its labels."""
    frames, t, e, f = cocl4_data
    assert _rmse(tensor_committee.predict(frames[TEST])["zfs_tensor"], t[TEST]) < 0.5 * _rmse(
        t[TEST], 0.0)
    pe = energy_committee.predict(frames[TEST])
    assert _rmse(pe["energy"], e[TEST]) < 0.5 * np.std(e[TEST])
    assert _rmse(np.concatenate(pe["forces"]), np.concatenate(f[TEST])) < 0.5 * _rmse(
        np.concatenate(f[TEST]), 0.0)
    dy, params, _ = dy_data
    pc = cf_committee.predict(dy[23:])
    assert _rmse(pc["cf_parameters"], params[23:]) < 0.5 * _rmse(params[23:],
                                                                 params[:20].mean(axis=0))


@needs_snap
def test_tensor_ensemble_shape_and_mean(tensor_committee, cocl4_data):
    c = tensor_committee
    frames = [_held_out(cocl4_data, 0), _held_out(cocl4_data, 1)]
    p = c.predict(frames, ensemble=True)
    assert p["zfs_tensor_ensemble"].shape == (2, N_MEMBERS, 3, 3)
    assert p["zfs_D_ensemble"].shape == (2, N_MEMBERS)
    np.testing.assert_allclose(p["zfs_tensor_ensemble"].mean(axis=1), p["zfs_tensor"],
                               atol=1e-12)
    # D of the mean tensor; the spread of D is that of the members' own D values
    np.testing.assert_allclose(p["zfs_D"], [zfs_from_tensor(t).D for t in p["zfs_tensor"]])
    np.testing.assert_allclose(p["zfs_D_std"], p["zfs_D_ensemble"].std(axis=1), atol=1e-12)
    assert np.all(p["zfs_D_std"] > 0)             # bootstrap members: a real spread
    assert "zfs_tensor_ensemble" not in c.predict(frames)       # only on request
    # members of targets without forces are asked for none (no signature inspection; a
    # covariant ridge asked for forces refuses)
    assert len(c.predict_members(frames)) == N_MEMBERS


@needs_snap
def test_energy_ensemble_forces_and_energy_only(energy_committee, cocl4_data):
    c = energy_committee
    frames = [_held_out(cocl4_data), _held_out(cocl4_data)[:4]]
    p = c.predict(frames, ensemble=True)
    assert p["energy_ensemble"].shape == (2, N_MEMBERS)
    assert [f.shape for f in p["forces_ensemble"]] == [(N_MEMBERS, 5, 3), (N_MEMBERS, 4, 3)]
    np.testing.assert_allclose(p["energy_ensemble"].mean(axis=1), p["energy"], atol=1e-12)
    np.testing.assert_allclose(p["forces_ensemble"][0].mean(axis=0), p["forces"][0],
                               atol=1e-12)
    e_only = c.predict(frames, forces=False)
    assert "forces" not in e_only and "forces_std" not in e_only
    # the same energies (forces=False takes the descriptor route without the derivatives)
    np.testing.assert_allclose(e_only["energy"], p["energy"], rtol=1e-12, atol=0)


@needs_snap
def test_tensor_members_refuse_forces(tensor_committee, cocl4_data):
    from molmag.models.base import refuse_forces

    member = tensor_committee.members[0]
    with pytest.raises(ValueError, match="covariant-ridge.*not forces"):
        refuse_forces(member, True)
    refuse_forces(member, False)
    with pytest.raises(ValueError, match="covariant-ridge.*not forces"):
        member.predict([_held_out(cocl4_data)], forces=True)


@needs_snap
def test_reference_errors_and_metrics_follow_the_spec(tensor_committee, energy_committee,
                                                      cocl4_data):
    frames, t, e, _ = cocl4_data
    frames, t, e = frames[TEST][:2], t[TEST][:2], e[TEST][:2]
    p = tensor_committee.predict(frames)
    ref = {"zfs_tensor": t}
    refs = reference_values("zfs_tensor", p, ref, frames)
    assert refs["zfs_D"][0] == pytest.approx(zfs_from_tensor(t[0]).D)
    errs = reference_errors("zfs_tensor", p, ref, frames)
    assert list(errs) == ["zfs_tensor", "zfs_D", "zfs_E"]
    np.testing.assert_allclose(errs["zfs_D"][0], p["zfs_D"] - refs["zfs_D"])
    m = metrics("zfs_tensor", p, ref, frames)
    assert set(headline("zfs_tensor", m)) == {"RMSE D_ij", "RMSE D", "RMSE E", "axis angle"}
    assert headline("zfs_tensor", m)["RMSE D"] == m["D"]["rmse"]
    # energies without force references: no force headline, no force errors
    pe = energy_committee.predict(frames)
    te = {"energy": e, "forces": None}
    assert list(reference_errors("energy", pe, te, frames)) == ["energy"]
    assert list(headline("energy", metrics("energy", pe, te, frames))) == ["RMSE E meV/atom"]


def test_kd_ground_level_is_left_out_of_the_errors():
    p = {"kd_energies": np.array([[0.0, 10.0, 30.0]]),
         "kd_energies_std": np.array([[0.0, 1.0, 2.0]])}
    errs = reference_errors("kd_energies", p, {"kd_energies": [[0.0, 12.0, 27.0]]}, [])
    np.testing.assert_allclose(errs["kd_energies"][0], [-2.0, 3.0])
    np.testing.assert_allclose(errs["kd_energies"][1], [1.0, 2.0])


@needs_snap
def test_calibration_maps_the_std_and_leaves_the_ensemble_raw(tensor_model_file, cocl4_data):
    frames, t, _, _ = cocl4_data
    c = Committee.load(tensor_model_file)          # its own copy: calibrating changes it
    raw = c.predict(frames[TEST], ensemble=True)   # not calibrated yet: the raw spread
    cals = c.calibrate(frames[VAL], {"zfs_tensor": t[VAL]}, method="scale")
    assert tuple(cals) == CALIBRATED["zfs_tensor"] == target_spec("zfs_tensor").calibrated
    assert all(cal.fitted and cal.scale > 0 for cal in cals.values())
    p = c.predict(frames[TEST], ensemble=True)
    for q in CALIBRATED["zfs_tensor"]:
        np.testing.assert_array_equal(p[q], raw[q])
        np.testing.assert_array_equal(p[f"{q}_ensemble"], raw[f"{q}_ensemble"])
        np.testing.assert_allclose(p[f"{q}_std"], cals[q].apply(raw[f"{q}_std"]))
    a = frames[TEST][0].copy()
    a.calc = ModelCalculator(c)
    assert a.calc.get_property("zfs_D_std", a) == pytest.approx(p["zfs_D_std"][0])


# -- calculators --------------------------------------------------------------------------------
@needs_snap
def test_model_calculator_gives_ensembles_with_ase(tensor_committee, energy_committee,
                                                   cocl4_data):
    a = _held_out(cocl4_data)
    a.calc = ModelCalculator(tensor_committee)
    props = a.get_properties(["zfs_D", "zfs_tensor_ensemble", "zfs_D_ensemble"])
    assert np.shape(props["zfs_tensor_ensemble"]) == (N_MEMBERS, 3, 3)
    np.testing.assert_allclose(np.mean(props["zfs_tensor_ensemble"], axis=0),
                               a.calc.get_property("zfs_tensor", a), atol=1e-12)
    b = _held_out(cocl4_data)
    b.calc = ModelCalculator(energy_committee)
    assert b.calc.get_property("energy_ensemble", b).shape == (N_MEMBERS,)
    assert b.calc.get_property("forces_ensemble", b).shape == (N_MEMBERS, 5, 3)
    assert b.get_potential_energy() == b.calc.get_property("free_energy", b)


@needs_snap
def test_model_calculator_raises_ase_errors(tensor_committee, tensor_model_file, cocl4_data):
    bad = _held_out(cocl4_data)
    bad.positions[2] = bad.positions[1]
    calc = ModelCalculator(tensor_committee)
    with pytest.raises(InputError, match="1.*2"):
        calc.get_property("zfs_D", bad)
    with pytest.raises(ValueError):              # and still a ValueError, as before
        ModelCalculator(tensor_committee).get_property("zfs_D", bad)
    with pytest.raises(PropertyNotImplementedError):
        calc.get_property("energy", _held_out(cocl4_data))

    # a model whose coefficients are not finite (a diverged or damaged fit): its own copy
    nan = Committee.load(tensor_model_file)
    for member in nan.members:
        for fit in member.fits:
            if fit is not None:
                fit.coef = np.full_like(fit.coef, np.nan)
    with pytest.raises(CalculationFailed, match="non-finite"):
        ModelCalculator(nan).get_property("zfs_D", _held_out(cocl4_data))


@needs_snap
def test_routed_calculator_missing_property_is_ase_property_not_implemented(tensor_committee,
                                                                            cocl4_data):
    routed = RoutedCalculator([ModelCalculator(tensor_committee)])
    a = _held_out(cocl4_data)
    with pytest.raises(PropertyNotImplementedError):
        routed.get_property("energy", a)
    with pytest.raises(PropertyNotImplementedError, match="energy"):
        routed.calculate(a, ["energy"])
    assert routed.get_property("zfs_D", a) == pytest.approx(
        ModelCalculator(tensor_committee).get_property("zfs_D", a))


def test_routed_calculator_wraps_engine_failures_as_calculation_failed():
    from ase.calculators.calculator import Calculator

    class Broken(Calculator):
        implemented_properties = ["zfs_D"]

        def calculate(self, atoms=None, properties=None, system_changes=None):
            raise np.linalg.LinAlgError("eigenvalues did not converge")

    with pytest.raises(CalculationFailed, match="Broken.*zfs_D"):
        RoutedCalculator([Broken()]).get_property("zfs_D", cocl4(1, seed=0)[0])


def test_cf_parameters_array_form_round_trips_to_the_dict():
    assert len(cf_parameter_order()) == 27 and cf_parameter_order()[0] == (2, -2)
    assert CF_PARAMETER_KEYS[-1] == "6,6"
    v = np.arange(27.0) - 13
    label = cf_parameters_dict(v, "wybourne")
    assert label["convention"] == "wybourne" and label["values"]["2,-2"] == -13.0
    np.testing.assert_array_equal(cf_parameters_array(label), v)
    np.testing.assert_array_equal(cf_parameters_array({"convention": "stevens",
                                                       "values": {"4,0": 2.0}})[
        CF_PARAMETER_KEYS.index("4,0")], 2.0)
    with pytest.raises(ValueError, match="27"):
        cf_parameters_dict(np.zeros(5))
    with pytest.raises(ValueError, match="8,0"):
        cf_parameters_array({"convention": "stevens", "values": {"8,0": 1.0}})


@needs_snap
def test_cf_committee_calculator_gives_the_array_in_that_order(cf_committee, dy_data):
    # a crystal-field committee's calculator: an array in that order, and the dict helper
    c = cf_committee
    a = dy_data[0][23].copy()
    a.calc = calc = ModelCalculator(c)
    arr = a.get_properties(["cf_parameters"])["cf_parameters"]
    assert arr.shape == (27,)
    assert calc.get_property("cf_parameters_ensemble", a).shape == (N_MEMBERS, 27)
    d = calc.cf_parameters_dict(a)
    assert d["convention"] == "stevens" == calc.cf_convention
    np.testing.assert_allclose(cf_parameters_array(d), arr)
    p = c.predict([a])
    assert p["cf_keys"] == list(CF_PARAMETER_KEYS)
    np.testing.assert_allclose(arr, p["cf_parameters"][0])
