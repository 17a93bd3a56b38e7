"""2D scans along internal coordinates and magneto-structural correlations (molmag.explore):
the moves hit their coordinates exactly and touch nothing else, grids are not transposed or
shifted, the ligand-field engine runs on a small scan, r = +-1 for an exact linear relation,
r is invariant under rigid motions, and the files come back."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.io import write
from scipy.spatial.transform import Rotation

from molmag.chem.builders import build
from molmag.chem.features import intraligand_angles, metal_donor_distances, structure_features
from molmag.explore.correlations import (
    LITERATURE,
    CorrelationResult,
    magneto_structural_correlations,
    pearson,
)
from molmag.explore.scan import (
    ChelateBiteAngle,
    MetalDonorDistance,
    Scan2DResult,
    bond_graph,
    default_coordinates,
    scan_2d,
    set_coordinates,
)
from molmag.io import Dataset, Record
from molmag.physics.ligand_field import LigandFieldCalculator
from molmag.physics.zfs import tensor_from_zfs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def copdms() -> Atoms:
    """[Co(pdms)2]2- from the builder without xTB (0.2 s): Co-N 2.0 A, bite angles 89.5 deg."""
    return build("co-pdms", relax=False)


def _raw_coordinates(atoms: Atoms) -> tuple[float, float]:
    """Mean Co-N distance and mean bite angle from positions alone (donors 5, 12 | 31, 38)."""
    p = atoms.positions
    u = p[[5, 12, 31, 38]] - p[0]
    d = np.linalg.norm(u, axis=1)
    u = u / d[:, None]
    ang = np.degrees(np.arccos([u[0] @ u[1], u[2] @ u[3]]))
    return float(d.mean()), float(ang.mean())


class AnalyticCalculator(Calculator):
    """zfs_D = -100 + 300 (d - 2) + 2 (theta - 85) cm-1 and
    energy = 7 + 3 (d - 2)^2 + 0.01 (theta - 85)^2 eV, d, theta the raw mean Co-N distance
    (Angstrom) and mean bite angle (degrees); counts its calls."""

    implemented_properties = ["zfs_D", "energy"]
    calls = 0

    def calculate(self, atoms=None, properties=("zfs_D",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        AnalyticCalculator.calls += 1
        d, t = _raw_coordinates(self.atoms)
        self.results = {"zfs_D": -100 + 300 * (d - 2) + 2 * (t - 85),
                        "energy": 7 + 3 * (d - 2) ** 2 + 0.01 * (t - 85) ** 2}


# ======================================================================================
# moves
# ======================================================================================
def test_arms_of_pdms_are_the_methanesulfonyl_nitrogens(copdms):
    dist, angle = default_coordinates(copdms)
    assert dist.donors.tolist() == copdms.info["donor_indices"] == [5, 12, 31, 38]
    assert angle.pairs.tolist() == [[5, 12], [31, 38]]
    for x, arm in zip(dist.donors, dist.arms):
        assert x in arm
        assert Atoms(numbers=copdms.numbers[arm]).get_chemical_formula() == "CH3NO2S"
    hinges = dist.hinge_bonds()
    assert len(hinges) == 4
    assert all(copdms[i].symbol == "N" and copdms[j].symbol == "C" for i, j in hinges)
    assert angle.hinge_bonds() == hinges


@pytest.mark.parametrize("dd, dt", [(0.1, 5.0), (-0.1, -5.0), (0.037, -2.2), (0.0, 0.0)])
def test_moves_hit_the_requested_coordinates_and_touch_nothing_else(copdms, dd, dt):
    dist, angle = default_coordinates(copdms)
    d0, donors = metal_donor_distances(copdms, 0, [5, 12, 31, 38])
    a0, pairs = intraligand_angles(copdms, 0, [5, 12, 31, 38])
    s, got = set_coordinates(copdms, (dist, angle), (d0.mean() + dd, a0.mean() + dt))
    d1, _ = metal_donor_distances(s, 0, donors)
    a1, pairs1 = intraligand_angles(s, 0, donors)
    assert pairs1.tolist() == pairs.tolist()
    # requested coordinates, measured with chem.features, and every bond/pair moved alike
    assert d1.mean() == pytest.approx(d0.mean() + dd, abs=1e-9)
    assert a1.mean() == pytest.approx(a0.mean() + dt, abs=1e-9)
    assert np.allclose(d1 - d0, dd, atol=1e-9) and np.allclose(a1 - a0, dt, atol=1e-9)
    assert got == pytest.approx([d0.mean() + dd, a0.mean() + dt], abs=1e-9)
    # every bond of the reference keeps its length except the four N-C(ring) hinges and Co-N
    adj = np.triu(bond_graph(copdms))
    hinges = {tuple(sorted(b)) for b in dist.hinge_bonds()}
    r0, r1 = copdms.get_all_distances(), s.get_all_distances()
    changed = {(int(i), int(j)) for i, j in zip(*np.nonzero(adj & (np.abs(r1 - r0) > 1e-9)))}
    assert changed <= hinges | {(0, int(x)) for x in donors}
    if dd or dt:
        assert changed  # something did move
    # the benzene backbones (everything outside the arms) stay put, and each arm is rigid
    fixed = np.setdiff1d(np.arange(len(copdms)), dist.moved_atoms())
    assert np.allclose(s.positions[fixed], copdms.positions[fixed], atol=1e-12)
    for arm in dist.arms:
        assert np.allclose(r1[np.ix_(arm, arm)], r0[np.ix_(arm, arm)], atol=1e-9)


def test_each_move_leaves_the_other_coordinate_alone(copdms):
    dist, angle = default_coordinates(copdms)
    q0 = structure_features(copdms)
    s = dist.displace(copdms, -0.08)  # stretch: no angle at Co changes, so neither does q
    q = structure_features(s)
    assert q["d_ML_mean_A"] == pytest.approx(q0["d_ML_mean_A"] - 0.08, abs=1e-12)
    for k in ("q_tet", "angle_intra_mean_deg", "angle_intra_min_deg", "angle_intra_max_deg"):
        assert q[k] == pytest.approx(q0[k], abs=1e-9), k
    s = angle.displace(copdms, 4.0)  # rotation about Co: no Co-N distance changes
    d0, _ = metal_donor_distances(copdms, 0, dist.donors)
    d1, _ = metal_donor_distances(s, 0, dist.donors)
    assert np.allclose(d1, d0, atol=1e-12)
    q = structure_features(s)
    assert q["angle_intra_mean_deg"] == pytest.approx(q0["angle_intra_mean_deg"] + 4.0, abs=1e-9)
    assert abs(q["q_tet"] - q0["q_tet"]) > 1e-3  # the interligand angles do follow


def test_moves_are_set_up_once_and_refuse_what_they_cannot_do(copdms):
    dist = MetalDonorDistance(copdms)
    with pytest.raises(ValueError, match="through the metal"):
        dist.set(copdms, -0.5)
    with pytest.raises(ValueError, match="outside"):
        ChelateBiteAngle(copdms).set(copdms, 185.0)
    tet = Atoms("CoCl4", positions=np.vstack([[0, 0, 0], 2.26 * np.array(
        [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)]))
    with pytest.raises(ValueError, match="no two donors share a ligand"):
        ChelateBiteAngle(tet)
    # monodentate ligands: the stretch moves each whole ligand
    s = MetalDonorDistance(tet).set(tet, 2.30)
    assert np.allclose(np.linalg.norm(s.positions[1:], axis=1), 2.30)


# ======================================================================================
# scans
# ======================================================================================
def test_scan_reproduces_an_analytic_function_on_the_grid(copdms, tmp_path):
    o1, o2 = np.linspace(-0.1, 0.1, 5), np.linspace(-5, 5, 4)  # not square: no transposition
    res = scan_2d(copdms, {"analytic": AnalyticCalculator()}, offsets1=o1, offsets2=o2)
    d0, t0 = _raw_coordinates(copdms)
    assert res.shape == (5, 4)
    assert res.values1 == pytest.approx(d0 + o1, abs=1e-12)
    assert res.values2 == pytest.approx(t0 + o2, abs=1e-12)
    d, t = np.meshgrid(d0 + o1, t0 + o2, indexing="ij")
    expected = -100 + 300 * (d - 2) + 2 * (t - 85)
    assert res.grid("analytic", "zfs_D") == pytest.approx(expected, abs=1e-8)
    e_ref = 7 + 3 * (d0 - 2) ** 2 + 0.01 * (t0 - 85) ** 2
    assert res.reference["analytic"]["energy"] == pytest.approx(e_ref, abs=1e-12)
    assert res.grid("analytic", "energy") == pytest.approx(
        3 * (d - 2) ** 2 + 0.01 * (t - 85) ** 2 - (e_ref - 7), abs=1e-8)
    assert np.abs(res.achieved1 - d).max() < 1e-6 and np.abs(res.achieved2 - t).max() < 1e-6
    assert res.coordinate_error() < 1e-6 and res.done.all() and not res.errors
    # the q_tet grid is the features' q of each structure (spot check one corner)
    s, _ = set_coordinates(copdms, default_coordinates(copdms), (d[4, 0], t[4, 0]))
    assert res.q_tet[4, 0] == pytest.approx(structure_features(s)["q_tet"], abs=1e-12)

    # a process pool gives the same grid
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as ex:
        par = scan_2d(copdms, [AnalyticCalculator()], offsets1=o1, offsets2=o2, map=ex.map)
    assert par.grid("Analytic", "zfs_D") == pytest.approx(res.grid("analytic", "zfs_D"), abs=1e-12)

    # save / load, and a checkpoint resumes only the missing points
    npz, js = res.save(tmp_path / "s")
    back = Scan2DResult.load(tmp_path / "s.json")
    assert back.grid("analytic", "energy") == pytest.approx(res.grid("analytic", "energy"))
    assert back.coordinates[0]["label"] == "mean Co–N distance (Å)"
    assert back.coordinates[1]["label"] == "mean intraligand N–Co–N angle (deg)"
    back.done[2:, :] = False
    back.save(tmp_path / "ck")
    AnalyticCalculator.calls = 0
    again = scan_2d(copdms, {"analytic": AnalyticCalculator()}, offsets1=o1, offsets2=o2,
                    checkpoint=tmp_path / "ck")
    assert AnalyticCalculator.calls == 3 * 4
    assert again.grid("analytic", "zfs_D") == pytest.approx(res.grid("analytic", "zfs_D"), abs=1e-8)


def test_small_ligand_field_scan_with_plots(copdms, tmp_path):
    calc = LigandFieldCalculator()
    res = scan_2d(copdms, [calc, AnalyticCalculator()], offsets1=[-0.05, 0.0, 0.05],
                  offsets2=[-3.0, 0.0, 3.0])
    D = res.grid("LigandField", "zfs_D")
    assert D.shape == (3, 3) and np.isfinite(D).all() and not res.errors
    assert "energy" not in res.data["LigandField"] and "energy" in res.data["Analytic"]
    # the centre is the unmodified structure
    a = copdms.copy()
    a.calc = LigandFieldCalculator()
    d_ref = a.calc.get_property("zfs_D", a)
    assert D[1, 1] == pytest.approx(d_ref, abs=1e-8) == res.reference["LigandField"]["zfs_D"]
    assert np.all(D < 0) and np.ptp(D) > 1.0
    files = res.plot(tmp_path)
    assert sorted(p.name for p in files) == ["scan_energy.png", "scan_zfs_D.png"]
    for p in files:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000


def test_xtb_and_ligand_field_scan_through_a_spawned_process_pool(copdms):
    """The reference engines side by side through a process map (fresh calculators are
    pickled into the tasks; an xTB calculator that has run could not be) equal the serial
    scan; energies are relative to the unmodified structure."""
    from molmag.chem.xtb import XTBCalculator

    kw = dict(offsets1=[-0.05, 0.0], offsets2=[2.0])
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        par = scan_2d(copdms, {"LF": LigandFieldCalculator(), "xTB": XTBCalculator()},
                      map=ex.map, **kw)
    ser = scan_2d(copdms, {"LF": LigandFieldCalculator(), "xTB": XTBCalculator()}, **kw)
    assert not par.errors and not ser.errors
    assert par.grid("LF", "zfs_D") == pytest.approx(ser.grid("LF", "zfs_D"), abs=1e-8)
    assert par.grid("xTB", "energy") == pytest.approx(ser.grid("xTB", "energy"), abs=1e-5)
    a = copdms.copy()
    a.info = dict(copdms.info)
    a.calc = XTBCalculator()
    assert par.reference["xTB"]["energy"] == pytest.approx(a.get_potential_energy(), abs=1e-5)
    # stretching and opening away from the builder's geometry costs energy
    assert np.all(np.abs(par.grid("xTB", "energy")) > 1e-3)


# ======================================================================================
# correlations
# ======================================================================================
def _distorted(copdms, n, seed=0):
    """n copies of the complex with random Co-N stretches, bite angles and 0.02 A noise."""
    rng = np.random.default_rng(seed)
    coords = default_coordinates(copdms)
    q0 = np.array([c.measure(copdms) for c in coords])
    out = []
    for _ in range(n):
        s, _ = set_coordinates(copdms, coords, q0 + rng.uniform([-0.08, -6], [0.08, 6]))
        s.positions += rng.normal(scale=0.02, size=s.positions.shape)
        s.info = dict(copdms.info)
        out.append(s)
    return out


def _moved(atoms: Atoms, seed: int) -> Atoms:
    rot = Rotation.random(random_state=seed).as_matrix()
    out = atoms.copy()
    out.positions = atoms.positions @ rot.T + np.random.default_rng(seed).normal(scale=5, size=3)
    return out


@pytest.mark.parametrize("slope", [250.0, -40.0])
def test_exact_linear_relation_gives_r_of_plus_minus_one(copdms, tmp_path, slope):
    frames = _distorted(copdms, 12, seed=1)
    recs = []
    for k, s in enumerate(frames):
        d = metal_donor_distances(s, 0, [5, 12, 31, 38])[0].mean()
        rot = Rotation.random(random_state=k).as_matrix()
        t = rot @ tensor_from_zfs(slope * (d - 2.0) - 90.0, 3.0) @ rot.T
        recs.append(Record(s, charge=-2, multiplicity=4, labels={"zfs_tensor": t},
                           tags={"group": "lin"}))
    ds = Dataset(tmp_path / "lin.db")
    ds.add_many(recs)
    res = magneto_structural_correlations(tmp_path / "lin.db", selection="group=lin",
                                          n_bootstrap=200)
    st = res.stats["d_ML_mean_A"]
    assert st["n"] == 12 and res.D_from == "zfs_tensor label"
    assert st["r"] == pytest.approx(np.sign(slope), abs=1e-12)
    assert st["slope"] == pytest.approx(slope, rel=1e-9)
    assert st["ci_low"] == pytest.approx(np.sign(slope), abs=1e-9)
    assert st["p_value"] < 1e-10
    assert abs(res.stats["q_tet"]["r"]) < 0.999  # q is not a linear function of d here
    assert set(res.stats) == {"d_ML_mean_A", "q_tet", "angle_intra_mean_deg"}


def test_r_is_invariant_under_rotations_and_translations(copdms, tmp_path):
    frames = _distorted(copdms, 10, seed=2)
    calc = LigandFieldCalculator()
    res = magneto_structural_correlations(frames, calculator=calc, n_bootstrap=300)
    moved = [_moved(f, k) for k, f in enumerate(frames)]
    res_moved = magneto_structural_correlations(moved, calculator=calc, n_bootstrap=300)
    assert res_moved.D == pytest.approx(res.D, abs=1e-8)
    for k in res.stats:
        assert np.isfinite(res.stats[k]["r"]) and abs(res.stats[k]["r"]) > 0.1
        for key in ("r", "slope", "ci_low", "ci_high"):
            assert res_moved.stats[k][key] == pytest.approx(res.stats[k][key], abs=1e-9), (k, key)
    # the same frames from a trajectory file (8 decimals), charge and spin from the arguments
    for m in moved:
        m.info = {}
    write(tmp_path / "traj.extxyz", moved)
    res2 = magneto_structural_correlations(tmp_path / "traj.extxyz", calculator=calc,
                                           charge=-2, multiplicity=4, n_bootstrap=300)
    assert res2.D_from == "calculator LigandFieldCalculator" and not res2.skipped
    assert res2.D == pytest.approx(res.D, abs=1e-5)
    assert res2.r("q_tet") == pytest.approx(res.r("q_tet"), abs=1e-7)
    # files: npz + json round trip and one scatter PNG per feature
    res.save(tmp_path / "corr")
    back = CorrelationResult.load(tmp_path / "corr")
    assert back.D == pytest.approx(res.D)
    assert back.stats["q_tet"]["r"] == pytest.approx(res.r("q_tet"))
    assert back.literature["r"] == LITERATURE["r"] == {"d_ML_mean_A": -0.22, "q_tet": 0.88}
    files = res.plot(tmp_path)
    assert len(files) == 3 and all(p.read_bytes()[:8] == PNG for p in files)


def test_pearson_against_numpy_and_degenerate_inputs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    st = pearson(x, y, n_bootstrap=1000)
    assert st["r"] == pytest.approx(np.corrcoef(x, y)[0, 1], rel=1e-12)
    assert st["ci_low"] < st["r"] < st["ci_high"]
    # Fisher: the 95 % interval is about 2 x 1.96 (1 - r^2) / sqrt(n) wide
    width = 2 * 1.96 * (1 - st["r"] ** 2) / np.sqrt(200)
    assert st["ci_high"] - st["ci_low"] == pytest.approx(width, rel=0.3)
    assert np.isnan(pearson(np.ones(10), y[:10])["r"])
    with pytest.raises(ValueError, match="only 0 structures with D"):
        magneto_structural_correlations([Atoms("Co")] * 3)
