"""The target registry (molmag.models.targets), committee ensembles, and ASE's conventions in
molmag's calculators: the property registry, ASE's exceptions, array-form cf_parameters.

The committees here hold stub members (the member protocol: ``predict(frames, forces=...)``),
so nothing needs LAMMPS or training."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, outputs
from ase.calculators.calculator import (
    CalculationFailed,
    InputError,
    PropertyNotImplementedError,
)

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


def _cocl4() -> Atoms:
    d = 2.28 / np.sqrt(3)
    return Atoms("CoCl4", positions=[[0, 0, 0], [d, d, d], [-d, -d, d], [-d, d, -d],
                                     [d, -d, -d]])


def _tensor(seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(3, 3))
    t = a + a.T
    return t - np.trace(t) / 3 * np.eye(3)


class _TensorStub:
    kind, target, descriptor_type = "covariant-ridge", "zfs_tensor", "snap"

    def __init__(self, seed: int):
        self.t = 10 * _tensor(seed)

    def predict(self, frames, forces: bool = False):
        if forces:
            raise ValueError("no forces")
        return {"zfs_tensor": np.stack([self.t * (1 + 0.01 * len(a)) for a in frames])}


class _EnergyStub:
    kind, target, descriptor_type = "snap-energy", "energy", "snap"

    def __init__(self, seed: int):
        self.seed = seed

    def predict(self, frames, forces: bool = True):
        out = {"energy": np.array([-len(a) + 0.1 * self.seed for a in frames])}
        if forces:
            out["forces"] = [np.full((len(a), 3), 0.01 * self.seed) for a in frames]
        return out


class _CFStub:
    kind, target, descriptor_type = "cf-ridge", "cf_parameters", "snap"
    cf_keys = list(CF_PARAMETER_KEYS)
    cf_convention = "stevens"

    def __init__(self, seed: int):
        self.v = np.random.default_rng(seed).normal(size=27)

    def predict(self, frames, forces: bool = False):
        return {"cf_parameters": np.stack([self.v for _ in frames])}


def _committee(kind: str, stub, n: int = 4) -> Committee:
    c = Committee(kind, {}, n_members=n)
    c.members = [stub(k) for k in range(n)]
    return c


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
def test_tensor_ensemble_shape_and_mean():
    c = _committee("covariant-ridge", _TensorStub)
    frames = [_cocl4(), _cocl4()[:3]]
    p = c.predict(frames, ensemble=True)
    assert p["zfs_tensor_ensemble"].shape == (2, 4, 3, 3)
    assert p["zfs_D_ensemble"].shape == (2, 4)
    np.testing.assert_allclose(p["zfs_tensor_ensemble"].mean(axis=1), p["zfs_tensor"],
                               atol=1e-12)
    # D of the mean tensor; the spread of D is that of the members' own D values
    np.testing.assert_allclose(p["zfs_D"], [zfs_from_tensor(t).D for t in p["zfs_tensor"]])
    np.testing.assert_allclose(p["zfs_D_std"], p["zfs_D_ensemble"].std(axis=1), atol=1e-12)
    assert "zfs_tensor_ensemble" not in c.predict(frames)       # only on request
    # members of targets without forces are asked for none (no signature inspection)
    assert len(c.predict_members(frames)) == 4


def test_energy_ensemble_forces_and_energy_only():
    c = _committee("snap-energy", _EnergyStub)
    frames = [_cocl4(), _cocl4()[:4]]
    p = c.predict(frames, ensemble=True)
    assert p["energy_ensemble"].shape == (2, 4)
    assert [f.shape for f in p["forces_ensemble"]] == [(4, 5, 3), (4, 4, 3)]
    np.testing.assert_allclose(p["energy_ensemble"].mean(axis=1), p["energy"], atol=1e-12)
    np.testing.assert_allclose(p["forces_ensemble"][0].mean(axis=0), p["forces"][0],
                               atol=1e-12)
    e_only = c.predict(frames, forces=False)
    assert "forces" not in e_only and "forces_std" not in e_only
    np.testing.assert_array_equal(e_only["energy"], p["energy"])


def test_tensor_members_refuse_forces():
    from molmag.models.base import refuse_forces

    with pytest.raises(ValueError, match="covariant-ridge.*not forces"):
        refuse_forces(_TensorStub(0), True)
    refuse_forces(_TensorStub(0), False)


def test_reference_errors_and_metrics_follow_the_spec():
    c = _committee("covariant-ridge", _TensorStub)
    frames = [_cocl4(), _cocl4()]
    p = c.predict(frames)
    ref = {"zfs_tensor": np.stack([_tensor(7), _tensor(8)])}
    refs = reference_values("zfs_tensor", p, ref, frames)
    assert refs["zfs_D"][0] == pytest.approx(zfs_from_tensor(_tensor(7)).D)
    errs = reference_errors("zfs_tensor", p, ref, frames)
    assert list(errs) == ["zfs_tensor", "zfs_D", "zfs_E"]
    np.testing.assert_allclose(errs["zfs_D"][0], p["zfs_D"] - refs["zfs_D"])
    m = metrics("zfs_tensor", p, ref, frames)
    assert set(headline("zfs_tensor", m)) == {"RMSE D_ij", "RMSE D", "RMSE E", "axis angle"}
    assert headline("zfs_tensor", m)["RMSE D"] == m["D"]["rmse"]
    # energies without force references: no force headline, no force errors
    e = _committee("snap-energy", _EnergyStub)
    pe = e.predict(frames)
    te = {"energy": np.array([-5.0, -5.1]), "forces": None}
    assert list(reference_errors("energy", pe, te, frames)) == ["energy"]
    assert list(headline("energy", metrics("energy", pe, te, frames))) == ["RMSE E meV/atom"]


def test_kd_ground_level_is_left_out_of_the_errors():
    p = {"kd_energies": np.array([[0.0, 10.0, 30.0]]),
         "kd_energies_std": np.array([[0.0, 1.0, 2.0]])}
    errs = reference_errors("kd_energies", p, {"kd_energies": [[0.0, 12.0, 27.0]]}, [])
    np.testing.assert_allclose(errs["kd_energies"][0], [-2.0, 3.0])
    np.testing.assert_allclose(errs["kd_energies"][1], [1.0, 2.0])


# -- calculators --------------------------------------------------------------------------------
def test_model_calculator_gives_ensembles_with_ase():
    c = _committee("covariant-ridge", _TensorStub)
    a = _cocl4()
    a.calc = ModelCalculator(c)
    props = a.get_properties(["zfs_D", "zfs_tensor_ensemble", "zfs_D_ensemble"])
    assert np.shape(props["zfs_tensor_ensemble"]) == (4, 3, 3)
    np.testing.assert_allclose(np.mean(props["zfs_tensor_ensemble"], axis=0),
                               a.calc.get_property("zfs_tensor", a), atol=1e-12)
    e = _committee("snap-energy", _EnergyStub)
    b = _cocl4()
    b.calc = ModelCalculator(e)
    assert b.calc.get_property("energy_ensemble", b).shape == (4,)
    assert b.calc.get_property("forces_ensemble", b).shape == (4, 5, 3)
    assert b.get_potential_energy() == b.calc.get_property("free_energy", b)


def test_model_calculator_raises_ase_errors():
    c = _committee("covariant-ridge", _TensorStub)
    bad = _cocl4()
    bad.positions[2] = bad.positions[1]
    calc = ModelCalculator(c)
    with pytest.raises(InputError, match="1.*2"):
        calc.get_property("zfs_D", bad)
    with pytest.raises(ValueError):              # and still a ValueError, as before
        ModelCalculator(c).get_property("zfs_D", bad)
    with pytest.raises(PropertyNotImplementedError):
        calc.get_property("energy", _cocl4())

    class _NaN(_TensorStub):
        def predict(self, frames, forces=False):
            return {"zfs_tensor": np.full((len(frames), 3, 3), np.nan)}

    nan = _committee("covariant-ridge", _NaN)
    with pytest.raises(CalculationFailed, match="non-finite"):
        ModelCalculator(nan).get_property("zfs_D", _cocl4())


def test_routed_calculator_missing_property_is_ase_property_not_implemented():
    routed = RoutedCalculator([ModelCalculator(_committee("covariant-ridge", _TensorStub))])
    a = _cocl4()
    with pytest.raises(PropertyNotImplementedError):
        routed.get_property("energy", a)
    with pytest.raises(PropertyNotImplementedError, match="energy"):
        routed.calculate(a, ["energy"])
    assert routed.get_property("zfs_D", a) == pytest.approx(
        ModelCalculator(_committee("covariant-ridge", _TensorStub)).get_property("zfs_D", a))


def test_routed_calculator_wraps_engine_failures_as_calculation_failed():
    from ase.calculators.calculator import Calculator

    class Broken(Calculator):
        implemented_properties = ["zfs_D"]

        def calculate(self, atoms=None, properties=None, system_changes=None):
            raise np.linalg.LinAlgError("eigenvalues did not converge")

    with pytest.raises(CalculationFailed, match="Broken.*zfs_D"):
        RoutedCalculator([Broken()]).get_property("zfs_D", _cocl4())


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
    # a crystal-field committee's calculator: an array in that order, and the dict helper
    c = _committee("cf-ridge", _CFStub)
    a = _cocl4()
    a.calc = calc = ModelCalculator(c)
    arr = a.get_properties(["cf_parameters"])["cf_parameters"]
    assert arr.shape == (27,)
    assert calc.get_property("cf_parameters_ensemble", a).shape == (4, 27)
    d = calc.cf_parameters_dict(a)
    assert d["convention"] == "stevens"
    np.testing.assert_allclose(cf_parameters_array(d), arr)
    np.testing.assert_allclose(arr, c.predict([a])["cf_parameters"][0])
