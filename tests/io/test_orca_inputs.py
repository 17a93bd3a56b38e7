"""ORCA input writers (molmag.io.orca.inputs): the reference methods of the seed papers."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from molmag.io.orca.inputs import (
    METHODS,
    basis_assignment,
    equatorial_donors,
    n_spin_states,
    orca_input,
    pentagon_constraints,
    write_orca_inputs,
)
from molmag.io.records import structure_hash


# --- test structures --------------------------------------------------------------------
def cocl4() -> Atoms:
    """Tetrahedral [CoCl4]2-, Co-Cl 2.28 Angstrom (97 electrons: quartet allowed)."""
    d = 2.28 / np.sqrt(3.0)
    pos = [[0, 0, 0], [d, d, d], [d, -d, -d], [-d, d, -d], [-d, -d, d]]
    return Atoms("CoCl4", positions=pos, info={"charge": -2})


def co_mixed() -> Atoms:
    """A made-up Co complex with N, S, O, Cl, C and H (geometry irrelevant, far-apart atoms).
    Electrons: 27 + 7 + 16 + 8 + 17 + 6 + 1 = 82, charge -1 -> 83 (odd, quartet allowed)."""
    sym = ["Co", "N", "S", "O", "Cl", "C", "H"]
    pos = [[0, 0, 0], [2.0, 0, 0], [0, 2.3, 0], [0, 0, 2.0], [-2.3, 0, 0], [3.2, 0.5, 0],
           [4.0, 1.0, 0.3]]
    return Atoms(sym, positions=pos, info={"charge": -1})


def dy_pbp(perm_seed: int | None = None) -> Atoms:
    """Dy(H2O)5(OH)2+ pentagonal bipyramid: Dy at the origin, five water O at 2.35 Angstrom in
    the xy plane at 72-degree steps (H-O-H 104.5 deg, H above/below the plane), two OH- at
    2.2 Angstrom on +-z.  133 electrons at charge +1 (odd: sextet allowed).  With ``perm_seed``
    the atoms are shuffled so that neither Dy nor the ring sits at the usual indices."""
    sym, pos = ["Dy"], [np.zeros(3)]
    th = np.radians(104.5 / 2)
    z = np.array([0.0, 0.0, 1.0])
    for k in range(5):
        u = np.array([np.cos(np.radians(72 * k)), np.sin(np.radians(72 * k)), 0.0])
        o = 2.35 * u
        sym += ["O", "H", "H"]
        pos += [o, o + 0.96 * (np.cos(th) * u + np.sin(th) * z),
                o + 0.96 * (np.cos(th) * u - np.sin(th) * z)]
    for s in (1.0, -1.0):
        o = np.array([0.0, 0.0, 2.2 * s])
        sym += ["O", "H"]
        pos += [o, o + 0.96 * np.array([np.sin(np.radians(60)), 0.0, s * np.cos(np.radians(60))])]
    atoms = Atoms(sym, positions=np.array(pos), info={"charge": 1})
    if perm_seed is not None:
        perm = np.random.default_rng(perm_seed).permutation(len(atoms))
        atoms = atoms[perm]
        atoms.info["charge"] = 1
    return atoms


def parse_xyz(text: str):
    """Independent reader of the ``* xyz q m`` block: (charge, mult, symbols, positions)."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(r"^\*\s*xyz\s", ln))
    _, _, q, m = lines[start].split()
    syms, pos = [], []
    for ln in lines[start + 1:]:
        if ln.strip() == "*":
            break
        f = ln.split()
        syms.append(f[0])
        pos.append([float(x) for x in f[1:4]])
    return int(q), int(m), syms, np.array(pos)


def block(text: str, name: str) -> str:
    """Body of the top-level ``%name ... end`` block (nested ``end`` lines are indented)."""
    m = re.search(rf"^%{name}\n(.*?)^end$", text, flags=re.S | re.M | re.I)
    assert m, f"no %{name} block"
    return m.group(1)


def newgto(text: str) -> dict[str, str]:
    return dict(re.findall(r'NewGTO\s+(\w+)\s+"([^"]+)"\s+end', text))


# --- state counting ---------------------------------------------------------------------
def test_spin_state_counts_match_the_papers():
    assert n_spin_states(5, 7, 4) == 10      # d7 quartets
    assert n_spin_states(5, 7, 2) == 40      # d7 doublets
    assert n_spin_states(7, 9, 6) == 21      # f9 sextets (GAUSS-II)
    assert n_spin_states(7, 9, 4) == 224     # f9 quartets (GAUSS-II)
    assert n_spin_states(7, 9, 2) == 490
    assert n_spin_states(7, 9, 5) == 0       # wrong parity
    assert n_spin_states(5, 7, 6) == 0       # S = 5/2 impossible for d7


@pytest.mark.parametrize("norb", [1, 2, 3, 5, 7])
def test_spin_state_counts_exhaust_all_determinants(norb):
    # sum over S of (2S+1) x (number of S states) = number of determinants C(2n, N)
    for nel in range(0, 2 * norb + 1):
        total = sum(m * n_spin_states(norb, nel, m) for m in range(1, nel + 2))
        assert total == math.comb(2 * norb, nel)


# --- co-casscf ---------------------------------------------------------------------------
def test_co_casscf_input_keywords():
    text = orca_input(cocl4(), "co-casscf", nprocs=4, maxcore=3000)
    cas = block(text, "casscf")
    assert re.search(r"^\s*nel 7$", cas, re.M) and re.search(r"^\s*norb 5$", cas, re.M)
    assert re.search(r"^\s*mult 4, 2$", cas, re.M)
    assert re.search(r"^\s*nroots 10, 40$", cas, re.M)
    assert re.search(r"^\s*actorbs dorbs$", cas, re.M)
    assert re.search(r"^\s*trafostep ri$", cas, re.M)
    assert re.search(r"^\s*rel\n\s*dosoc true\n\s*end$", cas, re.M)
    assert "PTMethod" not in text and "aniso" not in text and "DKH" not in text
    bang = [ln for ln in text.splitlines() if ln.startswith("!")]
    assert len(bang) == 1 and bang[0].split()[1:3] == ["def2-SVP", "def2-TZVP/C"]
    assert "%maxcore 3000" in text and re.search(r"nprocs 4", block(text, "pal"))
    q, m, _, _ = parse_xyz(text)
    assert (q, m) == (-2, 4)


def test_co_basis_per_element():
    atoms = co_mixed()
    text = orca_input(atoms, "co-casscf")
    assert newgto(text) == {e: "def2-TZVP" for e in ("Co", "N", "S", "O", "Cl")}
    assignment = basis_assignment(atoms, "co-casscf")
    assert assignment["C"] == assignment["H"] == "def2-SVP"
    assert set(assignment) == {"Co", "N", "S", "O", "Cl", "C", "H"}
    # heavy elements keep their def2 ECP
    iodide = Atoms("CoI", positions=[[0, 0, 0], [2.6, 0, 0]], info={"charge": 1})  # [CoI]+
    assert 'NewECP I "def2-ECP" end' in orca_input(iodide, "co-casscf")
    assert "NewECP" not in text


def test_co_nevpt2_flag_adds_exactly_the_pt_line():
    plain = orca_input(cocl4(), "co-casscf")
    pt = orca_input(cocl4(), "co-casscf", nevpt2=True)
    extra = [ln for ln in pt.splitlines() if ln not in plain.splitlines()]
    assert [ln.strip() for ln in extra if not ln.startswith("#")] == ["PTMethod SC_NEVPT2"]
    assert "PTMethod SC_NEVPT2" in block(pt, "casscf")


def test_coordinates_round_trip_to_1e_6():
    atoms = co_mixed()
    atoms.positions = Rotation.from_euler("zyx", [31, -47, 112], degrees=True).apply(
        atoms.positions) + np.array([10.123456789, -3.3, 0.0000004])
    q, m, syms, pos = parse_xyz(orca_input(atoms, "co-casscf"))
    assert syms == atoms.get_chemical_symbols()
    assert np.max(np.abs(pos - atoms.positions)) < 1e-6
    # and the writer really writes these positions: moving one atom moves its line
    moved = atoms.copy()
    moved.positions[3, 1] += 2e-6
    assert abs(parse_xyz(orca_input(moved, "co-casscf"))[3][3, 1] - pos[3, 1] - 2e-6) < 1e-9


# --- dy-casscf ---------------------------------------------------------------------------
def test_dy_casscf_input_keywords():
    text = orca_input(dy_pbp(), "dy-casscf")
    cas = block(text, "casscf")
    assert re.search(r"^\s*nel 9$", cas, re.M) and re.search(r"^\s*norb 7$", cas, re.M)
    assert re.search(r"^\s*mult 6$", cas, re.M) and re.search(r"^\s*nroots 21$", cas, re.M)
    assert re.search(r"^\s*actorbs forbs$", cas, re.M)
    assert re.search(r"^\s*dosoc true$", cas, re.M)
    mltp = re.search(r"^\s*mltp (.*)$", cas, re.M).group(1)
    assert [int(x) for x in mltp.split(",")] == [2] * 8          # J = 15/2: 8 Kramers doublets
    assert re.search(r"^\s*doaniso true$", cas, re.M)
    assert re.search(r'^\s*CRYS_element "Dy"$', cas, re.M)
    assert re.search(r"^\s*CRYS_charge 3$", cas, re.M)
    rel = block(text, "rel")
    assert re.search(r"method DKH", rel) and re.search(r"picturechange 2", rel)
    bang = " ".join(ln for ln in text.splitlines() if ln.startswith("!")).split()
    assert "DKH" in bang and "DKH-def2-TZVPP" in bang
    assert newgto(text) == {"Dy": "SARC2-DKH-QZVP"}
    assert parse_xyz(text)[:2] == (1, 6)
    assert "PTMethod" not in text


def test_dy_quartets_nevpt2_and_aniso_flags():
    base = block(orca_input(dy_pbp(), "dy-casscf"), "casscf")
    quart = block(orca_input(dy_pbp(), "dy-casscf", quartets=True), "casscf")
    assert re.search(r"^\s*mult 6, 4$", quart, re.M)
    assert re.search(r"^\s*nroots 21, 224$", quart, re.M)
    assert "mult 6, 4" not in base
    pt = block(orca_input(dy_pbp(), "dy-casscf", nevpt2=True), "casscf")
    assert "PTMethod SC_NEVPT2" in pt and "PTMethod" not in base
    no_aniso = orca_input(dy_pbp(), "dy-casscf", single_aniso=False)
    assert "aniso" not in no_aniso and "dosoc true" in no_aniso


# --- dy-geometry: Y substitution and constraints ----------------------------------------
def test_y_substitution_replaces_only_the_metal():
    atoms = dy_pbp(perm_seed=3)
    metal = atoms.get_chemical_symbols().index("Dy")
    text = orca_input(atoms, "dy-geometry")
    q, m, syms, pos = parse_xyz(text)
    assert (q, m) == (1, 1)                  # Y3+ for Dy3+: same charge, closed shell
    expected = atoms.get_chemical_symbols()
    expected[metal] = "Y"
    assert syms == expected
    assert np.max(np.abs(pos - atoms.positions)) < 1e-6
    assert newgto(text) == {"Y": "SARC-DKH-TZVPP"}
    bang = " ".join(ln for ln in text.splitlines() if ln.startswith("!")).split()
    for kw in ("BP86", "D3BJ", "DKH", "DKH-def2-TZVPP", "TightSCF", "Opt"):
        assert kw in bang
    assert re.search(r"TolE 1e-8", block(text, "scf"))
    assert "%casscf" not in text
    assert atoms.get_chemical_symbols()[metal] == "Dy"   # the input structure is not modified


def _constraints(text):
    geom = block(text, "geom")
    angles = [tuple(map(float, c)) for c in re.findall(
        r"\{\s*A\s+(\d+)\s+(\d+)\s+(\d+)\s+([-\d.]+)\s+C\s*\}", geom)]
    dihedrals = [tuple(map(float, c)) for c in re.findall(
        r"\{\s*D\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([-\d.]+)\s+C\s*\}", geom)]
    return angles, dihedrals


@pytest.mark.parametrize("seed", [None, 1, 7])
def test_pentagon_constraints_reference_the_right_atoms(seed):
    atoms = dy_pbp(perm_seed=seed)
    metal = atoms.get_chemical_symbols().index("Dy")
    # the equatorial oxygens, found independently: O within 2.5 A of Dy and in the z = 0 plane
    eq = {i for i, a in enumerate(atoms) if a.symbol == "O" and abs(a.position[2]) < 1e-9}
    assert len(eq) == 5
    angles, dihedrals = _constraints(orca_input(atoms, "dy-geometry"))
    assert len(angles) == 4 and len(dihedrals) == 3
    edges = set()
    for i, m, j, value in angles:
        i, m, j = int(i), int(m), int(j)
        assert m == metal and {i, j} <= eq and value == 72.0
        assert abs(atoms.get_angle(i, m, j) - 72.0) < 1e-6     # neighbours, not 144-degree pairs
        edges.add(frozenset((i, j)))
    # four distinct neighbour pairs forming one path through all five oxygens
    assert len(edges) == 4 and set().union(*edges) == eq
    degree = [sum(i in e for e in edges) for i in eq]
    assert sorted(degree) == [1, 1, 2, 2, 2]
    for a, b, m, c, value in dihedrals:
        a, b, m, c = int(a), int(b), int(m), int(c)
        assert m == metal and {a, b, c} <= eq
        assert abs(((atoms.get_dihedral(a, b, m, c) - value) + 180) % 360 - 180) < 1e-6
    # the three dihedrals bring three different oxygens into the plane
    assert len({int(d[0]) for d in dihedrals}) == 3


def test_pentagon_constraints_fix_all_directions_and_no_more():
    """The 4 angles + 3 dihedrals are independent (rank 7) and leave free exactly the rigid
    motions and the five M-O stretches: 18 - 7 = 11 = 6 + 5."""
    atoms = dy_pbp()
    metal = 0
    ring = equatorial_donors(atoms, metal)
    lines = pentagon_constraints(metal, ring)
    idx = [metal] + ring
    sub = atoms[idx]
    local = {g: k for k, g in enumerate(idx)}
    parsed = [re.findall(r"\d+", ln) for ln in lines]

    def values(x):
        s = sub.copy()
        s.positions = x.reshape(-1, 3)
        out = []
        for ln, nums in zip(lines, parsed):
            k = [local[int(n)] for n in nums[:4 if ln.startswith("{ D") else 3]]
            if ln.startswith("{ A"):
                out.append(np.radians(s.get_angle(*k)))
            else:
                out.append(np.radians(s.get_dihedral(*k)))
        return np.array(out)

    x0 = sub.positions.ravel().copy()
    h = 1e-6
    jac = np.array([(values(x0 + h * e) - values(x0 - h * e)) / (2 * h) for e in np.eye(18)]).T
    assert np.linalg.matrix_rank(jac, tol=1e-5) == 7
    null = []
    for ax in np.eye(3):
        null.append(np.tile(ax, 6))                                # translations
        null.append(np.cross(ax, sub.positions).ravel())           # rotations
    for k in range(1, 6):                                          # M-O stretches
        v = np.zeros((6, 3))
        v[k] = sub.positions[k] - sub.positions[0]
        null.append(v.ravel())
    null = np.array(null)
    assert np.linalg.matrix_rank(null) == 11
    assert np.max(np.abs(jac @ null.T)) < 1e-6


def test_equatorial_donors_on_a_distorted_structure_and_without_waters():
    atoms = dy_pbp(perm_seed=5)
    metal = atoms.get_chemical_symbols().index("Dy")
    ring = equatorial_donors(atoms, metal)
    rng = np.random.default_rng(0)
    noisy = atoms.copy()
    noisy.positions += rng.normal(scale=0.05, size=noisy.positions.shape)
    ring2 = equatorial_donors(noisy, metal)
    assert ring2 == ring or ring2 == [ring[0]] + ring[1:][::-1]    # same cycle, either sense
    # neighbours in the cycle are 72 degrees apart in the ideal structure
    for k in range(5):
        assert abs(atoms.get_angle(ring[k], metal, ring[(k + 1) % 5]) - 72.0) < 1e-6
    # no water hydrogens: the two axial donors are found geometrically instead
    water_h = [i for i, a in enumerate(atoms) if a.symbol == "H" and 0.5 < abs(a.position[2]) < 1.0]
    bare = atoms[[i for i in range(len(atoms)) if i not in water_h]]
    assert len(water_h) == 10
    m2 = bare.get_chemical_symbols().index("Dy")
    eq = [i for i, a in enumerate(bare) if a.symbol == "O" and abs(a.position[2]) < 1e-9]
    assert sorted(equatorial_donors(bare, m2)) == sorted(eq)


# --- errors ------------------------------------------------------------------------------
def test_wrong_metal_is_an_error():
    with pytest.raises(ValueError, match=r"has no Co atom"):
        orca_input(dy_pbp(), "co-casscf", title="dy-sample")
    with pytest.raises(ValueError, match=r"dy-sample"):
        orca_input(dy_pbp(), "co-casscf", title="dy-sample")
    with pytest.raises(ValueError, match=r"has no Dy atom"):
        orca_input(cocl4(), "dy-casscf")
    with pytest.raises(ValueError, match=r"has no Dy atom"):
        orca_input(cocl4(), "dy-geometry")
    with pytest.raises(ValueError, match=r"atom 1 is Cl"):
        orca_input(cocl4(), "co-casscf", metal_index=1)
    two = cocl4() + Atoms("Co", positions=[[6.0, 0, 0]])
    two.info["charge"] = -1
    with pytest.raises(ValueError, match=r"2 Co atoms"):
        orca_input(two, "co-casscf")


def test_impossible_multiplicity_and_missing_charge():
    with pytest.raises(ValueError, match=r"impossible"):
        orca_input(cocl4(), "co-casscf", charge=-1)            # 96 electrons: no quartet
    with pytest.raises(ValueError, match=r"impossible"):
        orca_input(dy_pbp(), "dy-casscf", charge=0)            # 134 electrons: no sextet
    with pytest.raises(ValueError, match=r"impossible"):
        orca_input(dy_pbp(), "dy-geometry", charge=2)
    with pytest.raises(ValueError, match=r"multiplicity 4, not 2"):
        orca_input(cocl4(), "co-casscf", multiplicity=2)
    bare = cocl4()
    bare.info.clear()
    with pytest.raises(ValueError, match=r"charge is unknown"):
        orca_input(bare, "co-casscf")


def test_charge_and_multiplicity_sources():
    atoms = cocl4()
    atoms.info = {"total_charge": -2, "multiplicity": 4}
    assert parse_xyz(orca_input(atoms, "co-casscf"))[:2] == (-2, 4)
    atoms.info = {}
    atoms.set_initial_charges([2, -1, -1, -1, -1])
    assert parse_xyz(orca_input(atoms, "co-casscf"))[:2] == (-2, 4)
    assert parse_xyz(orca_input(cocl4(), "co-casscf", charge=-2))[:2] == (-2, 4)


def test_option_misuse_and_periodic_structures():
    with pytest.raises(ValueError, match=r"dy-casscf option"):
        orca_input(cocl4(), "co-casscf", quartets=True)
    with pytest.raises(ValueError, match=r"not 'dy-geometry'"):
        orca_input(dy_pbp(), "dy-geometry", nevpt2=True)
    with pytest.raises(ValueError, match=r"unknown method"):
        orca_input(cocl4(), "casscf")
    periodic = cocl4()
    periodic.cell = [10, 10, 10]
    periodic.pbc = True
    with pytest.raises(ValueError, match=r"periodic"):
        orca_input(periodic, "co-casscf")
    assert set(METHODS) >= {"co-casscf", "dy-casscf", "dy-geometry"}


# --- write_orca_inputs -------------------------------------------------------------------
def test_write_orca_inputs_folders_json_and_idempotence(tmp_path):
    structures = [cocl4(), co_mixed()]
    paths = write_orca_inputs(structures, tmp_path, "co-casscf", ids=[11, 12], nevpt2=True)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == \
        ["s00000/s00000.inp", "s00001/s00001.inp"]
    assert paths.written == list(paths) and paths.skipped == []
    for atoms, p, rid, q in zip(structures, paths, (11, 12), (-2, -1)):
        assert p.read_text() == orca_input(atoms, "co-casscf", nevpt2=True, title=p.stem)
        rec = json.loads((p.parent / "molmag.json").read_text())
        assert rec["method"] == "co-casscf" and rec["id"] == rid
        assert rec["charge"] == q and rec["multiplicity"] == 4
        assert rec["options"]["nevpt2"] is True
        assert rec["structure_hash"] == structure_hash(atoms, q, 4)
    # second call: nothing rewritten, hand edits survive
    p0 = paths[0]
    p0.write_text(p0.read_text() + "# edited by hand\n")
    again = write_orca_inputs(structures, tmp_path, "co-casscf", ids=[11, 12], nevpt2=True)
    assert list(again) == list(paths) and again.written == [] and again.skipped == list(paths)
    assert p0.read_text().endswith("# edited by hand\n")
    forced = write_orca_inputs(structures, tmp_path, "co-casscf", overwrite=True)
    assert forced.written == list(paths)
    assert "edited by hand" not in p0.read_text() and "PTMethod" not in p0.read_text()


def test_write_orca_inputs_names_and_validation(tmp_path):
    paths = write_orca_inputs([cocl4()], tmp_path, "co-casscf", names=["cocl4_a"])
    assert paths[0] == tmp_path / "cocl4_a" / "cocl4_a.inp" and paths[0].exists()
    with pytest.raises(ValueError, match=r"plain file names"):
        write_orca_inputs([cocl4()], tmp_path, "co-casscf", names=["../x"])
    with pytest.raises(ValueError, match=r"unique"):
        write_orca_inputs([cocl4(), cocl4()], tmp_path, "co-casscf", names=["a", "a"])
    # one bad structure: the error names it and nothing at all is written
    out = tmp_path / "batch"
    with pytest.raises(ValueError, match=r"structure #1 \(s00001\).*no Co atom"):
        write_orca_inputs([cocl4(), dy_pbp()], out, "co-casscf")
    assert not out.exists()


def test_write_dy_geometry_writes_both_steps(tmp_path):
    atoms = dy_pbp(perm_seed=2)
    (inp,) = write_orca_inputs([atoms], tmp_path, "dy-geometry", names=["dy1"], ids=[5])
    relax = inp.parent / "dy1_relax.inp"
    assert inp.exists() and relax.exists()
    first, second = inp.read_text(), relax.read_text()
    assert "Constraints" in first and "Constraints" not in second
    assert re.search(r"^\* xyzfile 1 1 dy1\.xyz$", second, re.M)
    assert '%moinp "dy1.gbw"' in second and "MORead" in second
    assert re.search(r"^!.*\bOpt\b", second, re.M)
    rec = json.loads((inp.parent / "molmag.json").read_text())
    assert (rec["charge"], rec["multiplicity"]) == (1, 6)
    assert (rec["orca_charge"], rec["orca_multiplicity"]) == (1, 1)
    assert rec["inputs"] == ["dy1.inp", "dy1_relax.inp"] and rec["id"] == 5
    assert rec["structure_hash"] == structure_hash(atoms, 1, 6)
