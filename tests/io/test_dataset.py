import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import read
from conftest import tensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molmag.io import (
    DataFileError,
    Dataset,
    LabelError,
    Provenance,
    Record,
    read_records,
    write_records,
)
from molmag.physics.zfs import zfs_from_tensor


def cocl4(shift=0.0) -> Atoms:
    d = 2.28 / np.sqrt(3)
    pos = [[0, 0, 0], [d, d, d], [-d, -d, d], [-d, d, -d], [d, -d, -d]]
    a = Atoms("CoCl4", positions=pos)
    a.positions[1, 0] += shift
    return a


def labelled(shift=0.0, **labels) -> Record:
    prov = {k: Provenance(method="ligand field", program="molmag", version="test",
                          parameters={"e_sigma": 4000.0}) for k in labels}
    return Record(cocl4(shift), charge=-2, multiplicity=4, labels=labels, provenance=prov)


def test_record_defaults_and_validation():
    r = labelled(zfs_tensor=np.diag([1.0, 1.0, -2.0]))
    assert r.metal_index == 0
    with pytest.raises(LabelError, match="multiplicity"):
        Record(cocl4(), charge=-2, multiplicity=3)  # 103 electrons cannot be a triplet
    with pytest.raises(LabelError, match="zfs_tensor"):
        Record(cocl4(), charge=-2, multiplicity=4, labels={"zfs_tensor": np.zeros(8)})
    with pytest.raises(LabelError, match="forces"):
        Record(cocl4(), charge=-2, multiplicity=4, labels={"forces": np.zeros((4, 3))})
    with pytest.raises(LabelError, match="convention"):
        Record(cocl4(), charge=-2, multiplicity=4,
               labels={"cf_parameters": {"convention": "foo", "values": {"2,0": 1.0}}})
    with pytest.raises(LabelError, match="metal_index"):
        Record(Atoms("Co2", positions=[[0, 0, 0], [2.5, 0, 0]]), multiplicity=1)


def test_add_is_idempotent_and_merges_missing_labels(tmp_path):
    ds = Dataset(tmp_path / "d.db")
    t = np.diag([10.0, 10.0, -20.0])
    id1, status, _ = ds.add(labelled(zfs_tensor=t))
    assert status == "new"
    assert ds.add(labelled(zfs_tensor=t))[1] == "present"
    id2, status, _ = ds.add(labelled(energy=-12.5, forces=np.ones((5, 3))))
    assert (id2, status) == (id1, "merged")
    rec = ds.get(id1)
    assert set(rec.labels) == {"zfs_tensor", "energy", "forces"}
    assert rec.labels["energy"] == -12.5
    np.testing.assert_array_equal(rec.labels["zfs_tensor"], t)
    assert rec.provenance["energy"].parameters == {"e_sigma": 4000.0}
    # a different value of a stored label is kept as stored and reported
    _, status, conflicts = ds.add(labelled(zfs_tensor=2 * t))
    assert status == "present" and conflicts == ["zfs_tensor"]
    np.testing.assert_array_equal(ds.get(id1).labels["zfs_tensor"], t)
    # a different charge/multiplicity is a different structure
    ds.add(Record(cocl4(), charge=-1, multiplicity=5))
    assert len(ds) == 2
    # selections: derived scalars and the 'charge' alias
    assert ds.count("zfs_D<-29,zfs_D>-31") == 1
    assert ds.count("charge=-1") == 1
    assert ds.count("has_forces") == 1


def test_interrupted_import_is_consistent_and_resumes(tmp_path):
    ds = Dataset(tmp_path / "d.db")
    records = [labelled(0.001 * i, energy=float(i)) for i in range(250)]

    def crashing():
        for i, r in enumerate(records):
            if i == 230:
                raise KeyboardInterrupt
            yield r

    with pytest.raises(KeyboardInterrupt):
        ds.add_many(crashing(), chunk_size=100)
    assert len(Dataset(tmp_path / "d.db")) == 200  # two whole chunks, the third rolled back
    summary = ds.add_many(records, chunk_size=100)
    assert (summary.new, summary.present) == (50, 200)
    assert len(ds) == 250
    energies = sorted(r.labels["energy"] for r in ds.select())
    assert energies == list(map(float, range(250)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tensors(symmetric=False), min_size=1, max_size=5),
       st.integers(0, 2**31 - 1))
def test_multiframe_extxyz_survives_import_then_export_unchanged(tensor_list, seed):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = []
        for t in tensor_list:
            a = molecule("CH3CH2OH")
            a.positions += rng.uniform(-0.1, 0.1, size=a.positions.shape)  # bonds stay > 0.6 A
            a.info["charge"] = 0
            a.info["multiplicity"] = 1
            a.info["REF_zfs_tensor"] = t
            a.info["REF_energy"] = float(rng.normal())
            a.arrays["REF_forces"] = rng.normal(size=(len(a), 3))
            frames.append(a)
        from ase.io import write

        write(tmp / "in.extxyz", frames, format="extxyz")
        original = read(tmp / "in.extxyz", index=":")
        ds = Dataset(tmp / "d.db")
        ds.add_many(read_records(tmp / "in.extxyz"))
        write_records(tmp / "out.extxyz", ds.select())
        back = read(tmp / "out.extxyz", index=":")
        assert len(back) == len(original)
        # distinct frames keep their order (rows are written in import order)
        for a, b in zip(original, back):
            np.testing.assert_array_equal(a.numbers, b.numbers)
            np.testing.assert_array_equal(a.positions, b.positions)
            np.testing.assert_array_equal(a.info["REF_zfs_tensor"], b.info["REF_zfs_tensor"])
            assert a.info["REF_energy"] == b.info["REF_energy"]
            np.testing.assert_array_equal(a.arrays["REF_forces"], b.arrays["REF_forces"])
            assert (b.info["charge"], b.info["multiplicity"]) == (0, 1)


def test_all_labels_and_provenance_roundtrip(tmp_path):
    kd = np.array([0.0, 120.5, 250.0, 300.0, 410.0, 500.0, 620.0, 700.0, 800.0])  # 9 values
    g = np.array([[0.01, 0.02, 19.8], [0.1, 0.3, 16.9], [1.0, 2.0, 12.0]])
    cf = {"convention": "stevens", "values": {"2,0": -1.25, "4,-4": 0.003, "6,6": 1e-5}}
    rec = Record(cocl4(), charge=-2, multiplicity=4, split="val",
                 labels={"zfs_tensor": np.diag([5.0, -1.0, -4.0]), "kd_energies": kd,
                         "g_tensors": g, "cf_parameters": cf},
                 provenance={"zfs_tensor": {"method": 'CASSCF(7,5) "QDPT"', "program": "ORCA",
                                            "version": "6.1", "date": "2026-01-01",
                                            "parameters": {"basis": "def2-TZVP"}}})
    ds = Dataset(tmp_path / "d.db")
    ds.add(rec)
    write_records(tmp_path / "out.xyz", ds.select())
    back = list(read_records(tmp_path / "out.xyz"))[0]
    np.testing.assert_array_equal(back.labels["kd_energies"], kd)
    np.testing.assert_array_equal(back.labels["g_tensors"], g)
    assert back.labels["cf_parameters"] == cf
    assert back.split == "val"
    p = back.provenance["zfs_tensor"]
    assert (p.program, p.version, p.parameters) == ("ORCA", "6.1", {"basis": "def2-TZVP"})
    assert p.method == "CASSCF(7,5) 'QDPT'"  # double quotes cannot live inside extxyz JSON
    stats = ds.stats()
    assert stats["label_coverage"]["kd_energies"] == 1
    d_min = zfs_from_tensor(np.diag([5.0, -1, -4])).D
    assert stats["ranges"]["zfs_D"]["min"] == pytest.approx(d_min)
    assert stats["ranges"]["kd_gap"]["max"] == pytest.approx(120.5)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD = ("3\nProperties=species:S:1:pos:R:3 charge=0 multiplicity=1 REF_energy=-1.0\n"
        "O 0.0 0.0 0.119\nH 0.0 0.763 -0.477\nH 0.0 -0.763 -0.477\n")


@pytest.mark.parametrize("bad_frame, field", [
    ("3\nProperties=species:S:1:pos:R:3 REF_zfs_tensor=\"1 2 3 4\"\n"
     "O 0 0 0\nH 0 0.76 -0.48\nH 0 -0.76 -0.48\n", "REF_zfs_tensor"),
    ("3\nProperties=species:S:1:pos:R:3 REF_energy=abc\n"
     "O 0 0 0\nH 0 0.76 -0.48\nH 0 -0.76 -0.48\n", "REF_energy"),
    ("3\nProperties=species:S:1:pos:R:3 multiplicity=2\n"
     "O 0 0 0\nH 0 0.76 -0.48\nH 0 -0.76 -0.48\n", "multiplicity"),
    ("3\nProperties=species:S:1:pos:R:3 REF_kd_energies=\"0 30 10\"\n"
     "O 0 0 0\nH 0 0.76 -0.48\nH 0 -0.76 -0.48\n", "REF_kd_energies"),
    ("3\nProperties=species:S:1:pos:R:3:REF_forces:R:2\n"
     "O 0 0 0 1 1\nH 0 0.76 -0.48 1 1\nH 0 -0.76 -0.48 1 1\n", "REF_forces"),
    ("5\nProperties=species:S:1:pos:R:3\nCo 0 0 0\nCl 1.3 1.3 1.3\nCl -1.3 -1.3 1.3\n"
     "Cl -1.3 1.3 -1.3\nCl 1.3 -1.3 -1.3\n", "charge"),
])
def test_malformed_frames_name_file_frame_and_field(tmp_path, bad_frame, field):
    f = _write(tmp_path / "bad.extxyz", GOOD + GOOD.replace("-1.0", "-2.0") + bad_frame)
    with pytest.raises(DataFileError) as err:
        list(read_records(f))
    e = err.value
    assert (e.file, e.frame, e.field) == (str(f), 2, field)
    assert "bad.extxyz, frame 2, field" in str(e)


def test_truncated_file_names_the_frame(tmp_path):
    f = _write(tmp_path / "cut.xyz", GOOD + "3\nProperties=species:S:1:pos:R:3\nO 0 0 0\n")
    with pytest.raises(DataFileError, match=r"cut.xyz, frame 1, field 'atom lines': "
                                            r"malformed frame \(line 9\)"):
        list(read_records(f))
    with pytest.raises(DataFileError, match="no such file"):
        list(read_records(tmp_path / "missing.xyz"))


def test_import_the_copdms_configurations(shared_data, tmp_path):
    path = shared_data / "copdms" / "copdms_configurations_1200.xyz"
    ds = Dataset(tmp_path / "copdms.db")
    s = ds.add_many(read_records(path, charge=-2, multiplicity=4))
    assert (s.read, s.new) == (1200, 1200)
    assert ds.add_many(read_records(path, charge=-2, multiplicity=4)).present == 1200
    rec = ds.get(1)
    assert rec.formula == "C16H20CoN4O8S4" and rec.metal_index == 0
    assert len(ds) == 1200


@contextmanager
def postgres_schema_url():
    """A URL of the server in ``MOLMAG_TEST_POSTGRES_URL`` whose tables live in a new schema
    (dropped at the end), so a test finds an empty dataset however often it runs on the
    same database; skips the test when the variable is not set."""
    url = os.environ.get("MOLMAG_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("MOLMAG_TEST_POSTGRES_URL not set")
    psycopg2 = pytest.importorskip("psycopg2")
    pytest.importorskip("ase_db_backends")
    schema = f"molmag_test_{uuid.uuid4().hex[:12]}"
    con = psycopg2.connect(url)
    con.autocommit = True
    try:
        con.cursor().execute(f"CREATE SCHEMA {schema}")
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        con.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        con.close()


def test_postgresql_dataset():
    """Runs against a real server when MOLMAG_TEST_POSTGRES_URL is set
    (e.g. postgresql://molmag@127.0.0.1:55432/molmagtest); skipped otherwise.  Each run
    works in a schema of its own, so it passes on a reused database."""
    records = [Record(cocl4(0.001 * i), charge=-2, multiplicity=4, split="pg",
                      labels={"zfs_tensor": np.diag([1.0, 2.0, -3.0]) * (i + 1)})
               for i in range(30)]
    with postgres_schema_url() as url:
        ds = Dataset(url)
        assert ds.add_many(records, chunk_size=7).new == 30
        assert Dataset(url).add_many(records, chunk_size=7).present == 30
        got = list(ds.select("split=pg"))
        assert len(got) == 30
        np.testing.assert_array_equal(got[4].labels["zfs_tensor"], records[4].labels["zfs_tensor"])
        assert ds.count("split=pg,zfs_D<-40") == 30 - 8
        ds.update_failures({"x:xtb": {"stage": "xtb", "reason": "test"}})
        assert Dataset(url).failures() == {"x:xtb": {"stage": "xtb", "reason": "test"}}
