"""Gaussian-moment descriptors: exact symmetries, analytic limits, an independent reference
implementation, cutoff smoothness, autograd forces, batching and model-file settings."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
from conftest import rotations
from hypothesis import given, settings
from scipy.spatial.transform import Rotation

from molmag.descriptors.gaussian_moments import (
    DEFAULT_N_BASIS,
    DEFAULT_N_RADIAL,
    DEFAULT_R_CUT,
    GaussianMoments,
    collate,
    gaussian_moment_feature_count,
    neighbour_pairs,
)

SPECIES = ["H", "C", "N", "O", "S", "Co"]


def random_cluster(n_atoms: int, seed: int, box: float = 5.0, d_min: float = 0.9):
    """Random non-overlapping atoms with random species indices (deterministic)."""
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n_atoms:
        x = rng.uniform(0.0, box, 3)
        if all(np.linalg.norm(x - p) > d_min for p in pos):
            pos.append(x)
    return np.array(pos), rng.integers(0, len(SPECIES), n_atoms)


def features(gm: GaussianMoments, pos, spc, r_list: float | None = None) -> torch.Tensor:
    pos = torch.as_tensor(pos, dtype=gm.dtype)
    pairs = neighbour_pairs(pos, r_list or gm.r_cut)
    return gm(pos, torch.as_tensor(spc), pairs)


GM64 = GaussianMoments(SPECIES, dtype=torch.float64, seed=1)
GM32 = GaussianMoments(SPECIES, dtype=torch.float32, seed=1)
POS, SPC = random_cluster(18, seed=3)
F64 = features(GM64, POS, SPC).detach()
F32 = features(GM32, POS, SPC).detach()


# --- counts and structure -------------------------------------------------------------------
@pytest.mark.parametrize("n_radial", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("n_contractions", [1, 4, 8])
def test_feature_count_formula_matches_output(n_radial, n_contractions):
    r = n_radial
    blocks = [r, r * (r + 1) // 2, r * (r + 1) // 2, r * (r + 1) // 2,
              r * (r + 1) * (r + 2) // 6, r * r * (r + 1) // 2, r * r * (r + 1) // 2, r**3]
    expected = sum(blocks[:n_contractions])
    gm = GaussianMoments(SPECIES, n_radial=n_radial, n_contractions=n_contractions,
                         dtype="float64", seed=0)
    assert gaussian_moment_feature_count(n_radial, n_contractions) == expected
    assert gm.n_features == expected
    assert features(gm, POS, SPC).shape == (len(POS), expected)


def test_defaults_give_the_papers_input_dimension():
    # Zaverkin et al. 2022: d_0 = 360 input features; D-tensor cutoff 8.0 Angstrom
    assert (DEFAULT_N_RADIAL, DEFAULT_N_BASIS, DEFAULT_R_CUT) == (5, 7, 8.0)
    assert GaussianMoments(SPECIES).n_features == 360
    assert gaussian_moment_feature_count(5) == 5 + 3 * 15 + 35 + 75 + 75 + 125 == 360
    assert F32.dtype == torch.float32 and F64.dtype == torch.float64


def _radial_reference(r, beta, n_basis=DEFAULT_N_BASIS, r_cut=DEFAULT_R_CUT, r_min=0.5):
    """The radial functions written out from the equations, in numpy."""
    alpha = (n_basis / r_cut) ** 2
    mu = r_min + (r_cut - r_min) * np.arange(n_basis) / n_basis
    phi = (2 * alpha / np.pi) ** 0.25 * np.exp(-alpha * (r - mu) ** 2)
    fc = 0.5 * (np.cos(np.pi * r / r_cut) + 1) if r < r_cut else 0.0
    return fc / np.sqrt(n_basis) * beta @ phi


def test_dimer_features_are_products_of_radial_functions():
    """One neighbour: every contraction of u^(x)L's is 1, so each invariant is a product of
    radial functions R_r R_s (R_t) with the kept index tuples, in the documented order."""
    r = 2.37
    pos = np.array([[0.0, 0.0, 0.0], [0.3, -1.1, 0.0]])
    pos[1] *= r / np.linalg.norm(pos[1])
    spc = np.array([1, 5])  # C, Co
    f = features(GM64, pos, spc).detach().numpy()
    beta = GM64.coefficients.detach().numpy()
    for atom, (zi, zj) in enumerate([(1, 5), (5, 1)]):
        rad = _radial_reference(r, beta[zi, zj])
        n = len(rad)
        tri2 = [(a, b) for a in range(n) for b in range(a, n)]
        tri3 = [(a, b, c) for a in range(n) for b in range(a, n) for c in range(b, n)]
        p2 = [rad[a] * rad[b] for a, b in tri2]
        expected = np.concatenate([
            rad, p2, p2, p2,
            [rad[a] * rad[b] * rad[c] for a, b, c in tri3],
            [rad[a] * rad[b] * rad[t] for a, b in tri2 for t in range(n)],
            [rad[a] * rad[b] * rad[t] for a, b in tri2 for t in range(n)],
            [rad[a] * rad[b] * rad[c] for a, b, c in itertools.product(range(n), repeat=3)],
        ])
        np.testing.assert_allclose(f[atom], expected, rtol=1e-12, atol=1e-14)


def test_matches_independent_loop_implementation():
    """Moments by explicit loops over pairs and invariants by explicit index sums (numpy),
    for a small cluster with several species."""
    gm = GaussianMoments(SPECIES, n_radial=3, n_basis=4, r_cut=4.0, dtype="float64", seed=7)
    pos, spc = random_cluster(7, seed=11, box=3.5)
    got = features(gm, pos, spc).detach().numpy()
    beta = gm.coefficients.detach().numpy()
    n = 3
    for i in range(len(pos)):
        m = [np.zeros(n), np.zeros((n, 3)), np.zeros((n, 3, 3)), np.zeros((n, 3, 3, 3))]
        for j in range(len(pos)):
            d = pos[i] - pos[j]
            r = np.linalg.norm(d)
            if j == i or r >= gm.r_cut:
                continue
            u = d / r
            rad = _radial_reference(r, beta[spc[i], spc[j]], n_basis=4, r_cut=4.0)
            m[0] += rad
            m[1] += rad[:, None] * u
            m[2] += rad[:, None, None] * np.einsum("a,b->ab", u, u)
            m[3] += rad[:, None, None, None] * np.einsum("a,b,c->abc", u, u, u)
        m0, v, a, t = m
        tri2 = [(p, q) for p in range(n) for q in range(p, n)]
        tri3 = [(p, q, s) for p in range(n) for q in range(p, n) for s in range(q, n)]
        ref = list(m0)
        ref += [v[p] @ v[q] for p, q in tri2]
        ref += [np.sum(a[p] * a[q]) for p, q in tri2]
        ref += [np.sum(t[p] * t[q]) for p, q in tri2]
        ref += [np.einsum("ij,ik,jk->", a[p], a[q], a[s]) for p, q, s in tri3]
        ref += [np.einsum("i,j,ij->", v[p], v[q], a[s]) for p, q in tri2 for s in range(n)]
        ref += [np.einsum("ijk,ijl,kl->", t[p], t[q], a[s]) for p, q in tri2 for s in range(n)]
        ref += [np.einsum("ijk,ij,k->", t[p], a[q], v[s])
                for p, q, s in itertools.product(range(n), repeat=3)]
        np.testing.assert_allclose(got[i], ref, rtol=1e-11, atol=1e-13)


def test_dropped_index_tuples_are_exact_duplicates():
    pos = torch.as_tensor(POS)
    full = GM64.full_contractions(GM64.moments(pos, torch.as_tensor(SPC),
                                               neighbour_pairs(pos, GM64.r_cut)))
    for c in full[1:4]:
        torch.testing.assert_close(c, c.transpose(1, 2), rtol=1e-12, atol=1e-12)
    c4 = full[4]
    for perm in itertools.permutations(range(3)):
        torch.testing.assert_close(c4, c4.permute(0, *(p + 1 for p in perm)),
                                   rtol=1e-12, atol=1e-12)
    for c in full[5:7]:
        torch.testing.assert_close(c, c.transpose(1, 2), rtol=1e-12, atol=1e-12)
    # block 7 has no symmetry: the duplicates check must not pass trivially
    assert (full[7] - full[7].transpose(1, 2)).abs().max() > 1e-3


def test_padded_and_index_add_segment_sums_agree():
    from molmag.descriptors.gaussian_moments import _segment_outer_sum

    gen = torch.Generator().manual_seed(0)
    i = torch.tensor([3, 0, 0, 2, 3, 3, 0, 3, 2])  # atom 1 has no pairs
    radial = torch.randn((9, 4), generator=gen, dtype=torch.float64)
    angular = torch.randn((9, 20), generator=gen, dtype=torch.float64)
    expected = torch.zeros((5, 4, 20), dtype=torch.float64)
    for p, a in enumerate(i.tolist()):
        expected[a] += torch.outer(radial[p], angular[p])
    for dense in (True, False):
        got = _segment_outer_sum(radial, angular, i, 5, dense=dense)
        torch.testing.assert_close(got, expected, rtol=1e-14, atol=1e-14)


# --- exact symmetries -------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(rotations())
def test_rotation_invariance(rot):
    centre = POS.mean(0)
    rotated = (POS - centre) @ rot.T + centre
    f64 = features(GM64, rotated, SPC).detach()
    torch.testing.assert_close(f64, F64, rtol=0, atol=1e-10 * F64.abs().max().item())
    f32 = features(GM32, rotated, SPC).detach()
    torch.testing.assert_close(f32, F32, rtol=0, atol=1e-5 * F32.abs().max().item())


def test_inversion_invariance():
    """Every invariant has even total rank: mirror images have the same features."""
    mirrored = POS * np.array([1.0, -1.0, 1.0])
    torch.testing.assert_close(features(GM64, mirrored, SPC).detach(), F64,
                               rtol=0, atol=1e-12)


def test_translation_invariance():
    shifted = POS + np.array([3.7, -12.2, 0.45])
    torch.testing.assert_close(features(GM64, shifted, SPC).detach(), F64, rtol=0, atol=1e-11)
    torch.testing.assert_close(features(GM32, shifted, SPC).detach(), F32,
                               rtol=0, atol=1e-5 * F32.abs().max().item())


def test_permutation_equivariance():
    perm = np.random.default_rng(5).permutation(len(POS))
    f = features(GM64, POS[perm], SPC[perm]).detach()
    torch.testing.assert_close(f, F64[perm], rtol=0, atol=1e-12)
    # swapping two atoms of the same species changes nothing but their rows
    same = [k for k in range(len(SPC)) if SPC[k] == SPC[0]]
    assert len(same) >= 2
    swap = np.arange(len(POS))
    swap[[same[0], same[1]]] = swap[[same[1], same[0]]]
    assert (SPC[swap] == SPC).all()
    torch.testing.assert_close(features(GM64, POS[swap], SPC).detach(), F64[swap],
                               rtol=0, atol=1e-12)


def test_species_pairs_matter():
    """Changing one atom's species changes its own and its neighbours' features."""
    spc = SPC.copy()
    spc[0] = (spc[0] + 1) % len(SPECIES)
    f = features(GM64, POS, spc).detach()
    assert (f[0] - F64[0]).abs().max() > 1e-3
    assert (f[1:] - F64[1:]).abs().max() > 1e-3


# --- smoothness and forces --------------------------------------------------------------------
def test_cutoff_smoothness_as_a_neighbour_leaves():
    """Atom 2 walks out of atom 0's cutoff sphere (atom 1 is already out of its reach): the
    features of all atoms go continuously to those without atom 2, the difference vanishing
    as delta^2 and its gradient as delta; beyond r_cut the leaving atom changes nothing."""
    gm = GM64
    rc = gm.r_cut
    base = np.array([[0.0, 0.0, 0.0], [-1.2, 0.3, 0.1]])
    spc = np.array([5, 2, 1])

    def at(x):
        pos = torch.tensor(np.vstack([base, [x, 0.0, 0.0]]), requires_grad=True)
        f = features(gm, pos, spc, r_list=rc + 2.0)  # pairs beyond r_cut must add zero
        (g,) = torch.autograd.grad(f.sum(), pos)
        return f.detach(), g

    pos2 = torch.tensor(base, requires_grad=True)
    f_without = features(gm, pos2, spc[:2])
    (g_without,) = torch.autograd.grad(f_without.sum(), pos2)
    f_without = f_without.detach()

    f_out, g_out = at(rc + 1e-3)
    torch.testing.assert_close(f_out[:2], f_without, rtol=0, atol=1e-14)
    assert f_out[2].abs().max() == 0 and g_out[2].abs().max() == 0
    torch.testing.assert_close(g_out[:2], g_without, rtol=0, atol=1e-14)

    diffs, gdiffs = [], []
    for delta in (1e-2, 1e-3, 1e-4):
        f_in, g_in = at(rc - delta)
        diffs.append(max((f_in[:2] - f_without).abs().max().item(), f_in[2].abs().max().item()))
        gdiffs.append(max((g_in[:2] - g_without).abs().max().item(),
                          g_in[2].abs().max().item()))
    assert diffs[0] > 0 and gdiffs[0] > 0
    for k in range(2):  # features ~ delta^2, gradients ~ delta
        assert diffs[k + 1] / diffs[k] == pytest.approx(1e-2, rel=0.05)
        assert gdiffs[k + 1] / gdiffs[k] == pytest.approx(1e-1, rel=0.05)
    assert diffs[-1] < 1e-8 and gdiffs[-1] < 1e-3


def test_forces_by_autograd_match_finite_differences():
    gm = GaussianMoments(SPECIES, dtype="float64", seed=4, r_cut=5.0)
    pos0, spc = random_cluster(9, seed=21, box=4.0)
    pairs = neighbour_pairs(torch.as_tensor(pos0), gm.r_cut + 1.0)
    weights = torch.as_tensor(np.random.default_rng(2).normal(size=(len(pos0), gm.n_features)))

    def energy(p):
        return (gm(p, torch.as_tensor(spc), pairs) * weights).sum()

    pos = torch.tensor(pos0, requires_grad=True)
    (grad,) = torch.autograd.grad(energy(pos), pos)
    h = 1e-5
    fd = np.zeros_like(pos0)
    with torch.no_grad():
        for a, c in itertools.product(range(len(pos0)), range(3)):
            plus, minus = pos0.copy(), pos0.copy()
            plus[a, c] += h
            minus[a, c] -= h
            fd[a, c] = (energy(torch.as_tensor(plus)) - energy(torch.as_tensor(minus))) / (2 * h)
    np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    # the forces on an isolated cluster sum to zero (translation invariance)
    np.testing.assert_allclose(grad.sum(0).numpy(), 0.0, atol=1e-9 * np.abs(fd).max())


def test_gradients_reach_exactly_the_coefficients_of_present_pairs():
    gm = GaussianMoments(SPECIES, dtype="float64", seed=0)
    spc = np.where(SPC == 4, 0, SPC)  # no S atom
    pos = torch.as_tensor(POS)
    pairs = neighbour_pairs(pos, gm.r_cut)
    gm(pos, torch.as_tensor(spc), pairs).pow(2).sum().backward()
    present = {(int(spc[i]), int(spc[j])) for i, j in zip(pairs.i, pairs.j)}
    assert not any(4 in p for p in present)
    g = gm.coefficients.grad
    for a, b in itertools.product(range(len(SPECIES)), repeat=2):
        assert (g[a, b].abs().max().item() > 0) == ((a, b) in present), (a, b)


# --- species, batching, settings --------------------------------------------------------------
def test_unknown_species_refused():
    with pytest.raises(ValueError, match="Xe"):
        GM64.species_index(["C", "Xe", "H"])
    with pytest.raises(ValueError, match="Fe"):
        GM64.species_index([6, 26])
    with pytest.raises(ValueError, match="Qq"):
        GM64.species_index(["Qq"])
    with pytest.raises(ValueError, match="out of range"):
        GM64(torch.zeros((2, 3)), torch.tensor([0, 6]))
    with pytest.raises(ValueError, match="Zz"):
        GaussianMoments(["H", "Zz"])
    with pytest.raises(ValueError, match="duplicates"):
        GaussianMoments(["H", "C", 1])
    assert GM64.species_index(["Co", "H", 8]).tolist() == [5, 0, 3]


def test_batch_of_two_molecules_equals_separate_calls():
    pos_a, spc_a = random_cluster(11, seed=8)
    pos_b, spc_b = random_cluster(6, seed=9, box=3.0)
    pos_b = pos_b + 0.5  # overlapping boxes: pairs must not cross molecules
    fa = features(GM64, pos_a, spc_a).detach()
    fb = features(GM64, pos_b, spc_b).detach()
    f, batch = GM64.batch([pos_a, pos_b], [spc_a, spc_b])
    assert batch.tolist() == [0] * 11 + [1] * 6
    torch.testing.assert_close(f.detach(), torch.cat([fa, fb]), rtol=0, atol=1e-12)
    # the concatenated form with an explicit batch index gives the same
    pos, spc, batch = collate([pos_a, pos_b], [spc_a, spc_b])
    f2, _ = GM64.batch(pos, spc, batch)
    torch.testing.assert_close(f2.detach(), f.detach(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="non-decreasing"):
        GM64.batch(pos, spc, batch.flip(0))


def test_neighbour_lists_torch_and_ase_agree():
    pos_a, _ = random_cluster(40, seed=1, box=9.0)
    pos_b, _ = random_cluster(25, seed=2, box=7.0)
    pos, _, batch = collate([pos_a, pos_b], [np.zeros(40), np.zeros(25)])
    t = neighbour_pairs(pos, 3.5, batch=batch, method="torch")
    a = neighbour_pairs(pos, 3.5, batch=batch, method="ase")
    assert t.i.tolist() == a.i.tolist() and t.j.tolist() == a.j.tolist()
    assert len(t.i) > 100
    assert (batch[t.i] == batch[t.j]).all() and (t.i != t.j).all()
    torch.testing.assert_close(t.r_ij, pos[t.i] - pos[t.j])
    d = np.linalg.norm(pos_a[:, None] - pos_a[None], axis=-1)
    assert int(((d < 3.5) & (d > 0)).sum()) == int((batch[t.i] == 0).sum())


def test_settings_round_trip():
    gm = GaussianMoments(["Co", "N", "H"], n_radial=4, n_basis=6, r_cut=6.5, r_min=0.7,
                         n_contractions=6, init="uniform", dtype="float64", seed=3)
    s = gm.settings()
    assert s == {"kind": "gaussian_moments", "species": ["Co", "N", "H"], "n_radial": 4,
                 "n_basis": 6, "r_cut": 6.5, "r_min": 0.7, "n_contractions": 6,
                 "init": "uniform", "dtype": "float64"}
    assert gm.coefficients.abs().max() <= 1.0  # U(-1, 1)
    copy = GaussianMoments.from_settings(s, gm.state_dict())
    pos, _ = random_cluster(5, seed=0)
    spc = torch.tensor([0, 1, 2, 2, 1])
    torch.testing.assert_close(copy(torch.as_tensor(pos), spc), gm(torch.as_tensor(pos), spc),
                               rtol=0, atol=0)
    with pytest.raises(ValueError, match="colour"):
        GaussianMoments.from_settings({**s, "colour": "red"})


def test_initial_radial_functions_are_well_conditioned():
    """The Gaussians are L2-normalised, the coefficients start as N(0, 1) draws, and the
    cosine cutoff is 1 at r = 0 and 0 from r_cut on."""
    gm = GaussianMoments(SPECIES, dtype="float64", seed=0)
    r = torch.linspace(-30.0, 40.0, 700001, dtype=torch.float64)
    phi = gm.gaussian_basis(r)
    norms = torch.trapezoid(phi**2, r, dim=0)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=1e-6, atol=0)
    beta = gm.coefficients.detach()
    assert abs(beta.mean().item()) < 0.1 and abs(beta.std().item() - 1.0) < 0.1
    assert gm.cutoff(torch.tensor([0.0, gm.r_cut, gm.r_cut + 1.0])).tolist() == [1.0, 0.0, 0.0]


# --- the 53-atom cobalt complex: rotation check and timings ----------------------------------
@pytest.mark.shared_data
def test_copdms_timings(shared_data):
    from ase.io import read

    frames = read(shared_data / "copdms" / "copdms_configurations_1200.xyz", index=":100",
                  format="xyz")
    assert len(frames) == 100 and all(len(a) == 53 for a in frames)
    gm = GaussianMoments(SPECIES, seed=0)  # float32, paper defaults: R = 5, r_cut = 8.0
    spc = [gm.species_index(a.numbers) for a in frames]
    pos = [torch.as_tensor(a.positions, dtype=torch.float32) for a in frames]

    # rotating the complex leaves its float32 features unchanged
    rot = torch.as_tensor(Rotation.random(random_state=4).as_matrix(), dtype=torch.float32)
    f0 = gm(pos[0], spc[0]).detach()
    f1 = gm(pos[0] @ rot.T, spc[0]).detach()
    torch.testing.assert_close(f1, f0, rtol=0, atol=1e-5 * f0.abs().max().item())

    positions, species, batch = collate(pos, spc)
    lines = []
    for r_cut in (DEFAULT_R_CUT, 6.5):
        g = GaussianMoments(SPECIES, r_cut=r_cut, seed=0)
        g.batch(positions, species, batch)  # warm-up
        n_rep = 3
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(n_rep):
                f, _ = g.batch(positions, species, batch)
        t_fwd = (time.perf_counter() - t0) / n_rep
        t0 = time.perf_counter()
        for _ in range(n_rep):
            p = positions.clone().requires_grad_(True)
            f, _ = g.batch(p, species, batch)
            f.sum().backward()
        t_both = (time.perf_counter() - t0) / n_rep
        n_pairs = len(neighbour_pairs(positions, r_cut, batch=batch).i)
        assert f.shape == (5300, 360) and torch.isfinite(p.grad).all()
        lines.append(f"r_cut {r_cut:.1f} A ({n_pairs / 5300:.1f} neighbours/atom): "
                     f"forward {100 / t_fwd:8.1f} structures/s, "
                     f"forward+backward {100 / t_both:8.1f} structures/s "
                     f"({torch.get_num_threads()} threads)")
    # captured like any test output (shown with -s / -rP): a throughput table printed past
    # the capture landed in the middle of the progress dots; benchmarks/gmnn.py measures it
    print("\nGaussian moments, [Co(pdms)2]2- (53 atoms), batches of 100 frames, float32:")
    for line in lines:
        print("  " + line)
