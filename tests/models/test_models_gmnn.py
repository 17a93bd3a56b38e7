"""Gaussian-moment neural networks (Zaverkin et al. 2022): exact symmetries of the D-tensor
and energy models, the layers of eq. 8, the losses of eqs. 10-11 and 13, learning on a small
problem, forces as -dE/dx, state round trips, checkpoint resume and refusals.

Data need no shared files: distorted CoCl4^2- tetrahedra labelled by molmag's ligand-field
engine (D tensors) and by ASE's Morse pair potential (energies and forces)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.morse import MorsePotential
from scipy.spatial.transform import Rotation

import molmag.models.gmnn as gmnn_module
from molmag.descriptors.gaussian_moments import GaussianMoments, neighbour_pairs
from molmag.models.gmnn import (
    GMNNEnergy,
    GMNNTensor,
    dense_gaussian_moments,
    rhombic_directions,
    traceless_dyads,
)
from molmag.models.gmnn_layers import SILU_SCALE, AtomicMLP, NTKLinear, ScaledSiLU
from molmag.physics.ligand_field import LigandFieldCalculator
from molmag.physics.zfs import zfs_DE

SETTINGS = {"species": ["Co", "Cl"], "n_basis": 5}
SMALL = {"hidden": (32, 32)}
_TET = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)


def cocl4(n: int, seed: int, delta: float = 0.15) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    base = np.vstack([[0, 0, 0], 2.28 * _TET])
    return [Atoms("CoCl4", positions=base + rng.uniform(-delta, delta, base.shape),
                  info={"charge": -2, "multiplicity": 4}) for _ in range(n)]


def lf_tensors(frames) -> np.ndarray:
    return np.array([LigandFieldCalculator().get_property("zfs_tensor", a) for a in frames])


def morse(frames) -> tuple[np.ndarray, list[np.ndarray]]:
    e, f = [], []
    for a in frames:
        b = a.copy()
        b.calc = MorsePotential(epsilon=1.0, r0=2.3, rho0=5.0)
        e.append(b.get_potential_energy())
        f.append(b.get_forces())
    return np.array(e), f


@pytest.fixture(scope="module")
def tensor_data():
    frames = cocl4(90, seed=1)
    t = lf_tensors(frames)
    return frames[:60], t[:60], frames[60:75], t[60:75], frames[75:], t[75:]


@pytest.fixture(scope="module")
def tensor_model(tensor_data):
    train, t_train, val, t_val, *_ = tensor_data
    m = GMNNTensor(SETTINGS, seed=0, max_epochs=40, hidden=(64, 64))
    lines = []
    m.fit(train, {"zfs_tensor": t_train}, val, {"zfs_tensor": t_val}, log=lines.append)
    m.log_lines = lines
    return m


@pytest.fixture(scope="module")
def tensor_model64(tensor_data):
    train, t_train, *_ = tensor_data
    m = GMNNTensor({**SETTINGS, "dtype": "float64"}, seed=3, max_epochs=2, **SMALL)
    return m.fit(train[:20], {"zfs_tensor": t_train[:20]})


@pytest.fixture(scope="module")
def energy_data():
    frames = cocl4(80, seed=5, delta=0.2)
    e, f = morse(frames)
    return frames[:50], e[:50], f[:50], frames[50:65], e[50:65], f[50:65], frames[65:], \
        e[65:], f[65:]


@pytest.fixture(scope="module")
def energy_model(energy_data):
    tr, e, f, va, ev, fv, *_ = energy_data
    m = GMNNEnergy(SETTINGS, seed=0, max_epochs=40, hidden=(64, 64))
    return m.fit(tr, {"energy": e, "forces": f}, va, {"energy": ev, "forces": fv})


@pytest.fixture(scope="module")
def energy_model64(energy_data):
    tr, e, f, *_ = energy_data
    m = GMNNEnergy({**SETTINGS, "dtype": "float64"}, seed=2, max_epochs=2, **SMALL)
    return m.fit(tr[:20], {"energy": e[:20], "forces": f[:20]})


def moved(a: Atoms, rot: np.ndarray | None = None, shift=(0.0, 0.0, 0.0), perm=None) -> Atoms:
    b = a.copy() if perm is None else a[perm]
    if rot is not None:
        b.positions = b.positions @ rot.T
    b.positions = b.positions + np.asarray(shift)
    return b


# --- layers -------------------------------------------------------------------------------
def test_scaled_silu_preserves_the_second_moment():
    x, w = np.polynomial.hermite_e.hermegauss(200)  # E over N(0, 1)
    phi = ScaledSiLU()(torch.as_tensor(x)).numpy()
    assert abs(np.sum(w * phi**2) / np.sqrt(2 * np.pi) - 1.0) < 1e-9
    assert abs(SILU_SCALE - 1.6765) < 1e-4  # the paper's alpha
    np.testing.assert_allclose(phi, SILU_SCALE * x / (1 + np.exp(-x)), rtol=1e-12)


def test_ntk_layer_and_mlp_follow_eq_8():
    gen = torch.Generator().manual_seed(0)
    layer = NTKLinear(400, 300, generator=gen, dtype=torch.float64)
    w = layer.weight.detach()
    assert abs(float(w.std()) - 1.0) < 0.01 and abs(float(w.mean())) < 0.01
    assert torch.all(layer.bias == 0)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(7, 400, dtype=torch.float64)
    expected = 0.1 * layer.bias + x @ w.T / np.sqrt(400)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    mlp = AtomicMLP(10, (8, 6), generator=gen, dtype=torch.float64)
    l1, l2, l3 = mlp.layers[0], mlp.layers[2], mlp.layers[4]
    g = torch.randn(5, 10, dtype=torch.float64)

    def phi(v):
        return SILU_SCALE * v * torch.sigmoid(v)

    h1 = phi(0.1 * l1.bias + g @ l1.weight.T / np.sqrt(10))
    h2 = phi(0.1 * l2.bias + h1 @ l2.weight.T / np.sqrt(8))
    y = 0.1 * l3.bias + h2 @ l3.weight.T / np.sqrt(6)
    torch.testing.assert_close(mlp(g), y[:, 0], rtol=1e-12, atol=1e-12)
    # NTK scaling keeps the pre-activations O(1) for O(1) inputs
    big = AtomicMLP(360, (512, 512), generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out = big(torch.randn(2000, 360, dtype=torch.float64))
    assert 0.3 < float(out.std()) < 3.0


def test_traceless_dyads():
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 2.0, 0], [5.0, 5, 5], [6.0, 5, 5]],
                       dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1])
    a = traceless_dyads(pos, batch, 2, "metal", torch.tensor([0, 3]))
    torch.testing.assert_close(a[0], torch.zeros(3, 3, dtype=torch.float64))
    torch.testing.assert_close(a[1], torch.diag(torch.tensor([2.0, -1, -1], dtype=a.dtype)))
    torch.testing.assert_close(a[2], torch.diag(torch.tensor([-1.0, 2, -1], dtype=a.dtype)))
    torch.testing.assert_close(a[4], a[1])
    c = traceless_dyads(pos, batch, 2, "centroid")
    u = np.array([-0.5, 0.0, 0.0])
    u /= np.linalg.norm(u)
    torch.testing.assert_close(c[3].numpy(), 3 * np.outer(u, u) - np.eye(3))
    torch.testing.assert_close(torch.einsum("nii->n", c), torch.zeros(5, dtype=c.dtype))


def test_dense_route_equals_the_descriptor_module():
    gm = GaussianMoments(["H", "C", "Co"], r_cut=3.0, dtype="float64", seed=2)
    rng = np.random.default_rng(4)
    pos = torch.as_tensor(rng.uniform(0, 4.0, (3, 9, 3)), dtype=torch.float64)
    spc = torch.as_tensor(rng.integers(0, 3, 9))
    dense = dense_gaussian_moments(gm, pos.requires_grad_(True), spc)
    ref = []
    for k in range(3):
        p = pos[k].detach().clone().requires_grad_(True)
        pairs = neighbour_pairs(p, gm.r_cut)
        assert 0 < pairs.i.shape[0] < 9 * 8  # some pairs lie beyond the cutoff
        g = gm(p, spc, pairs)
        ref.append(g)
        (grad,) = torch.autograd.grad((g**2).sum(), p)
        (grad_dense,) = torch.autograd.grad((dense[9 * k:9 * k + 9] ** 2).sum(), pos,
                                            retain_graph=True)
        torch.testing.assert_close(grad_dense[k], grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dense, torch.cat(ref), rtol=1e-12, atol=1e-12)


def test_dense_and_sparse_routes_and_mixed_batches_agree(energy_model64, energy_data,
                                                         monkeypatch):
    *_, te, _, _ = energy_data
    mixed = [te[0], te[1][[0, 2, 1, 3, 4]], te[2][:4], te[3]]  # 3 compositions/orders
    dense = energy_model64.predict(mixed)
    alone = [energy_model64.predict([a]) for a in mixed]
    monkeypatch.setattr(gmnn_module, "DENSE_MAX_ATOMS", 0)
    sparse = energy_model64.predict(mixed)
    for k in range(len(mixed)):
        for other in (sparse, {"energy": alone[k]["energy"], "forces": alone[k]["forces"]}):
            kk = k if other is sparse else 0
            assert abs(dense["energy"][k] - other["energy"][kk]) < 1e-10
            np.testing.assert_allclose(dense["forces"][k], other["forces"][kk], atol=1e-10)


# --- D-tensor model -------------------------------------------------------------------------
def test_tensor_model_learns_the_ligand_field_tensor(tensor_model, tensor_data):
    *_, test, t_test = tensor_data
    p = tensor_model.predict(test)["zfs_tensor"]
    rmse = np.sqrt(np.mean((p - t_test) ** 2))
    spread = t_test.std(axis=0).mean()
    assert rmse < 0.35 * spread, (rmse, spread)
    hist = tensor_model.history
    assert hist[tensor_model.best_epoch - 1]["val_mae_zfs_tensor"] < \
        0.5 * hist[0]["val_mae_zfs_tensor"]
    assert len(tensor_model.log_lines) == 40 and "val MAE" in tensor_model.log_lines[0]
    assert tensor_model.best_epoch == 1 + int(np.argmin([h["val_metric"] for h in hist]))


@pytest.mark.parametrize("which", ["float32", "float64", "metal"])
def test_tensor_symmetries(which, tensor_model, tensor_model64, tensor_data):
    train, t_train, *_, test, _ = tensor_data
    if which == "metal":
        model = GMNNTensor(SETTINGS, seed=1, max_epochs=1, origin="metal", **SMALL)
        model.fit(train[:10], {"zfs_tensor": t_train[:10]})
    else:
        model = tensor_model if which == "float32" else tensor_model64
    tol = 1e-10 if which == "float64" else 1e-5
    rot = Rotation.random(random_state=11).as_matrix()
    perm = [0, 3, 1, 4, 2]  # swap the Cl atoms
    out = []
    for a in test[:4]:
        out += [a, moved(a, rot), moved(a, shift=[3.0, -2.0, 7.5]), moved(a, perm=perm)]
    d = model.predict(out)["zfs_tensor"].reshape(4, 4, 3, 3)
    for ref, rotd, trans, permd in d:
        scale = max(1.0, np.abs(ref).max())
        assert np.abs(rotd - rot @ ref @ rot.T).max() < tol * scale
        assert np.abs(trans - ref).max() < tol * scale
        assert np.abs(permd - ref).max() < tol * scale
        assert np.abs(ref - ref.T).max() == 0.0
        assert abs(np.trace(ref)) < tol * scale
        assert np.abs(ref).max() > 1e-3  # not trivially zero


def test_tensor_loss_is_eqs_10_11(tensor_model, tensor_data):
    train, *_ = tensor_data
    m = tensor_model
    ref = np.random.default_rng(0).normal(size=(4, 3, 3)) * 5  # not traceless, not symmetric
    y = m._targets(train[:4], {"zfs_tensor": ref})
    data = m._prepare_data(train[:4])
    with torch.no_grad():
        loss = float(m._loss(data, y, np.arange(4)))
    d = m.predict(train[:4])["zfs_tensor"]
    s = 0.5 * (ref + ref.transpose(0, 2, 1))
    vec_ref = np.stack([s[:, 0, 0], s[:, 1, 0], s[:, 2, 0], s[:, 1, 1], s[:, 2, 1], s[:, 2, 2]], 1)
    vec = np.stack([d[:, 0, 0], d[:, 1, 0], d[:, 2, 0], d[:, 1, 1], d[:, 2, 1],
                    -(d[:, 0, 0] + d[:, 1, 1])], 1)
    np.testing.assert_allclose(loss, np.mean(np.sum((vec_ref - vec) ** 2, 1)), rtol=1e-4)


def test_rhombic_directions_are_the_first_order_change_of_E():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(40, 3, 3)) * 20
    t = a + a.transpose(0, 2, 1)
    c = rhombic_directions(t)
    r = rng.normal(size=(40, 3, 3)) * 1e-5
    r = r + r.transpose(0, 2, 1)
    lin = (np.stack([r[:, 0, 0], r[:, 1, 0], r[:, 2, 0], r[:, 1, 1], r[:, 2, 1], r[:, 2, 2]], 1)
           * c).sum(1)
    _, e0 = zfs_DE(t)
    _, e1 = zfs_DE(t + r)
    np.testing.assert_allclose(e1 - e0, lin, atol=1e-9)
    assert np.abs(lin).max() > 1e-6
    # D = diag(X, Y, Z): E = (X - Y)/2 depends on D11 - D22 only (c = (1/2, 0, 0, -1/2, 0, 0))
    d = np.diag([-1.0, -3.0, 4.0])
    np.testing.assert_allclose(rhombic_directions(d[None])[0], [0.5, 0, 0, -0.5, 0, 0],
                               atol=1e-12)


def test_tensor_loss_e_weight_adds_the_rhombic_error(tensor_model, tensor_data):
    train, *_ = tensor_data
    ref = lf_tensors(train[:6]) + np.random.default_rng(1).normal(size=(6, 3, 3)) * 0.5
    ref = 0.5 * (ref + ref.transpose(0, 2, 1))
    ref -= np.trace(ref, axis1=1, axis2=2)[:, None, None] * np.eye(3) / 3
    m = GMNNTensor(SETTINGS, seed=0, max_epochs=40, hidden=(64, 64), e_weight=7.0)
    m.net.load_state_dict(tensor_model.net.state_dict())
    data = m._prepare_data(train[:6])
    with torch.no_grad():
        plain = float(tensor_model._loss(data, tensor_model._targets(train[:6], {
            "zfs_tensor": ref}), np.arange(6)))
        weighted = float(m._loss(data, m._targets(train[:6], {"zfs_tensor": ref}), np.arange(6)))
    d = tensor_model.predict(train[:6])["zfs_tensor"]   # the same weights
    res = d - ref
    vec = np.stack([res[:, 0, 0], res[:, 1, 0], res[:, 2, 0], res[:, 1, 1], res[:, 2, 1],
                    res[:, 2, 2]], 1)
    de = (vec * rhombic_directions(ref)).sum(1)
    np.testing.assert_allclose(weighted, plain + 7.0 * np.mean(de**2), rtol=1e-4)
    assert 7.0 * np.mean(de**2) > 1e-3 * plain


def test_tensor_state_round_trip(tensor_model, tensor_data):
    *_, test, _ = tensor_data
    meta, arrays = tensor_model.state()
    meta = json.loads(json.dumps(meta, allow_nan=False))
    again = GMNNTensor.from_state(SETTINGS, meta, arrays)
    a = tensor_model.predict(test)["zfs_tensor"]
    b = again.predict(test)["zfs_tensor"]
    assert np.array_equal(a, b)
    assert again.origin == "centroid" and again.hyper == tensor_model.hyper
    with pytest.raises(ValueError, match="descriptor settings differ.*r_cut"):
        GMNNTensor.from_state({**SETTINGS, "r_cut": 5.0}, meta, arrays)
    with pytest.raises(ValueError, match="gmnn-tensor"):
        GMNNEnergy.from_state(SETTINGS, meta, arrays)


def test_committee_prediction_prepares_shared_data_once(tensor_model, tensor_model64,
                                                        tensor_data, monkeypatch):
    """GMNNTensor.committee_predict (what Committee.predict uses) gives every member its own
    prediction, for members that share the prepared frames and for members that cannot
    (another dtype, origin or chunk size), and prepares each chunk once per group."""
    train, t_train, *_, test, _ = tensor_data
    env = GMNNTensor(SETTINGS, seed=5, max_epochs=1, origin="metal", env_cutoff=3.0,
                     predict_batch=4, **SMALL).fit(train[:10], {"zfs_tensor": t_train[:10]})
    twin = GMNNTensor.from_state(SETTINGS, *tensor_model.state())
    alone = [m.predict(test)["zfs_tensor"] for m in (tensor_model, tensor_model64, env)]
    calls = []
    original = GMNNTensor._prepare_data
    monkeypatch.setattr(GMNNTensor, "_prepare_data",
                        lambda self, frames: calls.append(len(frames)) or
                        original(self, frames))
    together = GMNNTensor.committee_predict([tensor_model, tensor_model64, env, twin], test)
    for a, b in zip(alone + [alone[0]], together):
        np.testing.assert_allclose(b["zfs_tensor"], a, rtol=1e-6, atol=1e-6)
    # one chunk for the two float32 centroid members, one for float64, 4-frame chunks for env
    assert calls == [len(test), len(test)] + [4] * (len(test) // 4) + \
        ([len(test) % 4] if len(test) % 4 else [])
    with pytest.raises(ValueError, match="forces"):
        GMNNTensor.committee_predict([tensor_model], test, forces=True)


def test_tensor_unknown_species_and_bad_input(tensor_model, tensor_data):
    *_, test, _ = tensor_data
    a = test[0].copy()
    a.numbers[1] = 35
    with pytest.raises(ValueError, match="never saw Br"):
        tensor_model.predict([a])
    with pytest.raises(ValueError, match="never saw Br"):
        GMNNTensor(SETTINGS, **SMALL).fit([a], {"zfs_tensor": np.zeros((1, 3, 3))})
    with pytest.raises(ValueError, match="not trained"):
        GMNNTensor(SETTINGS, **SMALL).predict(test[:1])
    with pytest.raises(ValueError, match="unknown gmnn-tensor hyperparameters: widths"):
        GMNNTensor(SETTINGS, widths=3)
    with pytest.raises(ValueError, match="origin"):
        GMNNTensor(SETTINGS, origin="com")
    with pytest.raises(ValueError, match=r"shape \(2, 3, 3\)"):
        GMNNTensor(SETTINGS, **SMALL).fit(test[:2], {"zfs_tensor": np.zeros((3, 3, 3))})


def test_training_is_deterministic_and_resumes_from_a_checkpoint(tensor_data, tmp_path):
    train, t_train, val, t_val, test, _ = tensor_data
    kw = dict(seed=4, max_epochs=4, batch_size=16, **SMALL)
    args = (train[:40], {"zfs_tensor": t_train[:40]}, val, {"zfs_tensor": t_val})
    ref = GMNNTensor(SETTINGS, **kw).fit(*args)
    same = GMNNTensor(SETTINGS, **kw).fit(*args)
    p_ref = ref.predict(test)["zfs_tensor"]
    assert np.array_equal(p_ref, same.predict(test)["zfs_tensor"])
    other = GMNNTensor(SETTINGS, **{**kw, "seed": 5}).fit(*args)
    assert not np.allclose(p_ref, other.predict(test)["zfs_tensor"])

    ckpt = tmp_path / "run" / "ckpt.pt"

    def crash(line):
        if line.startswith("epoch    2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        GMNNTensor(SETTINGS, checkpoint=ckpt, **kw).fit(*args, log=crash)
    assert ckpt.exists()
    lines: list[str] = []
    resumed = GMNNTensor(SETTINGS, checkpoint=ckpt, **kw).fit(*args, log=lines.append)
    assert [int(s.split()[1]) for s in lines] == [3, 4]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.best_epoch == ref.best_epoch
    assert np.array_equal(resumed.predict(test)["zfs_tensor"], p_ref)
    with pytest.raises(ValueError, match="checkpoint of another training run"):
        GMNNTensor(SETTINGS, checkpoint=ckpt, **{**kw, "seed": 9}).fit(*args)


# --- energy model ---------------------------------------------------------------------------
def test_energy_model_learns_a_pair_potential(energy_model, energy_data):
    *_, te, e_te, f_te = energy_data
    p = energy_model.predict(te)
    rmse_e = np.sqrt(np.mean((p["energy"] - e_te) ** 2))
    f_all, p_all = np.concatenate(f_te), np.concatenate(p["forces"])
    rmse_f = np.sqrt(np.mean((p_all - f_all) ** 2))
    assert rmse_e < 0.2 * e_te.std(), (rmse_e, e_te.std())
    assert rmse_f < 0.2 * f_all.std(), (rmse_f, f_all.std())
    assert [f.shape for f in p["forces"]] == [(5, 3)] * len(te)
    assert energy_model.settings["r_cut"] == 6.5


def test_energy_cutoff_default_and_override():
    assert GMNNEnergy(SETTINGS, **SMALL).settings["r_cut"] == 6.5
    assert GMNNEnergy({**SETTINGS, "r_cut": 5.0}, **SMALL).settings["r_cut"] == 5.0
    assert GMNNTensor(SETTINGS, **SMALL).settings["r_cut"] == 8.0


@pytest.mark.parametrize("which", ["float32", "float64"])
def test_energy_symmetries(which, energy_model, energy_model64, energy_data):
    model = energy_model if which == "float32" else energy_model64
    tol = 1e-10 if which == "float64" else 1e-5
    *_, te, _, _ = energy_data
    a = te[0]
    rot = Rotation.random(random_state=3).as_matrix()
    out = model.predict([a, moved(a, rot), moved(a, shift=[1.0, 20.0, -3.0]),
                         moved(a, perm=[0, 2, 4, 3, 1])])
    e, f = out["energy"], out["forces"]
    e_tol = tol * max(1.0, abs(e[0])) * 10
    f_tol = tol * max(1.0, np.abs(f[0]).max())
    assert abs(e[1] - e[0]) < e_tol and abs(e[2] - e[0]) < e_tol and abs(e[3] - e[0]) < e_tol
    assert np.abs(f[1] - f[0] @ rot.T).max() < f_tol
    assert np.abs(f[2] - f[0]).max() < f_tol
    assert np.abs(f[3] - f[0][[0, 2, 4, 3, 1]]).max() < f_tol
    assert np.abs(f[0].sum(0)).max() < f_tol  # no net force on a free molecule
    assert np.abs(f[0]).max() > 1e-3


def test_forces_are_minus_the_energy_gradient(energy_model64, energy_data):
    *_, te, _, _ = energy_data
    a = te[1]
    f = energy_model64.predict([a])["forces"][0]
    h = 1e-5
    num = np.zeros((len(a), 3))
    for i in range(len(a)):
        for k in range(3):
            plus, minus = a.copy(), a.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            ep, em = energy_model64.predict([plus, minus])["energy"]
            num[i, k] = -(ep - em) / (2 * h)
    np.testing.assert_allclose(f, num, atol=1e-7 * max(1.0, np.abs(f).max()))


def test_energy_loss_is_eq_13(energy_model64, energy_data):
    from ase.units import Hartree

    tr, e, f, *_ = energy_data
    m = energy_model64
    y = m._targets(tr[:3], {"energy": e[:3], "forces": f[:3]})
    data = m._prepare_data(tr[:3])
    loss = float(m._loss(data, y, np.arange(3)).detach())
    p = m.predict(tr[:3])
    n = 5
    lam_e, lam_f = 1.0, 12.0 * n
    expect = np.mean([lam_e * ((e[k] - p["energy"][k]) / Hartree) ** 2
                      + lam_f / (3 * n) * np.sum(((f[k] - p["forces"][k]) / Hartree) ** 2)
                      for k in range(3)])
    np.testing.assert_allclose(loss, expect, rtol=1e-8)


def test_energy_state_round_trip_and_energy_only_training(energy_model, energy_data):
    tr, e, f, *_, te, e_te, _ = energy_data
    meta, arrays = energy_model.state()
    meta = json.loads(json.dumps(meta, allow_nan=False))
    again = GMNNEnergy.from_state(None, meta, arrays)
    a, b = energy_model.predict(te), again.predict(te)
    assert np.array_equal(a["energy"], b["energy"])
    assert all(np.array_equal(x, y) for x, y in zip(a["forces"], b["forces"]))
    assert again.settings["r_cut"] == 6.5
    # energies only (forces None): trains and predicts forces all the same
    m = GMNNEnergy(SETTINGS, seed=1, max_epochs=2, **SMALL)
    lines: list[str] = []
    m.fit(tr[:20], {"energy": e[:20], "forces": None}, tr[20:25], {"energy": e[20:25]},
          log=lines.append)
    assert m.init_norm["scale_from"].startswith("energy")
    assert len(lines) == 2 and "val MAE E" in lines[0] and "F " not in lines[0]
    json.dumps(m.state()[0], allow_nan=False)
    out = m.predict(te[:2])
    assert np.all(np.isfinite(out["energy"])) and out["forces"][0].shape == (5, 3)
    bad = te[0].copy()
    bad.numbers[0] = 26
    with pytest.raises(ValueError, match="never saw Fe"):
        energy_model.predict([bad])


def test_dense_route_of_selected_centres_equals_the_descriptor_module():
    """``centres``: the moments of some atoms only, every atom still their neighbour."""
    gm = GaussianMoments(["H", "C", "Co"], r_cut=3.0, dtype="float64", seed=5)
    rng = np.random.default_rng(6)
    pos = torch.as_tensor(rng.uniform(0, 4.0, (2, 8, 3)), dtype=torch.float64)
    spc = torch.as_tensor(rng.integers(0, 3, 8))
    centres = torch.tensor([6, 1, 3])
    dense = dense_gaussian_moments(gm, pos, spc, centres).reshape(2, 3, -1)
    for k in range(2):
        full = gm(pos[k], spc, neighbour_pairs(pos[k], gm.r_cut))
        torch.testing.assert_close(dense[k], full[centres], rtol=1e-12, atol=1e-12)


def _with_far_atoms(frames: list[Atoms]) -> list[Atoms]:
    """CoCl4 plus two Cl far outside a 3 A metal-centred environment (but within r_cut of
    some Cl), so the environment's centres are a strict subset of the atoms."""
    out = []
    for a in frames:
        b = a.copy()
        b += Atoms("Cl2", positions=a.positions[1:3] * 2.2)
        out.append(b)
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_metal_centred_environment_is_eq_7_with_a_smooth_cutoff(dtype, tensor_data):
    """env_cutoff: D = sum_i f_c(r_iM) m_i A_i over the atoms near the metal, m_i from every
    neighbour (checked against the network run on all atoms); exact rotation, translation and
    permutation symmetry (1e-10 in float64, 1e-4 relative in float32)."""
    train, t_train, *_, test, _ = tensor_data
    train, test = _with_far_atoms(train[:12]), _with_far_atoms(test[:3])
    model = GMNNTensor({**SETTINGS, "dtype": dtype, "r_cut": 5.0}, seed=2, max_epochs=1,
                       origin="metal", env_cutoff=3.0, **SMALL)
    model.fit(train, {"zfs_tensor": t_train[:12]})
    d = model.predict(test)["zfs_tensor"]
    data = model._prepare_data(test)
    assert len(data.extra["centres"][0]) == 4          # the four near Cl, not the far ones
    with torch.no_grad():
        b = data.batch(np.arange(len(test)))
        m = model.net.atomic(b, b.positions).double()   # every atom, the plain dense route
        w = data.extra["env_weight"][b.atoms]
        a = data.extra["dyads64"][b.atoms]
        ref = torch.zeros((len(test), 9), dtype=torch.float64).index_add_(
            0, b.batch, (m * w)[:, None] * a).numpy().reshape(-1, 3, 3)[np.argsort(b.ids.numpy())]
    tol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(d, ref, atol=tol * np.abs(ref).max())
    rot = Rotation.random(random_state=5).as_matrix()
    perm = [0, 5, 3, 1, 4, 2, 6]
    moved_d = model.predict([moved(test[0], rot, shift=[1.0, 2.0, -3.0]),
                             moved(test[0], perm=perm)])["zfs_tensor"]
    scale = np.abs(d[0]).max()
    assert np.abs(moved_d[0] - rot @ d[0] @ rot.T).max() < tol * scale
    assert np.abs(moved_d[1] - d[0]).max() < tol * scale
    with pytest.raises(ValueError, match="origin: metal"):
        GMNNTensor(SETTINGS, env_cutoff=3.0)
    meta, arrays = model.state()
    old = {**meta, "hyper": {k: v for k, v in meta["hyper"].items() if k != "env_cutoff"}}
    assert GMNNTensor.from_state(None, old, arrays).hyper["env_cutoff"] is None  # old files


def test_tensor_weight_decay_shrinks_only_the_network_weights(tensor_data):
    """AdamW's decoupled decay (``weight_decay``) acts on the MLP's weights alone: with a
    large decay they end smaller than without it, the per-species scale/shift and radial
    coefficients get no decay term (their optimiser group has weight_decay 0), and 0 is
    plain Adam (the paper's optimiser), bit for bit the same training as before."""
    train, t_train, *_ = tensor_data
    norms, models = {}, {}
    for wd in (0.0, 5.0):
        m = GMNNTensor(SETTINGS, seed=2, max_epochs=8, weight_decay=wd, **SMALL)
        m.fit(train[:30], {"zfs_tensor": t_train[:30]})
        norms[wd] = float(sum((p.detach() ** 2).sum() for p in m.net.mlp.parameters()))
        models[wd] = m
    assert norms[5.0] < 0.8 * norms[0.0]
    again = GMNNTensor(SETTINGS, seed=2, max_epochs=8, **SMALL)
    again.fit(train[:30], {"zfs_tensor": t_train[:30]})
    a, b = again.predict(train[:5])["zfs_tensor"], models[0.0].predict(train[:5])["zfs_tensor"]
    assert np.array_equal(a, b)
    assert models[5.0].hyper["weight_decay"] == 5.0 and again.hyper["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="weight_decay"):
        GMNNTensor(SETTINGS, seed=0, weight_decay=-1.0)
