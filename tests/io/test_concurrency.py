"""Several processes writing one dataset at once: `molmag data import` runs (SQLite and a real
PostgreSQL server), leases, and `molmag label` runs that share the work.

Every test here runs real OS processes (``python -m molmag.cli ...``) against one database and
then counts: every row present exactly once, every structure labelled exactly once.  The
PostgreSQL tests need ``MOLMAG_TEST_POSTGRES_URL`` (`.ci/run` starts a server and sets it);
each works in a schema of its own, created and dropped by the test, so they can run any number
of times on the same database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.io import write
from test_dataset import postgres_schema_url

from molmag.io import Dataset, Provenance, Record, read_records

CLI = [sys.executable, "-m", "molmag.cli"]


def cocl4(seed: int, jitter: float = 0.05) -> Atoms:
    """A displaced tetrahedral [CoCl4]2- (a different structure hash per seed)."""
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    pos = np.vstack([[0, 0, 0], 2.28 * v])
    pos += np.random.default_rng(seed).uniform(-jitter, jitter, pos.shape)
    return Atoms("CoCl4", positions=pos, info={"charge": -2, "multiplicity": 4})


def write_files(folder: Path, n_files: int, per_file: int, shared: int) -> tuple[list[Path], set]:
    """``n_files`` extxyz files of ``per_file`` frames; the first ``shared`` frames are the
    same in every file (so concurrent imports meet the same structures).  Returns the files
    and the set of seeds, i.e. the distinct structures."""
    files, seeds = [], set()
    for f in range(n_files):
        own = [s for s in range(shared)] + [1000 * (f + 1) + i for i in range(per_file - shared)]
        seeds.update(own)
        path = folder / f"part{f}.xyz"
        write(path, [cocl4(s) for s in own], format="extxyz")
        files.append(path)
    return files, seeds


def expected_hashes(files) -> set[str]:
    """The structure hashes of the frames as read back from the files."""
    return {r.hash for f in files for r in read_records(f)}


def run_imports(files: list[Path], db: str, chunk_size: int) -> list[subprocess.CompletedProcess]:
    """One `molmag data import` process per file, all started at once."""
    procs = [subprocess.Popen(CLI + ["data", "import", str(f), "--db", db,
                                     "--chunk-size", str(chunk_size)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in files]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def check_every_row_once(db: str, files, seeds) -> None:
    ds = Dataset(db)
    hashes = Counter(r.hash for r in ds.select())
    dupes = {h: n for h, n in hashes.items() if n > 1}
    assert not dupes, f"{len(dupes)} structures stored more than once"
    assert set(hashes) == expected_hashes(files)
    assert len(ds) == len(seeds)


@pytest.mark.parametrize("n_procs", [2, 4])
def test_concurrent_sqlite_imports_keep_every_row_once(tmp_path, n_procs):
    """n processes import their files (200 frames each, 40 of them in every file) into one
    new SQLite file in chunks of 10: all succeed and every structure is stored once."""
    files, seeds = write_files(tmp_path, n_procs, per_file=200, shared=40)
    db = str(tmp_path / "shared.db")
    results = run_imports(files, db, chunk_size=10)
    for r in results:
        assert r.returncode == 0, r.stderr[-2000:]
        assert "database is locked" not in r.stderr
    check_every_row_once(db, files, seeds)
    assert len(seeds) == n_procs * 160 + 40


def test_concurrent_postgresql_imports_keep_every_row_once(tmp_path):
    """Three processes import into one new PostgreSQL schema (its tables created by whichever
    comes first): all succeed, every structure once."""
    files, seeds = write_files(tmp_path, 3, per_file=120, shared=30)
    with postgres_schema_url() as url:
        results = run_imports(files, url, chunk_size=10)
        for r in results:
            assert r.returncode == 0, r.stderr[-2000:]
        check_every_row_once(url, files, seeds)


# -- leases ------------------------------------------------------------------------------------
def _lease_semantics(url: str) -> None:
    ds, other = Dataset(url), Dataset(url)
    assert ds.claim(["row:1", "row:2"], "A", 60.0) == ["row:1", "row:2"]
    assert other.claim(["row:2", "row:3"], "B", 60.0) == ["row:3"]  # row:2 is A's
    assert ds.claim(["row:2"], "A", 60.0) == ["row:2"]  # a holder may re-claim its own
    assert ds.claim(["row:9"], "A", 0.3) == ["row:9"]
    time.sleep(0.4)
    assert other.claim(["row:9"], "B", 60.0) == ["row:9"]  # A's lease expired
    before = ds.leases()["row:1"][1]
    assert ds.renew("A", 120.0) == 2  # row:1 and row:2
    assert ds.leases()["row:1"][1] > before + 30
    ds.release("A", ["row:1", "row:3"])  # row:3 is B's: untouched
    assert sorted(other.leases()) == ["row:2", "row:3", "row:9"]
    # labels written and the lease given up in one transaction
    rid, _, _ = ds.add(Record(cocl4(0), charge=-2, multiplicity=4))
    prov = Provenance(method="test", program="molmag", version="0")
    ds.set_labels_many([(rid, {"energy": -1.5}, {"energy": prov})], release=("A", ["row:2"]))
    assert other.get(rid).labels["energy"] == -1.5
    other.release("B")
    assert ds.leases() == {}


def test_leases_sqlite(tmp_path):
    _lease_semantics(str(tmp_path / "l.db"))


def test_leases_postgresql():
    with postgres_schema_url() as url:
        _lease_semantics(url)


# -- molmag label runs sharing one dataset -----------------------------------------------------
def label_config(tmp_path: Path, n: int, lease_seconds: float, batch_size: int) -> Path:
    frames = [cocl4(s, jitter=0.08) for s in range(n)]
    write(tmp_path / "frames.xyz", frames, format="extxyz")
    cfg = {"output": "out.db", "sources": [{"file": "frames.xyz"}],
           "labels": {"ligand_field": {}}, "cluster": {"kind": "serial"},
           "batch_size": batch_size, "lease_seconds": lease_seconds}
    p = tmp_path / "label.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def labelled_now(stdout: str) -> int:
    m = re.search(r"labelled now\D*?(\d+)", stdout)
    assert m, stdout
    return int(m.group(1))


def start_label(p: Path) -> subprocess.Popen:
    return subprocess.Popen(CLI + ["label", str(p)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_concurrent_label_runs_label_each_structure_once(tmp_path):
    """Three `molmag label` runs started together on one dataset: the structures they
    label add up to the number of rows (a structure labelled twice would count twice)."""
    n = 60
    p = label_config(tmp_path, n, lease_seconds=30.0, batch_size=2)
    procs = [start_label(p) for _ in range(3)]
    outs = [pr.communicate(timeout=300) for pr in procs]
    for pr, (out, err) in zip(procs, outs):
        assert pr.returncode == 0, err[-2000:]
    counts = [labelled_now(out) for out, _ in outs]
    assert sum(counts) == n, counts
    assert sum(c > 0 for c in counts) >= 2, counts  # the work was shared
    ds = Dataset(tmp_path / "out.db")
    assert len(ds) == n and ds.count("has_zfs_tensor=True") == n
    assert ds.leases() == {}


def test_killed_label_run_leases_expire_and_others_finish(tmp_path):
    """A run killed with SIGKILL leaves its leases behind; two runs started after it take
    them over (at once: the holder's process is gone from this host) and finish the work:
    together they label exactly the rows the dead run did not store."""
    n, lease = 40, 3.0
    p = label_config(tmp_path, n, lease_seconds=lease, batch_size=1)
    db = tmp_path / "out.db"
    a = start_label(p)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if db.exists() and Dataset(db).count("has_zfs_tensor=True") >= 5:
                    break
            except Exception:  # the file is being created
                pass
            time.sleep(0.05)
        os.kill(a.pid, signal.SIGKILL)
    finally:
        a.communicate()
    ds = Dataset(db)
    partial = ds.count("has_zfs_tensor=True")
    assert 5 <= partial < n, partial
    dead = ds.leases()  # the dead run's lease(s): at most the row it was labelling
    assert len(dead) <= 1 and all(h.split(":")[1] == str(a.pid) for h, _ in dead.values())
    procs = [start_label(p) for _ in range(2)]
    outs = [pr.communicate(timeout=300) for pr in procs]
    finished = time.time()
    for pr, (out, err) in zip(procs, outs):
        assert pr.returncode == 0, err[-2000:]
    counts = [labelled_now(out) for out, _ in outs]
    assert sum(counts) == n - partial, (counts, partial)
    assert ds.count("has_zfs_tensor=True") == n and len(ds) == n
    for key in dead:  # the dead run's rows were taken over and labelled
        assert ds.get(int(key.split(":")[1])).labels["zfs_tensor"].shape == (3, 3)
    assert finished > 0
    assert ds.leases() == {}



def test_leases_of_a_dead_process_on_this_host_are_taken_at_once(tmp_path):
    """Leases name their holder host:pid:suffix; a holder whose process is gone from this
    host (kill -9) does not block for the lease time; a live one, or one on another host,
    does."""
    import socket

    from molmag.io.dataset import holder_is_dead

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = socket.gethostname()
    dead, alive, remote = f"{host}:{proc.pid}:aa", f"{host}:{os.getppid()}:bb", "elsewhere:1:cc"
    assert holder_is_dead(dead) and not holder_is_dead(alive) and not holder_is_dead(remote)
    assert not holder_is_dead("not-a-holder")
    ds = Dataset(tmp_path / "l.db")
    ds.add(Record(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])))
    for who, key in ((dead, "row:1"), (alive, "row:2"), (remote, "row:3")):
        assert ds.claim([key], who, 3600.0) == [key]
    me = f"{host}:{os.getpid()}:me"
    assert ds.claim(["row:1", "row:2", "row:3"], me, 10.0) == ["row:1"]
