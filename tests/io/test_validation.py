"""validate_structure, the one gate for structures: each rule, valid structures, messages."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from molmag.io import DataFileError
from molmag.io.errors import StructureError
from molmag.io.provenance import Provenance
from molmag.io.records import Record, structure_hash
from molmag.io.validation import max_unpaired, open_shell_count, validate_structure


def cocl4(scale=1.0) -> Atoms:
    d = 2.28 / np.sqrt(3) * scale
    return Atoms("CoCl4", positions=[[0, 0, 0], [d, d, d], [-d, -d, d], [-d, d, -d], [d, -d, -d]])


def raises(atoms, match, **kw) -> StructureError:
    with pytest.raises(StructureError, match=match) as ei:
        validate_structure(atoms, source="x.xyz", frame=3, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("x.xyz, frame 3")
    return ei.value


def test_valid_structures_pass():
    validate_structure(cocl4(), charge=-2, multiplicity=4)
    validate_structure(cocl4(), charge="-2", multiplicity=4.0, oxidation_state=2)
    validate_structure(Atoms("Ce"), charge=3, multiplicity=2, oxidation_state=3)
    validate_structure(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), charge=0, multiplicity=1)
    validate_structure(Atoms("O2", positions=[[0, 0, 0], [0, 0, 1.21]]), charge=0, multiplicity=3)
    # Gd2+ (f7 d1) reaches 2S+1 = 9: allowed when the oxidation state is unknown
    validate_structure(Atoms("Gd"), charge=2, multiplicity=9)
    # periodic: minimum image
    a = Atoms("Fe", positions=[[0, 0, 0]], cell=np.eye(3) * 2.5, pbc=True)
    validate_structure(a)


def test_empty_and_nonfinite():
    e = raises(Atoms(), "contains no atoms")
    assert e.field == "positions" and isinstance(e, DataFileError) and isinstance(e, ValueError)
    for bad in (np.nan, np.inf, -np.inf):
        a = cocl4()
        a.positions[2, 1] = bad
        e = raises(a, r"atom 2 \(Cl\) has a non-finite coordinate")
        assert e.atoms == (2,) and e.field == "positions"
    a = cocl4()
    a.positions[[1, 3], 0] = np.nan
    raises(a, r"atom 1 \(Cl\).*and 1 more atoms")


def test_absurd_coordinates_and_extent():
    a = cocl4()
    a.positions[4] = [1e300, 0, 0]
    e = raises(a, r"atom 4 \(Cl\) lies at .* beyond 100000")
    assert e.atoms == (4,)
    a = cocl4()
    a.positions[3] += [0, 0, 2000.0]
    e = raises(a, r"spans 20\d\d(\.\d)? Angstrom along z .*more than 1000")
    assert set(e.atoms) == {3, 4} or 3 in e.atoms
    validate_structure(a, max_extent=None, min_distance=0.5)  # the check can be switched off
    a = Atoms("Fe", positions=[[0, 0, 0]], cell=[[np.nan, 0, 0], [0, 1, 0], [0, 0, 1]], pbc=True)
    raises(a, "cell")
    raises(Atoms("Fe", cell=np.zeros((3, 3)), pbc=True), "degenerate")


def test_close_contacts_name_both_atoms_and_distance():
    a = cocl4()
    a.positions[3] = a.positions[1] + [0.3, 0.0, 0.3]
    e = raises(a, r"atoms 1 \(Cl\) and 3 \(Cl\) are 0\.424 Angstrom apart \(closer than 0\.5\)")
    assert e.atoms == (1, 3)
    a = cocl4()
    a.positions[2] = a.positions[0]  # a donor on the metal
    e = raises(a, r"atoms 0 \(Co\) and 2 \(Cl\) are 0\.000 Angstrom apart")
    # the threshold is a parameter; the closest pair is reported
    a = cocl4()
    a.positions[4] = a.positions[0] + [1.0, 0, 0]
    raises(a, r"atoms 0 \(Co\) and 4 \(Cl\) are 1\.000", min_distance=1.5)
    validate_structure(a, min_distance=0.9)
    # periodic images count
    b = Atoms("Fe2", positions=[[0, 0, 0], [1.0, 0, 0]], cell=np.eye(3) * 1.3, pbc=True)
    raises(b, r"atoms 0 \(Fe\) and 1 \(Fe\) are 0\.300")
    # many atoms: the KD-tree branch finds the same pair
    rng = np.random.default_rng(0)
    pos = np.stack(np.meshgrid(*[np.arange(15) * 1.5] * 3), -1).reshape(-1, 3)
    big = Atoms(numbers=np.full(len(pos), 6), positions=pos + rng.uniform(-0.1, 0.1, pos.shape))
    validate_structure(big)
    big.positions[3001] = big.positions[17] + [0.2, 0, 0]
    raises(big, r"atoms 17 \(C\) and 3001 \(C\) are 0\.200")


def test_charge_rules():
    a = cocl4()
    e = raises(a, r"field 'charge': must be an integer, got -1\.5", charge=-1.5, multiplicity=4)
    assert e.field == "charge"
    raises(a, r"must be an integer, got 'abc'", charge="abc")
    raises(a, r"must be an integer, got nan", charge=float("nan"))
    raises(a, r"charge \+1000 leaves -905 electrons", charge=1000)
    raises(a, r"charge -40 on 5 atoms is more than .* \(at most 20", charge=-40)
    validate_structure(a, charge=-20)  # the bound itself is allowed


def test_multiplicity_rules_with_the_metal():
    a = cocl4()  # Co + 4 Cl: 95 electrons at charge 0
    raises(a, r"field 'multiplicity': must be >= 1, got 0", charge=-2, multiplicity=0)
    e = raises(a, r"multiplicity 3 is impossible with 97 electrons \(charge -2\): an odd count "
                  r"needs an even multiplicity", charge=-2, multiplicity=3)
    assert e.field == "multiplicity"
    # Co can hold 5 unpaired electrons, radical ligands 2 more: multiplicity 8 passes, 10 not
    validate_structure(a, charge=-2, multiplicity=8)
    e = raises(a, r"multiplicity 10 needs 9 unpaired electrons; the metal 0 \(Co\) can hold at "
                  r"most 5 in any oxidation state, plus 2 on radical ligands", charge=-2,
               multiplicity=10)
    assert e.atoms == (0,)
    # with the oxidation state: Co2+ is d7 (at most 3 unpaired: 2S+1 <= 4)
    validate_structure(a, charge=-2, multiplicity=4, oxidation_state=2)
    raises(a, r"Co\+2 \(d\^7, at most 3 unpaired electrons\), which cannot have multiplicity 6",
           charge=-2, multiplicity=6, oxidation_state=2)
    raises(a, r"would be Co\+12 \(charge \+8\), which has no d\^n configuration \(d\^-3\)",
           charge=8, multiplicity=2, oxidation_state=12)
    # Dy3+ f9: 2S+1 <= 6
    validate_structure(Atoms("Dy"), charge=3, multiplicity=6, oxidation_state=3)
    raises(Atoms("Dy"), r"f\^9, at most 5 unpaired", charge=3, multiplicity=8, oxidation_state=3)
    # no metal: only electrons bound it
    raises(Atoms("H"), r"multiplicity 4 needs 3 unpaired electrons; charge \+0 leaves 1",
           charge=0, multiplicity=4)
    raises(a, r"field 'metal_index': 7 is not an atom index", metal_index=7)


def test_shell_counts():
    assert open_shell_count(27, 2) == 7 and open_shell_count(26, 3) == 5
    assert open_shell_count(66, 3) == 9 and open_shell_count(58, 3) == 1
    assert open_shell_count(92, 4) == 2 and open_shell_count(44, 3) == 5
    assert open_shell_count(76, 4) == 4 and open_shell_count(8, 0) is None
    assert max_unpaired(27, 2) == 3 and max_unpaired(64, 3) == 7 and max_unpaired(27) == 5


def test_record_uses_the_gate():
    a = cocl4()
    a.positions[1] = a.positions[0]
    with pytest.raises(StructureError, match=r"atoms 0 \(Co\) and 1 \(Cl\)"):
        Record(a, charge=-2, multiplicity=4)
    with pytest.raises(StructureError, match="at most 5"):
        Record(cocl4(), charge=-2, multiplicity=10)
    b = cocl4()
    b.positions[0, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        Record(b, charge=-2, multiplicity=4)
    Record(cocl4(), charge=-2, multiplicity=4)


def test_point_charges_enter_the_structure_hash():
    ce = Atoms("Ce")

    def prov(pcs):
        return {"kd_energies": Provenance(method="CASSCF", parameters=(
            {"point_charges": pcs} if pcs is not None else {}))}

    bare = Record(ce, 3, 2, labels={"kd_energies": [0.0, 100.0]}, provenance=prov(None))
    pc1 = [[-2, 0, 0, 3.0], [-2, 0, 0, -3.0]]
    pc2 = [[-2, 0, 0, 2.5], [-2, 0, 0, -2.5]]
    r1 = Record(ce, 3, 2, labels={"kd_energies": [0.0, 200.0]}, provenance=prov(pc1))
    r2 = Record(ce, 3, 2, labels={"kd_energies": [0.0, 300.0]}, provenance=prov(pc2))
    # without point charges the hash is the old one
    assert bare.hash == structure_hash(ce, 3, 2) == structure_hash(ce, 3, 2, [])
    assert len({bare.hash, r1.hash, r2.hash}) == 3
    # the order in which the charges are listed does not matter
    assert structure_hash(ce, 3, 2, pc1) == structure_hash(ce, 3, 2, pc1[::-1]) == r1.hash
    np.testing.assert_allclose(r1.point_charges, pc1)
    # labels of one record must come from one point-charge field
    from molmag.io import LabelError

    with pytest.raises(LabelError, match="different point charges"):
        Record(ce, 3, 2, labels={"kd_energies": [0.0, 1.0], "g_tensors": [[0, 0, 4.0]]},
               provenance={"kd_energies": prov(pc1)["kd_energies"],
                           "g_tensors": prov(pc2)["kd_energies"]})


def test_point_charge_records_stay_apart_in_a_dataset(tmp_path):
    from molmag.io import Dataset

    ce = Atoms("Ce")
    ds = Dataset(tmp_path / "ce.db")
    for d, e in ((3.0, 200.0), (2.5, 300.0)):
        p = Provenance(method="CASSCF", parameters={"point_charges": [[-2, 0, 0, d],
                                                                     [-2, 0, 0, -d]]})
        s = ds.add_many([Record(ce, 3, 2, labels={"kd_energies": [0.0, e]},
                                provenance={"kd_energies": p})])
        assert s.new == 1 and not s.conflicts
    assert len(ds) == 2
    kd = sorted(float(r.labels["kd_energies"][1]) for r in ds.select())
    assert kd == [200.0, 300.0]
    for r in ds.select():  # read back, the hash (with its point charges) is the stored one
        assert ds.find(r) == r.id


def test_rows_of_a_dataset_written_before_the_gate_are_read_not_refused(tmp_path):
    """A row stored by molmag <= 0.2 with two atoms 0.3 Angstrom apart: reading the dataset
    must not fail (the gate guards what enters, not what is already there)."""
    from molmag.io.dataset import Dataset

    db = Dataset(tmp_path / "old.db")
    db.add(Record(cocl4(), charge=-2, multiplicity=4))     # creates the schema
    bad = cocl4()
    bad.positions[2] = bad.positions[1] + [0.3, 0.0, 0.0]
    db.db.write(bad, total_charge=-2, multiplicity=4, metal_index=0,
                structure_hash="old-row-with-a-clash")
    recs = list(db.select())
    assert len(recs) == 2 and np.allclose(recs[1].atoms.positions, bad.positions)
    with pytest.raises(ValueError, match="0.300"):   # but it cannot be written again as new
        Record(recs[1].atoms, charge=-2, multiplicity=4)
