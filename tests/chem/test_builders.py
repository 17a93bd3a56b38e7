"""Builders of molmag.chem.builders: coordination geometries, charges and spins, the
[Co(pdms)2]2- structure against the reference, the GAUSS-II Dy(H2O)5L2 template, errors and
`molmag build`."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import typer
from ase.io import read
from typer.testing import CliRunner

from molmag.chem import builders
from molmag.chem.builders import BUILDERS, build, build_dy_h2o5l2, parse_ligand
from molmag.chem.xtb import RelaxationError
from molmag.physics.crystal_field import CrystalFieldCalculator
from molmag.physics.ligand_field import LigandFieldCalculator

TETRAHEDRAL = math.degrees(math.acos(-1.0 / 3.0))  # 109.47


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread():
    """xTB (tblite, OpenMP) on one thread in this module: on a small shared machine an
    OpenMP team that spin-waits for a busy core makes each SCF 10-20x slower."""
    try:
        import tblite.interface  # noqa: F401  (loads libgomp, so that it can be limited)
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def angles(atoms, m, donors):
    return {(i, j): atoms.get_angle(i, m, j) for i, j in itertools.combinations(donors, 2)}


def twist_deg(atoms, metal, top, bottom) -> float:
    """Mean twist (degrees) of the triangle ``top`` against ``bottom`` about the axis through
    their centroids: 0 for a trigonal prism, 60 for an octahedron."""
    p = atoms.positions
    axis = p[top].mean(0) - p[bottom].mean(0)
    axis /= np.linalg.norm(axis)
    ex = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    ex /= np.linalg.norm(ex)
    ey = np.cross(axis, ex)

    def az(i):
        v = p[i] - p[metal]
        return math.degrees(math.atan2(v @ ey, v @ ex))

    out = []
    for i in top:
        d = [abs((az(i) - az(j) + 180.0) % 360.0 - 180.0) for j in bottom]
        out.append(min(d))
    return float(np.mean(out))


def test_twist_helper_on_ideal_octahedron():
    from ase import Atoms

    octa = Atoms("FeCl6", positions=[[0, 0, 0], [2.4, 0, 0], [0, 2.4, 0], [0, 0, 2.4],
                                    [-2.4, 0, 0], [0, -2.4, 0], [0, 0, -2.4]])
    # faces (1, 2, 3) and (4, 5, 6) are trans: staggered by 60 degrees
    assert twist_deg(octa, 0, [1, 2, 3], [4, 5, 6]) == pytest.approx(60.0, abs=1e-6)


# --- metal chlorides ----------------------------------------------------------------------
def _common(atoms, name, formula, charge, mult, relaxed=True):
    assert atoms.get_chemical_formula() == formula
    assert atoms.info["name"] == name
    assert atoms.info["charge"] == charge and atoms.info["multiplicity"] == mult
    assert atoms.info["metal_index"] == 0 and atoms[0].symbol in ("Fe", "Co", "Dy")
    assert atoms.info["relaxed"] is relaxed
    if relaxed:
        assert atoms.info["relax_energy_eV"] < 0 and atoms.info["relax_steps"] >= 1
        assert atoms.info["relax_fmax_eV_A"] < 0.05


def test_fecl5_trigonal_bipyramid():
    a = build("fecl5")
    _common(a, "fecl5", "Cl5Fe", -2, 6)
    ang = angles(a, 0, range(1, 6))
    assert ang[(1, 2)] == pytest.approx(180.0, abs=1.0)                  # axial-axial
    for ax, eq in itertools.product((1, 2), (3, 4, 5)):
        assert ang[(min(ax, eq), max(ax, eq))] == pytest.approx(90.0, abs=1.0)
    for i, j in itertools.combinations((3, 4, 5), 2):
        assert ang[(i, j)] == pytest.approx(120.0, abs=1.0)
    d = a.get_distances(0, range(1, 6))
    assert 2.1 < d.min() and d.max() < 2.6
    # D3h: the ligand field's D tensor is axial (E = 0) with its unique axis along Fe-Cl(ax)
    a.calc = LigandFieldCalculator()
    assert a.calc.get_property("zfs_E", a) == pytest.approx(0.0, abs=1e-6)


def test_fecl6_stays_a_trigonal_prism():
    a = build("fecl6")
    _common(a, "fecl6", "Cl6Fe", -3, 6)
    assert a.info["prism_constrained"] is True
    assert twist_deg(a, 0, [1, 2, 3], [4, 5, 6]) == pytest.approx(0.0, abs=0.5)
    d = a.get_distances(0, range(1, 7))
    assert np.ptp(d) < 0.01 and 2.2 < d.mean() < 2.7
    # what the ligand-field engine sees: six Cl donors in D3h -> axial D tensor along C3 (z)
    a.calc = LigandFieldCalculator()
    assert len(a.calc.get_property("zfs_tensor", a)) == 3
    assert [d.kind for d in a.calc.model.donors] == ["Cl"] * 6
    t = a.calc.get_property("zfs_tensor", a)
    assert a.calc.get_property("zfs_E", a) == pytest.approx(0.0, abs=1e-6)
    assert abs(t[0, 2]) < 1e-8 and abs(t[1, 2]) < 1e-8 and t[0, 0] == pytest.approx(t[1, 1])


def test_fecl6_template_is_an_ideal_prism():
    a = build("fecl6", relax=False)
    assert a.info["relaxed"] is False and "relax_energy_eV" not in a.info
    assert twist_deg(a, 0, [1, 2, 3], [4, 5, 6]) == pytest.approx(0.0, abs=1e-9)
    # square side faces: vertical edge = triangle edge
    assert a.get_distance(1, 4) == pytest.approx(a.get_distance(1, 2), abs=1e-9)
    assert np.allclose(a.get_distances(0, range(1, 7)), 2.40)


def test_cocl4_tetrahedron():
    a = build("cocl4")
    _common(a, "cocl4", "Cl4Co", -2, 4)
    for v in angles(a, 0, range(1, 5)).values():
        assert v == pytest.approx(TETRAHEDRAL, abs=0.5)
    a.calc = LigandFieldCalculator()
    assert a.calc.get_property("zfs_D", a) == pytest.approx(0.0, abs=1e-6)  # Td: no ZFS
    assert a.calc.model.ion == "Co2+"


# --- [Co(pdms)2]2- ------------------------------------------------------------------------
def _chelate_normal(atoms, n1, n2):
    p = atoms.positions
    return np.cross(p[n1] - p[0], p[n2] - p[0])


def _co_n_geometry(atoms, donors):
    d = atoms.get_distances(0, donors)
    ang = angles(atoms, 0, donors)
    return d, ang


@pytest.fixture(scope="module")
def co_pdms():
    return build("co-pdms")


def test_pdms_smiles_is_the_dianion_of_h2pdms():
    from rdkit import Chem
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    assert CalcMolFormula(Chem.MolFromSmiles(builders.H2PDMS_SMILES)) == "C8H12N2O4S2"
    assert CalcMolFormula(Chem.MolFromSmiles(builders.PDMS_SMILES)) == "C8H10N2O4S2-2"


def test_co_pdms_template():
    a = build("co-pdms", relax=False)
    _common(a, "co-pdms", "C16H20CoN4O8S4", -2, 4, relaxed=False)
    donors = a.info["donor_indices"]
    assert [a[i].symbol for i in donors] == ["N"] * 4
    assert np.allclose(a.get_distances(0, donors), 2.0, atol=1e-6)
    na, nb = _chelate_normal(a, *donors[:2]), _chelate_normal(a, *donors[2:])
    cos = abs(na @ nb) / np.linalg.norm(na) / np.linalg.norm(nb)
    assert cos < 1e-6                                   # chelate planes perpendicular
    # no clashes: every non-bonded contact with the other ligand or with Co is > 1.5 A
    assert a.info["min_contact_A"] > 1.5
    # deterministic
    b = build("co-pdms", relax=False)
    assert np.array_equal(a.positions, b.positions)


@pytest.mark.shared_data
def test_co_pdms_matches_reference(co_pdms, shared_data):
    ref = read(shared_data / "copdms" / "copdms_configurations_1200.xyz", index=0)
    a = co_pdms
    _common(a, "co-pdms", "C16H20CoN4O8S4", -2, 4)
    assert a.get_chemical_formula() == ref.get_chemical_formula() == "C16H20CoN4O8S4"
    assert ref[0].symbol == "Co"
    ref_n = [i for i in range(len(ref)) if ref[i].symbol == "N"]
    d_ref, ang_ref = _co_n_geometry(ref, ref_n)
    d, ang = _co_n_geometry(a, a.info["donor_indices"])
    # reference frame 0: Co-N 2.001 1.950 1.975 2.173 (mean 2.025); intraligand N-Co-N
    # 82.6 and 83.0, interligand 120.5-127.3 degrees
    assert d_ref.mean() == pytest.approx(2.025, abs=1e-3)
    assert np.all(np.abs(d - d_ref.mean()) < 0.1)
    assert d.mean() == pytest.approx(d_ref.mean(), abs=0.05)

    def split(atoms, ns, ang_map):
        intra, inter = [], []
        for (i, j), v in ang_map.items():
            same = atoms.get_distance(i, j) < 3.0          # N...N of one chelate ~2.6-2.8 A
            (intra if same else inter).append(v)
        return sorted(intra), sorted(inter)

    intra_ref, inter_ref = split(ref, ref_n, ang_ref)
    intra, inter = split(a, a.info["donor_indices"], ang)
    assert len(intra) == len(intra_ref) == 2 and len(inter) == 4
    assert intra_ref == pytest.approx([82.56, 83.05], abs=0.01)
    assert intra == pytest.approx(intra_ref, abs=5.0)
    assert inter == pytest.approx(inter_ref, abs=8.0)
    # pseudo-tetrahedral, not square planar: all interligand angles well above 100 degrees
    assert min(inter) > 110.0
    # the four N stay the donors: no other heavy atom within 2.6 A of Co
    others = [i for i in range(1, len(a)) if i not in a.info["donor_indices"]
              and a.numbers[i] != 1]
    assert a.get_distances(0, others).min() > 2.6


# --- Dy(H2O)5L2 ---------------------------------------------------------------------------
LIGANDS = {"O=P(C)(C)C": (0, 3, "O"), "[O-]c1ccccc1": (-1, 1, "O")}


def _equatorial_geometry(atoms):
    eq = atoms.info["equatorial_indices"]
    p = atoms.positions[eq] - atoms.positions[0]
    c = p.mean(0)
    _, _, vt = np.linalg.svd(p - c)
    out_of_plane = np.abs((p - c) @ vt[2]).max()
    az = np.sort(np.degrees(np.arctan2((p - c) @ vt[1], (p - c) @ vt[0])) % 360.0)
    gaps = np.diff(np.r_[az, az[0] + 360.0])
    return out_of_plane, gaps


@pytest.fixture(scope="module", params=list(LIGANDS))
def dy_complex(request):
    return request.param, build("dy-h2o5l2", ligand=request.param)


def test_dy_h2o5l2_relaxed(dy_complex):
    smiles, a = dy_complex
    q_lig, charge, donor = LIGANDS[smiles]
    _common(a, "dy-h2o5l2", a.get_chemical_formula(), charge, 6)
    assert a.info["ligand"] == smiles and a.info["donor_element"] == donor
    assert a.info["ligand_charge"] == q_lig
    assert a.info["relax_steps_constrained"] >= 1
    assert a.info["relax_steps"] > a.info["relax_steps_constrained"]
    # five equatorial O: planar, 72 degrees apart (after the FULL relaxation), at Dy-O(water)
    out_of_plane, gaps = _equatorial_geometry(a)
    assert out_of_plane < 0.1
    assert gaps == pytest.approx([72.0] * 5, abs=3.0)
    assert np.all((a.get_distances(0, a.info["equatorial_indices"]) > 2.2)
                  & (a.get_distances(0, a.info["equatorial_indices"]) < 2.7))
    ax = a.info["axial_indices"]
    assert [a[i].symbol for i in ax] == [donor, donor]
    assert a.get_angle(ax[0], 0, ax[1]) == pytest.approx(180.0, abs=10.0)
    assert np.all((a.get_distances(0, ax) > 1.8) & (a.get_distances(0, ax) < 2.6))


def test_dy_h2o5l2_crystal_field(dy_complex):
    """The crystal-field engine runs on the built complex: 16 states of J = 15/2 in 8 Kramers
    doublets, the ground one axial (two axial O donors, five weaker waters)."""
    smiles, a = dy_complex
    a.calc = CrystalFieldCalculator()
    states = a.calc.get_property("cf_energies", a)
    kd = a.calc.get_property("kd_energies", a)
    assert len(states) == 16 and len(kd) == 8
    assert np.allclose(states[0::2], states[1::2], atol=1e-6)          # Kramers pairs
    assert kd[0] == 0.0 and np.all(np.diff(kd) > -1e-9)
    assert kd[-1] > 100.0
    g = a.calc.get_property("g_tensors", a)[0]
    assert g[2] > 15.0 and g[0] < 1.0


def test_dy_h2o5l2_template():
    a = build_dy_h2o5l2("O=P(C)(C)C", relax=False)
    _common(a, "dy-h2o5l2", "C6H28DyO7P2", 3, 6, relaxed=False)
    out_of_plane, gaps = _equatorial_geometry(a)
    assert out_of_plane < 1e-9 and gaps == pytest.approx([72.0] * 5, abs=1e-9)
    eq = a.info["equatorial_indices"]
    assert eq == [1, 4, 7, 10, 13]
    assert np.allclose(a.get_distances(0, eq), builders.DY_WATER_DISTANCE)
    for o in eq:                                        # waters' H point away from Dy
        for h in (o + 1, o + 2):
            assert a[h].symbol == "H" and a.get_distance(0, h) > a.get_distance(0, o) + 0.4
    ax = a.info["axial_indices"]
    assert np.allclose(a.positions[ax, :2], 0.0, atol=1e-9)           # donors on the z axis
    assert np.allclose(np.abs(a.positions[ax, 2]), builders.DY_DONOR_DISTANCES["O"][1])
    # the ligand's atoms point away from Dy: the donor is its closest atom to Dy
    n_lig = (len(a) - 16) // 2
    for start in ax:
        d = a.get_distances(0, range(start, start + n_lig))
        assert d.argmin() == 0
    assert a.info["min_contact_A"] > 2.0
    assert np.array_equal(a.positions, build_dy_h2o5l2("O=P(C)(C)C", relax=False).positions)


@pytest.mark.parametrize("smiles, charge, donor", [
    ("n1ccccc1", 3, "N"), ("OC", 3, "O"), ("[O-]C(C)(C)C", 1, "O"), ("[Cl-]", 1, "Cl"),
    ("[S-]c1ccccc1", 1, "S"),
])
def test_dy_h2o5l2_other_donors(smiles, charge, donor):
    a = build_dy_h2o5l2(smiles, relax=False)
    assert a.info["charge"] == charge and a.info["donor_element"] == donor
    assert a.info["multiplicity"] == 6
    assert [a[i].symbol for i in a.info["axial_indices"]] == [donor, donor]


@pytest.mark.parametrize("smiles, match", [
    ("O=P(C)(C", "invalid ligand SMILES 'O=P\\(C\\)\\(C'"),
    ("CCO", "first atom, C, .*not a donor"),
    ("c1ccncc1", "first atom, C"),
    ("[N+](C)(C)(C)C", "no lone pair"),
    ("S(=O)(=O)(C)C", "no lone pair"),
    ("[O-]c1ccccc1.[Na+]", "2 disconnected fragments"),
    ("[O]C", "radical"),
    ("O[Fe]", "metal"),
    ("", "empty"),
])
def test_dy_ligand_errors(smiles, match):
    with pytest.raises(ValueError, match=match):
        build_dy_h2o5l2(smiles, relax=False)
    with pytest.raises(ValueError):
        parse_ligand(smiles)


def test_dy_relaxation_failure_names_the_ligand():
    with pytest.raises(RelaxationError, match=r"O=P\(C\)\(C\)C"):
        build_dy_h2o5l2("O=P(C)(C)C", steps=1)


def test_build_entry_point_errors():
    assert set(BUILDERS) == {"fecl5", "fecl6", "cocl4", "co-pdms", "dy-h2o5l2", "ligand", "co-l4"}
    with pytest.raises(ValueError, match="unknown structure 'fecl7'.*fecl5, fecl6, cocl4"):
        build("fecl7")
    with pytest.raises(ValueError, match="needs a ligand"):
        build("dy-h2o5l2", relax=False)
    with pytest.raises(ValueError, match="takes no ligand"):
        build("cocl4", ligand="O", relax=False)
    with pytest.raises(ValueError, match="fmax"):
        build("cocl4", fmax=0.0)
    with pytest.raises(ValueError, match="arrangement"):
        build("co-pdms", arrangement="Td", relax=False)
    assert build("CoCl4", relax=False).info["name"] == "cocl4"
    assert build("co_pdms", relax=False).info["name"] == "co-pdms"


# --- CLI ----------------------------------------------------------------------------------
@pytest.fixture
def cli():
    from molmag.cli.build import build as build_cmd

    app = typer.Typer()
    app.command("build")(build_cmd)

    @app.callback()
    def _root():
        """test app"""

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["build", *map(str, args)])


def test_cli_build_named_and_read_back(cli, tmp_path):
    from molmag.io.extxyz import read_records

    out = tmp_path / "cocl4.xyz"
    res = cli("cocl4", "--out", out)
    assert res.exit_code == 0, res.output
    assert "Cl4Co" in res.output and "charge -2" in res.output and "multiplicity 4" in res.output
    assert "steps" in res.output and "Co-donor distances" in res.output
    (rec,) = list(read_records(out))
    assert (rec.charge, rec.multiplicity, rec.metal_index) == (-2, 4, 0)
    assert rec.labels["energy"] < 0 and rec.provenance["energy"].method == "GFN2-xTB"
    assert np.allclose(rec.atoms.get_distances(0, range(1, 5)), 2.263, atol=0.02)


def test_cli_build_dy_no_relax(cli, tmp_path):
    from molmag.io.extxyz import read_records

    out = tmp_path / "sub" / "dy.extxyz"
    res = cli("dy-h2o5l2", "--ligand", "[O-]c1ccccc1", "--out", out, "--no-relax")
    assert res.exit_code == 0, res.output
    assert "charge +1" in res.output and "multiplicity 6" in res.output
    assert "not relaxed" in res.output
    (rec,) = list(read_records(out))
    assert (rec.charge, rec.multiplicity, rec.metal_index) == (1, 6, 0)
    assert rec.labels == {}
    info = read(out).info
    assert info["ligand"] == "[O-]c1ccccc1" and list(info["donors"]) == [1, 4, 7, 10, 13, 16, 28]


@pytest.mark.parametrize("args, message", [
    (("fecl7",), "unknown structure 'fecl7'; choose one of: fecl5, fecl6, cocl4, co-pdms"),
    (("dy-h2o5l2",), "needs a ligand"),
    (("dy-h2o5l2", "--ligand", "CCO"), "not a donor"),
    (("dy-h2o5l2", "--ligand", "xyz("), "invalid ligand SMILES"),
    (("cocl4", "--fmax", "-1"), "--fmax must be positive"),
])
def test_cli_build_errors(cli, tmp_path, args, message):
    res = cli(*args, "--out", tmp_path / "x.xyz")
    assert res.exit_code == 1
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "x.xyz").exists()
