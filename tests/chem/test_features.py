"""Structural features: analytic limits, invariances, errors, the CLI, and the [Co(pdms)2]2- MD
frames of Zaverkin et al. 2022."""

import csv
import json

import numpy as np
import pytest
import typer
from ase import Atoms
from ase.io import write
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from molmag.chem.features import (
    _q_tet,
    donor_indices,
    features_table,
    intraligand_angles,
    ligand_fragments,
    metal_donor_distances,
    pentagonal_bipyramid_features,
    planarity,
    structure_features,
    tetrahedral_order_parameter,
)
from molmag.cli.features import features
from molmag.io import Dataset, Record

TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)


def co_n4(directions, d=2.0) -> Atoms:
    return Atoms("CoN4", positions=np.vstack([[0, 0, 0], d * np.asarray(directions)]))


def chelate(alpha=85.0, beta=95.0) -> Atoms:
    """Co with two N-C-C-N chelates, bite angles alpha (xy plane, +x side) and beta (xz plane,
    -x side), Co-N = 2.0 Angstrom, N-C = 1.47, C-C = 1.54 Angstrom; the C atoms (about 2.8
    Angstrom from Co) are second shell."""
    def ligand(bite):
        h = np.radians(bite) / 2
        n1 = 2.0 * np.array([np.cos(h), np.sin(h), 0])
        n2 = 2.0 * np.array([np.cos(h), -np.sin(h), 0])
        xc = n1[0] + np.sqrt(1.47**2 - (n1[1] - 0.77) ** 2)
        c1, c2 = np.array([xc, 0.77, 0.0]), np.array([xc, -0.77, 0.0])
        return np.array([n1, n2, c1, c2])

    second = ligand(beta)[:, [0, 2, 1]] * [-1, 1, 1]  # (x, y, z) -> (-x, z, y)
    pos = np.vstack([[0, 0, 0], ligand(alpha)[:2], second[:2], ligand(alpha)[2:], second[2:]])
    return Atoms("CoN4C4", positions=pos)


def pentagonal_bipyramid(z_eq=np.zeros(5), r_eq=2.35, r_ax=2.2) -> Atoms:
    """Dy, five equatorial O (heights z_eq), two axial O each with a P 1.5 Angstrom behind it
    and H atoms on the equatorial waters (neither may count as donors)."""
    t = 2 * np.pi * np.arange(5) / 5
    eq = np.column_stack([r_eq * np.cos(t), r_eq * np.sin(t), z_eq])
    ax = np.array([[0, 0, r_ax], [0, 0, -r_ax]])
    p = np.array([[0, 0, r_ax + 1.5], [0, 0, -r_ax - 1.5]])
    radial = np.column_stack([np.cos(t), np.sin(t), np.zeros(5)])
    h = np.vstack([eq + 0.96 * (radial * np.cos(0.9) + np.array([0, 0, s]) * np.sin(0.9))
                   for s in (1, -1)])
    return Atoms("DyO5O2P2H10", positions=np.vstack([[0, 0, 0], eq, ax, p, h]))


def moved(atoms: Atoms, seed: int) -> Atoms:
    """Rotated, translated and renumbered copy."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(atoms))
    rot = Rotation.random(random_state=seed).as_matrix()
    return Atoms(atoms.numbers[perm],
                 positions=atoms.positions[perm] @ rot.T + rng.normal(size=3) * 5)


def noisy(atoms: Atoms, seed: int, sigma=0.05) -> Atoms:
    a = atoms.copy()
    a.positions += np.random.default_rng(seed).normal(scale=sigma, size=a.positions.shape)
    return a


# --- analytic limits ------------------------------------------------------------------------
def test_q_is_one_for_a_tetrahedron_and_half_for_a_square_plane():
    q, d = tetrahedral_order_parameter(co_n4(TETRAHEDRON, 1.98))
    assert q == pytest.approx(1.0, abs=1e-12) and d == pytest.approx(1.98)
    square = [[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]]
    q, _ = tetrahedral_order_parameter(co_n4(square))
    assert q == pytest.approx(0.5, abs=1e-12)
    # random directions: <(cos + 1/3)^2> = 1/3 + 1/9 = 4/9 per pair, so <q> = 1 - 3/8 * 6 * 4/9 = 0
    v = np.random.default_rng(0).normal(size=(20000, 4, 3))
    q = _q_tet(v)
    assert abs(q.mean()) < 4 * q.std() / np.sqrt(len(q))


def test_distances_and_donors_exclude_the_second_shell():
    a = chelate()
    d, donors = metal_donor_distances(a)
    assert donors.tolist() == [1, 2, 3, 4] and np.allclose(d, 2.0)
    d, donors = metal_donor_distances(a, donors=[4, 1])
    assert donors.tolist() == [4, 1] and np.allclose(d, 2.0)
    pb = pentagonal_bipyramid()
    assert donor_indices(pb).tolist() == list(range(1, 8))  # not P (3.7 A), not H


def test_intraligand_angles_of_a_synthetic_chelate():
    a = chelate(85.0, 95.0)
    labels = ligand_fragments(a)
    assert labels[0] == -1 and labels[1] == labels[2] == labels[5]
    assert labels[3] == labels[4] != labels[1]
    ang, pairs = intraligand_angles(a)
    assert pairs.tolist() == [[1, 2], [3, 4]]
    assert ang == pytest.approx([85.0, 95.0], abs=1e-10)
    f = structure_features(a)
    assert f["n_intra_pairs"] == 2 and f["angle_intra_mean_deg"] == pytest.approx(90.0)
    assert f["angle_intra_min_deg"] == pytest.approx(85.0)
    assert f["angle_intra_max_deg"] == pytest.approx(95.0)
    # q from the six angles by hand: two bite angles, four inter-ligand angles
    u = a.positions[1:5] / 2.0
    cos = [u[i] @ u[j] for i in range(4) for j in range(i + 1, 4)]
    assert f["q_tet"] == pytest.approx(1 - 3 / 8 * sum((c + 1 / 3) ** 2 for c in cos))
    # monodentate donors: no pairs
    ang, pairs = intraligand_angles(co_n4(TETRAHEDRON))
    assert ang.shape == (0,) and pairs.shape == (0, 2)


def test_planarity_of_a_pentagon():
    pb = pentagonal_bipyramid()
    assert planarity(pb, [1, 2, 3, 4, 5]) == pytest.approx((0.0, 0.0), abs=1e-12)
    # heights h cos(2 theta_k) leave the least-squares plane at z = 0 (orthogonal to 1, cos, sin):
    # MPP = sqrt(<h^2 cos^2>) = h / sqrt(2); SDP = h (1 - cos(4 pi / 5)) = h (1 + cos 36 deg)
    h = 0.1
    z = h * np.cos(4 * np.pi * np.arange(5) / 5)
    pb = pentagonal_bipyramid(z)
    mpp, sdp = planarity(pb, [1, 2, 3, 4, 5])
    assert mpp == pytest.approx(h / np.sqrt(2), rel=1e-12)
    assert sdp == pytest.approx(h * (1 + np.cos(np.pi / 5)), rel=1e-12)
    # the fit plane is found whatever its orientation
    rot = Rotation.random(random_state=3).as_matrix()
    tilted = Atoms("O5", positions=pb.positions[1:6] @ rot.T + [3.0, -1.0, 7.0])
    assert planarity(tilted, range(5)) == pytest.approx((mpp, sdp), rel=1e-10)
    with pytest.raises(ValueError, match="3 or more distinct"):
        planarity(pb, [1, 2])


def test_pentagonal_bipyramid_features():
    f = pentagonal_bipyramid_features(pentagonal_bipyramid())
    assert f["angle_LML_axial_deg"] == pytest.approx(180.0)
    assert f["MPP_eq_A"] == pytest.approx(0, abs=1e-12)
    assert f["SDP_eq_A"] == pytest.approx(0, abs=1e-12)
    assert f["eq_angle_dev_deg"] == pytest.approx(0, abs=1e-10)
    assert (f["Z_axial_1"], f["Z_axial_2"]) == (8, 8)
    assert f["d_ML_axial_mean_A"] == pytest.approx(2.2)
    assert f["d_ML_eq_mean_A"] == pytest.approx(2.35)

    h = 0.1
    z = h * np.cos(4 * np.pi * np.arange(5) / 5)
    pb = pentagonal_bipyramid(z)
    pb.numbers[6] = 7  # one axial N
    pb.positions[6] = [0.3, 0.0, 2.2]  # tilted: L-M-L < 180
    f = pentagonal_bipyramid_features(pb)
    assert (f["Z_axial_1"], f["Z_axial_2"]) == (7, 8)
    assert f["angle_LML_axial_deg"] == pytest.approx(180 - np.degrees(np.arctan2(0.3, 2.2)))
    assert f["MPP_eq_A"] == pytest.approx(h / np.sqrt(2))
    assert f["SDP_eq_A"] == pytest.approx(h * (1 + np.cos(np.pi / 5)))
    eq = pb.positions[1:6]
    u = eq / np.linalg.norm(eq, axis=1)[:, None]
    adjacent = np.degrees(np.arccos([u[k] @ u[(k + 1) % 5] for k in range(5)]))
    assert f["eq_angle_dev_deg"] == pytest.approx(np.mean(np.abs(adjacent - 72)), rel=1e-10)
    assert f["eq_angle_dev_deg"] > 0


def test_all_features_are_invariant_under_rotation_translation_and_renumbering():
    for base in (noisy(chelate(), 1), noisy(pentagonal_bipyramid(), 2),
                 noisy(co_n4(TETRAHEDRON), 3)):
        ref = structure_features(base)
        for seed in range(4):
            f = structure_features(moved(base, seed))
            assert f.keys() == ref.keys()
            for k in ref:
                assert f[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12), k
    pb = noisy(pentagonal_bipyramid(), 5)
    assert "angle_LML_axial_deg" in structure_features(pb) and "q_tet" not in structure_features(pb)


def test_features_table_matches_single_structures_and_mixes_complexes():
    items = [noisy(chelate(), s) for s in range(5)] + [noisy(pentagonal_bipyramid(), 9)]
    items.append(Record(noisy(chelate(), 7), charge=-2, multiplicity=4))
    rows = features_table(items)
    for item, row in zip(items, rows):
        ref = structure_features(getattr(item, "atoms", item))
        assert row.keys() == ref.keys()
        assert all(row[k] == pytest.approx(ref[k], rel=1e-12) for k in ref)


def test_errors_name_the_structure_and_the_count():
    with pytest.raises(ValueError, match=r"H10DyO7P2.*needs 4 donors, Dy0 has 7"):
        tetrahedral_order_parameter(pentagonal_bipyramid())
    with pytest.raises(ValueError, match=r"CoN4.*needs 7 donors, Co0 has 4 \(N1, N2, N3, N4\)"):
        pentagonal_bipyramid_features(co_n4(TETRAHEDRON))
    with pytest.raises(ValueError, match="no d/f-block atom"):
        structure_features(Atoms("N2", positions=[[0, 0, 0], [0, 0, 1.1]]))
    with pytest.raises(ValueError, match="no atom is bonded to Co0"):
        structure_features(co_n4(TETRAHEDRON, 4.0))
    with pytest.raises(ValueError, match="metal index 9 is not an atom index"):
        structure_features(co_n4(TETRAHEDRON), metal_index=9)
    with pytest.raises(ValueError, match="must be distinct"):
        metal_donor_distances(co_n4(TETRAHEDRON), donors=[1, 1, 2])
    with pytest.raises(ValueError, match=r"structure frame 1: CoN4.*no atom is bonded"):
        features_table([co_n4(TETRAHEDRON), co_n4(TETRAHEDRON, 4.0)], names=["frame 0", "frame 1"])


# --- CLI --------------------------------------------------------------------------------------
cli = typer.Typer()
cli.callback()(lambda: None)
cli.command("features")(features)
runner = CliRunner()


def run(*args, ok=True):
    r = runner.invoke(cli, ["features", *map(str, args)])
    if ok:
        assert r.exit_code == 0, r.output
    return r


def test_cli_on_an_xyz_file(tmp_path):
    frames = [noisy(chelate(), s, 0.02) for s in range(3)]
    xyz = tmp_path / "co.xyz"
    write(xyz, frames)
    r = run(xyz)
    assert "q_tet" in r.output and "angle_intra_mean_deg" in r.output and "C4CoN4" in r.output
    out = json.loads(run(xyz, "--json").stdout)
    assert out["structures"] == 3 and out["rows"][2]["frame"] == 2
    q_tet = structure_features(frames[1])["q_tet"]
    assert out["rows"][1]["q_tet"] == pytest.approx(q_tet, rel=1e-6)
    assert out["summary"]["d_ML_mean_A"]["n"] == 3
    # many frames: summary statistics and every row in the CSV
    write(xyz, [noisy(chelate(), s, 0.02) for s in range(25)])
    r = run(xyz, "--out", tmp_path / "f.csv")
    assert "summary" in r.output and "wrote 25 rows" in r.output
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert len(rows) == 25 and rows[24]["frame"] == "24" and float(rows[0]["n_donors"]) == 4


def test_cli_on_a_dataset(tmp_path):
    db = tmp_path / "d.db"
    ds = Dataset(db)
    ds.add_many([Record(noisy(chelate(), s, 0.02), charge=-2, multiplicity=4, split="train")
                 for s in range(2)]
                + [Record(pentagonal_bipyramid(), charge=1, multiplicity=6, split="test")])
    out = json.loads(run(db, "--json").stdout)
    assert [r["id"] for r in out["rows"]] == [1, 2, 3]
    assert out["rows"][2]["angle_LML_axial_deg"] == pytest.approx(180.0)
    out = json.loads(run(db, "--select", "split=test", "--json").stdout)
    assert out["structures"] == 1 and out["rows"][0]["formula"] == "H10DyO7P2"
    assert "MPP_eq_A" in run(db, "--select", "split=test").output
    r = run(db, "--select", "split=test", "--metal-index", 99, ok=False)
    assert r.exit_code == 1 and "row 3 of" in r.output
    assert "metal index 99 is not an atom index" in r.output


def test_cli_errors(tmp_path):
    r = run(tmp_path / "nope.xyz", ok=False)
    assert r.exit_code == 1 and "no structure file" in r.output
    r = run(tmp_path / "nope.db", ok=False)
    assert r.exit_code == 1 and "no dataset" in r.output
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\n\nCo 0 0 0\nN 0 0 x\n")
    r = run(bad, ok=False)
    assert r.exit_code == 1 and "bad.xyz" in r.output
    xyz = tmp_path / "n2.xyz"
    write(xyz, Atoms("N2", positions=[[0, 0, 0], [0, 0, 1.1]]))
    r = run(xyz, ok=False)
    assert r.exit_code == 1 and "frame 0 of" in r.output and "no d/f-block atom" in r.output
    r = run(xyz, "--select", "split=train", ok=False)
    assert r.exit_code == 1 and "datasets" in r.output


# --- reference data ---------------------------------------------------------------------------
@pytest.mark.shared_data
def test_copdms_md_frames(shared_data):
    from ase.io import read

    frames = read(shared_data / "copdms" / "copdms_configurations_1200.xyz", index=":")
    assert len(frames) == 1200 and len(frames[0]) == 53 and frames[0][0].symbol == "Co"
    rows = features_table(frames)
    for a in frames[::100]:
        d, donors = metal_donor_distances(a)
        assert a.numbers[donors].tolist() == [7, 7, 7, 7]
        ang, pairs = intraligand_angles(a)
        assert len(ang) == 2
    assert all(r["n_donors"] == 4 and r["n_intra_pairs"] == 2 for r in rows)
    d = np.array([r["d_ML_mean_A"] for r in rows])
    ang = np.array([r["angle_intra_mean_deg"] for r in rows])
    q = np.array([r["q_tet"] for r in rows])
    print(f"\n[Co(pdms)2]2-, {len(rows)} frames: <d_CoN> = {d.mean():.4f} A, "
          f"<N-Co-N intraligand> = {ang.mean():.2f} deg, <q> = {q.mean():.4f} "
          f"(q range {q.min():.3f}..{q.max():.3f})")
    assert 1.95 < d.mean() < 2.05
    # five-membered N-C-C-N chelate rings: well below the tetrahedral 109.5
    assert 75 < ang.mean() < 90
    assert 0.5 < q.mean() < 1.0 and 0.5 < q.min() and q.max() < 1.0  # between square plane and Td


def test_donors_first_and_tag_keep_the_reference_donors():
    """A displaced non-donor moving into bonding range is not a donor of a sample."""
    from ase import Atoms

    from molmag.chem.features import features_table
    from molmag.io.records import Record

    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    ref = Atoms("CoCl4Ar", positions=np.vstack([[0, 0, 0], 2.28 * v, [[0, 0, 4.5]]]))
    near = ref.copy()
    near.positions[5] = [0, 0, 2.3]
    assert [r["n_donors"] for r in features_table([ref, near])] == [4, 5]
    assert [r["n_donors"] for r in features_table([ref, near], donors="first")] == [4, 4]
    assert [r["n_donors"] for r in features_table([near], donors=[1, 2, 3, 4])] == [4]
    recs = [Record(a, charge=-2, multiplicity=4, tags={"donors": "1,2,3,4"}) for a in (ref, near)]
    rows = features_table(recs)
    assert [r["n_donors"] for r in rows] == [4, 4]
    assert rows[0]["q_tet"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="donors must be"):
        features_table([ref], donors="nearest")
