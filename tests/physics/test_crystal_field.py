"""Lanthanide crystal field: conversions, point charges, levels, g tensors, calculator, CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from conftest import rotations
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.constants import physical_constants
from scipy.special import sph_harm_y
from typer.testing import CliRunner

from molmag.cli import cf
from molmag.io.labels import validate_label
from molmag.physics.ase_properties import CF_PARAMETER_KEYS
from molmag.physics.crystal_field import (
    CrystalFieldCalculator,
    cf_parameter_set,
    classify_donor,
    convert_cf_parameters,
    crystal_field_batch,
    crystal_field_from_structure,
    hamiltonian,
    ito_complex_from_stevens,
    pcem_parameters,
    point_charge_model,
    solve,
    stevens_from_ito,
    stevens_from_ito_complex,
    stevens_from_wybourne,
    values_from_vector,
    vector_from_values,
)
from molmag.physics.stevens import (
    angular_momentum,
    cf_keys,
    clebsch_gordan,
    lanthanide_ion,
    m_values,
    stevens_operator,
)
from molmag.physics.units import convert

CE_ESO = {"2,0": -115.37457113, "4,0": 0.56360024}          # ../shared/data/README.md
CE_KD = [0.0, 1249.2308, 2110.5583]
KRAMERS = ["Ce3+", "Nd3+", "Sm3+", "Dy3+", "Er3+", "Yb3+"]
HARTREE = convert(1.0, "Hartree", "cm-1")
BOHR = 1e10 * physical_constants["Bohr radius"][0]  # Å, the CODATA value the code uses


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def dy_complex(r_ax=(2.15, 2.15), r_w=(2.40,) * 5, bend=0.0, dz=(0.0,) * 5, phase=(0.0,) * 5):
    """Dy(H2O)5(OMe)2: axial methoxide O (C and 3 H behind), five waters with H atoms."""
    sym, pos = ["Dy"], [np.zeros(3)]
    b = np.radians(bend)
    for r, u in zip(r_ax, (np.array([0, 0, 1.0]), np.array([np.sin(b), 0, -np.cos(b)]))):
        o, c = r * u, (r + 1.41) * u
        side = np.cross(u, [0, 1.0, 0])
        side /= np.linalg.norm(side)
        other = np.cross(u, side)
        sym += ["O", "C", "H", "H", "H"]
        pos += [o, c] + [c + 1.09 * (0.334 * u + 0.943 * (np.cos(t) * side + np.sin(t) * other))
                         for t in np.radians([0, 120, 240])]
    for i, (r, h, ph) in enumerate(zip(r_w, dz, phase)):
        a = np.radians(72 * i + ph)
        o = np.array([np.sqrt(r * r - h * h) * np.cos(a), np.sqrt(r * r - h * h) * np.sin(a), h])
        out, side = o / r, np.array([-np.sin(a), np.cos(a), 0.0])
        sym += ["O", "H", "H"]
        pos += [o] + [o + 0.97 * (np.cos(0.916) * out + s * np.sin(0.916) * side) for s in (1, -1)]
    return Atoms(sym, positions=np.array(pos))


DISTORTED = dict(r_ax=(2.15, 2.22), r_w=(2.33, 2.37, 2.42, 2.45, 2.48), bend=15.0,
                 dz=(0.2, -0.25, 0.1, -0.15, 0.25), phase=(0, 5, -6, 4, -3))


def random_parameters(rng, ranks=(2, 4, 6), scale=(100.0, 1.0, 0.01)):
    return {f"{k},{q}": float(rng.normal() * s) for k, s in zip((2, 4, 6), scale) if k in ranks
            for q in range(-k, k + 1)}


# --------------------------------------------------------------------------------------
# the published Ce3+ numbers (no shared data needed)
# --------------------------------------------------------------------------------------
def test_ce_published_eso_parameters_give_published_kramers_doublets():
    lv = solve("Ce3+", CE_ESO)
    assert lv.kd_energies == pytest.approx(CE_KD, abs=2e-4)
    g_j = lanthanide_ion("Ce3+").g_J
    # pure |+-5/2> ground doublet: g = (0, 0, 2 g_J 5/2) = 4.284 (CASSCF: 4.1303, covalency)
    assert lv.g_values[0] == pytest.approx([0, 0, 5 * g_j], abs=1e-9)
    assert lv.mean_abs_mj() == pytest.approx([2.5, 1.5, 0.5])
    # the same parameters in the ITO (real) and Wybourne conventions give the same levels
    for conv in ("ito", "wybourne"):
        other = convert_cf_parameters({"convention": "stevens", "values": CE_ESO}, conv, "Ce3+")
        assert solve("Ce3+", other).kd_energies == pytest.approx(CE_KD, abs=2e-4)


# --------------------------------------------------------------------------------------
# the Ce3+ SINGLE_ANISO output (shared data)
# --------------------------------------------------------------------------------------
NUM = r"[-+]?\d+\.\d+E[-+]\d+"


def _single_aniso_blocks(text):
    j = text[text.index("GROUND ATOMIC MULTIPLET J ="):text.index("GROUND ATOMIC TERM, L =")]
    l_block = text[text.index("GROUND ATOMIC TERM, L ="):]
    l_block = l_block[:l_block.index("DECOMPOSITION OF THE RASSCF")]
    return {"J": j, "L": l_block}


def _tables(block):
    out = {}
    for part in block.split("*" * 80):
        if "B(k,q) * O(k,q) + C(k,q) * W(k,q)" in part and "alpha(k)" not in part:
            out["ito"] = {(int(k), int(q)): (float(b), float(c)) for k, q, b, c in
                          re.findall(rf"^\s*(\d)\s*\|\s*(\d)\s*\|\s*({NUM})\s*\|\s*({NUM})\s*\|",
                                     part, re.M)}
        elif "Extended Stevens Operators (ESO)" in part:
            out["eso"] = {(int(k), int(q)): (float(k2), float(b)) for k, q, k2, b in
                          re.findall(rf"^\s*(\d)\s*\|\s*(-?\d)\s*\|\s*(\d+\.\d+)\s*\|\s*({NUM})\s*\|",
                                     part, re.M)}
        elif "COMPLEX parameter" in part:
            out["complex"] = {(int(k), int(q)): complex(float(re_), float(im)) for k, q, re_, im in
                              re.findall(rf"^\s*(\d)\s*\|\s*(-?\d)\s*\|\s*({NUM})\s*({NUM})\s*\*I",
                                         part, re.M)}
    return out


@pytest.fixture
def ce_output(shared_data):
    name = "orca610_ce3_axial_pointcharges_single_aniso.out"
    return (shared_data / "qc-outputs" / name).read_text()


@pytest.mark.shared_data
@pytest.mark.parametrize("block,j", [("J", 2.5), ("L", 3)])
def test_single_aniso_ito_tables_convert_to_its_eso_table(ce_output, block, j):
    tabs = _tables(_single_aniso_blocks(ce_output)[block])
    assert len(tabs["ito"]) == (8 if block == "J" else 15)
    assert len(tabs["eso"]) == len(tabs["complex"])
    ito = {}
    for (k, q), (b, c) in tabs["ito"].items():
        ito[f"{k},{q}"] = b
        if q:
            ito[f"{k},{-q}"] = c
    eso = stevens_from_ito(ito)
    for (k, q), (k2, b) in tabs["eso"].items():
        assert eso[f"{k},{q}"] == pytest.approx(b, rel=1e-10, abs=1e-20), (k, q)
        from molmag.physics.stevens import ito_factor
        assert ito_factor(k, q) ** 2 == pytest.approx(k2, abs=1e-9)
    # the complex ITO table A(k,q) (CG-normalised Y(k,q)/Y(k,0)) from the ESO values, and back
    printed_eso = {f"{k},{q}": b for (k, q), (_, b) in tabs["eso"].items()}
    a = ito_complex_from_stevens(printed_eso, j)
    scale = max(abs(v) for v in tabs["complex"].values())
    for kq, ref in tabs["complex"].items():
        assert abs(a[kq] - ref) < 1e-12 * scale + 1e-11 * abs(ref), kq
    back = stevens_from_ito_complex(tabs["complex"], j)
    for key, b in printed_eso.items():
        assert back[key] == pytest.approx(b, rel=1e-9, abs=1e-13 * scale)


@pytest.mark.shared_data
def test_single_aniso_eso_parameters_reproduce_its_energies_and_matrix(ce_output):
    block = _single_aniso_blocks(ce_output)["J"]
    eso = {f"{k},{q}": b for (k, q), (_, b) in _tables(block)["eso"].items()}
    lv = solve("Ce3+", eso)
    table = block[block.index("ENERGY SPLITTING INDUCED BY"):]
    o2o4 = [float(x) for x in re.findall(r"w\.f\.\s+\d\s+\|\s*\S+\s*\|\s*\S+\s*\|\s*(\S+)\s*\|",
                                         table)][:6]
    assert o2o4[2] == pytest.approx(1249.23079714) and lv.energies == pytest.approx(o2o4, abs=1e-6)
    # diagonal of the printed "Ab Initio Crystal-Field Splitting Matrix" (pseudospin basis)
    h = hamiltonian("Ce3+", eso)
    printed = {-5: -1119.9296971809729, -3: 129.3010996734330, -1: 990.6285963047306,
               1: 990.6285982210193, 3: 129.3011002075554, 5: -1119.9296972257687}
    for i, m2 in enumerate(range(-5, 6, 2)):
        assert h[i, i].real == pytest.approx(printed[m2], abs=2e-5)
        assert f"{printed[m2]:.13f}"[:12] in block


# --------------------------------------------------------------------------------------
# Kramers degeneracy, axial limits, non-Kramers
# --------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), ion=st.sampled_from(KRAMERS))
def test_kramers_degeneracy_for_random_parameters(seed, ion):
    params = random_parameters(np.random.default_rng(seed))
    lv = solve(ion, {k: v for k, v in params.items()
                     if int(k.split(",")[0]) <= 2 * lanthanide_ion(ion).J})
    e = lv.energies
    spread = e[-1] + 1.0
    assert np.abs(e[1::2] - e[0::2]).max() < 1e-9 * spread
    assert np.all(np.diff(e[0::2]) > 1e-6 * spread)     # generic: no accidental 4-fold levels
    assert lv.g_values.shape == (len(e) // 2, 3) and np.all(lv.g_values >= 0)


@settings(max_examples=20, deadline=None)
@given(b20=st.floats(-200, -5), b40=st.floats(-0.5, 0.5), b60=st.floats(-0.005, 0.005),
       ion=st.sampled_from(["Dy3+", "Er3+", "Nd3+", "Yb3+"]))
def test_axial_field_gives_pure_mj_states_and_ising_g(b20, b40, b60, ion):
    the_ion = lanthanide_ion(ion)
    params = {"2,0": b20, "4,0": b40}
    if the_ion.J >= 3:
        params["6,0"] = b60
    lv = solve(ion, params)
    comp = lv.composition(axis=[0, 0, 1])
    assert np.all(np.isclose(comp.max(axis=1), 1.0, atol=1e-9))   # pure |M_J> states
    m = np.abs(m_values(the_ion.J))
    for d, (i, _) in enumerate(lv.groups):
        mj = m[np.argmax(comp[i])]
        g = lv.g_values[d]
        if mj > 0.5:
            assert g == pytest.approx([0, 0, 2 * the_ion.g_J * mj], abs=1e-7)
        else:
            assert g == pytest.approx([the_ion.g_J, (the_ion.J + 0.5) * the_ion.g_J,
                                       (the_ion.J + 0.5) * the_ion.g_J], abs=1e-7)


def test_non_kramers_quasi_doublets_and_singlets():
    lv = solve("Tb3+", {"2,0": -10.0, "4,0": 0.001})          # |M_J> states, |+-M> degenerate
    g_j = lanthanide_ion("Tb3+").g_J
    assert len(lv.groups) == 6                                # 13 states: 6 pairs + |0>
    assert lv.g_values[0] == pytest.approx([0, 0, 2 * g_j * 6], abs=1e-7)
    assert lv.kd_energies[0] == 0.0
    # a rhombic term splits the ground pair of Tb (integer J) beyond the tolerance
    split = solve("Tb3+", {"2,0": -10.0, "2,2": 8.0}, doublet_tol=1e-6)
    assert split.energies[1] - split.energies[0] > 1e-3
    assert (0, 1) not in split.groups and solve("Tb3+", {"2,0": -10.0, "2,2": 8.0},
                                                doublet_tol=10.0).groups[0] == (0, 1)
    with pytest.raises(ValueError, match="per structure"):
        _ = solve("Tb3+", np.zeros((2, 27))).groups


def test_transition_moments_of_pure_states():
    lv = solve("Dy3+", {"2,0": -10.0, "4,0": -0.01})
    g_j = lanthanide_ion("Dy3+").g_J
    tm = lv.transition_moments()
    assert tm[0, 0] == pytest.approx(g_j * 7.5 / 3)            # |<15/2|mu_z|15/2>| / 3
    assert tm[0, 1] == pytest.approx(0.0, abs=1e-12)           # no direct +15/2 <-> -15/2 path
    # |<13/2|mu_x|15/2>| = |<13/2|mu_y|15/2>| = g_J sqrt(15)/2 for the state of the same sign
    assert max(tm[0, 2], tm[0, 3]) == pytest.approx(2 * g_j * np.sqrt(15) / 2 / 3)
    assert min(tm[0, 2], tm[0, 3]) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------
# point charges
# --------------------------------------------------------------------------------------
def _cube(r):
    return np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * r / np.sqrt(3)


def _octahedron(r):
    return np.vstack([np.eye(3), -np.eye(3)]) * r


def test_cubic_point_charges_give_the_cubic_stevens_ratios():
    cube = values_from_vector(pcem_parameters("Dy3+", _cube(2.4), -1.0))
    octa = values_from_vector(pcem_parameters("Dy3+", _octahedron(2.4), -1.0))
    for p in (cube, octa):
        assert p["4,4"] / p["4,0"] == pytest.approx(5.0)
        assert p["6,4"] / p["6,0"] == pytest.approx(-21.0)
        others = [v for key, v in p.items() if key not in ("4,0", "4,4", "6,0", "6,4")]
        assert np.abs(others).max() < 1e-12 * abs(p["4,0"])
    assert cube["4,0"] / octa["4,0"] == pytest.approx(-8.0 / 9.0)   # 8-fold vs 6-fold cubic


def test_two_axial_charges_and_the_quadrupole_limit():
    ion = lanthanide_ion("Ce3+")
    r = 3.0 / BOHR
    p = values_from_vector(pcem_parameters(ion, [[0, 0, 3.0], [0, 0, -3.0]], -2.0))
    # B20 = -theta_2 <r^2> sum_j q_j (3cos^2 - 1)/(4 R^3) (a.u.)
    assert p["2,0"] == pytest.approx(-ion.theta[2] * ion.radial[2] * (2 * -2.0 * 2 / 4) / r ** 3
                                     * HARTREE)
    assert p["2,0"] < 0 and abs(p["2,1"]) < 1e-12


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_rank2_parameters_equal_the_quadrupole_operator_equivalent(seed):
    """Independent route for k = 2: V2 = -sum_j q_j (3 R_a R_b - R^2 d_ab) r_a r_b /(2 R^5) and
    r_a r_b -> theta_2 <r^2> (J_a J_b + J_b J_a)/2 (traceless)."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(5, 3)) * 2.4
    q = rng.uniform(-1, 0.2, size=5)
    ion = lanthanide_ion("Er3+")
    vec = pcem_parameters(ion, pos, q)
    h = hamiltonian(ion, np.where([k == 2 for k, _ in cf_keys()], vec, 0.0))
    jx, jy, jz = angular_momentum(ion.J)
    jv = [jx, jy, jz]
    ref = np.zeros_like(h)
    for p, c in zip(pos / BOHR, q):
        rr = np.linalg.norm(p)
        quad = (3 * np.outer(p, p) - rr * rr * np.eye(3)) / (2 * rr ** 5)
        for a in range(3):
            for b in range(3):
                ref += -c * quad[a, b] * 0.5 * (jv[a] @ jv[b] + jv[b] @ jv[a])
    ref *= ion.theta[2] * ion.radial[2] * HARTREE
    assert np.abs(h - ref).max() < 1e-9 * np.abs(ref).max()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_pcem_equals_wybourne_route_with_scipy_harmonics(seed):
    """B^k_q = -<r^k> sum_j q_j conj(C^k_q(R_j)) / R_j^(k+1) (scipy's Y_k^q), converted to
    Stevens with the ion's theta_k, equals the direct tesseral PCEM."""
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(6, 3)) * 2.5
    q = rng.uniform(-1, 0.3, size=6)
    ion = lanthanide_ion("Dy3+")
    r = np.linalg.norm(pos, axis=1) / BOHR
    theta = np.arccos(pos[:, 2] / np.linalg.norm(pos, axis=1))
    phi = np.arctan2(pos[:, 1], pos[:, 0])
    wyb = {}
    for k in (2, 4, 6):
        for m in range(0, k + 1):
            ckq = np.sqrt(4 * np.pi / (2 * k + 1)) * sph_harm_y(k, m, theta, phi)
            b = -ion.radial[k] * np.sum(q * np.conj(ckq) / r ** (k + 1)) * HARTREE
            wyb[f"{k},{m}"] = b.real
            if m:
                wyb[f"{k},{-m}"] = b.imag
    direct = values_from_vector(pcem_parameters(ion, pos, q))
    via = stevens_from_wybourne(wyb, ion)
    for key in direct:
        assert via[key] == pytest.approx(direct[key], rel=1e-9, abs=1e-12 * abs(direct["2,0"]))


@settings(max_examples=25, deadline=None)
@given(r=rotations(), seed=st.integers(0, 2 ** 32 - 1))
def test_rotating_charges_keeps_levels_and_rotates_easy_axis(r, seed):
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(7, 3))
    pos *= (rng.uniform(2.2, 2.6, size=7) / np.linalg.norm(pos, axis=1))[:, None]
    pos[0], pos[1] = [0.1, 0.05, 2.15], [-0.05, 0.1, -2.2]        # a clear easy axis
    q = np.r_[-1.0, -1.0, rng.uniform(-0.4, 0.0, size=5)]
    a = solve("Dy3+", pcem_parameters("Dy3+", pos, q))
    b = solve("Dy3+", pcem_parameters("Dy3+", pos @ r.T, q))
    assert b.energies == pytest.approx(a.energies, abs=1e-7 * a.energies[-1])
    assert b.g_values == pytest.approx(a.g_values, abs=1e-8)
    assert abs(np.dot(b.easy_axis, r @ a.easy_axis)) == pytest.approx(1.0, abs=1e-9)
    perm = rng.permutation(7)
    c = pcem_parameters("Dy3+", pos[perm], q[perm])
    assert c == pytest.approx(pcem_parameters("Dy3+", pos, q), abs=1e-12)


def test_pcem_rejects_a_charge_on_the_ion():
    with pytest.raises(ValueError, match="sits on the ion"):
        pcem_parameters("Dy3+", [[0, 0, 0], [0, 0, 2]], -1.0)


# --------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), a=st.sampled_from(["stevens", "wybourne", "ito"]),
       b=st.sampled_from(["stevens", "wybourne", "ito"]),
       ion=st.sampled_from(["Dy3+", "Er3+", "Tb3+"]))
def test_conversions_round_trip(seed, a, b, ion):
    vals = random_parameters(np.random.default_rng(seed))
    src = cf_parameter_set(vals, a)
    there = convert_cf_parameters(src, b, ion)
    back = convert_cf_parameters(there, a, ion)
    assert there["convention"] == b and back["convention"] == a
    for key, v in vals.items():
        assert back["values"][key] == pytest.approx(v, rel=1e-12, abs=1e-15)
    # every convention describes the same Hamiltonian
    assert solve(ion, there).energies == pytest.approx(solve(ion, src).energies, abs=1e-8)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), j=st.sampled_from([2.5, 4, 7.5]))
def test_complex_ito_round_trip_and_operator_definition(seed, j):
    vals = random_parameters(np.random.default_rng(seed),
                             ranks=tuple(k for k in (2, 4, 6) if k <= 2 * j))
    a = ito_complex_from_stevens(vals, j)
    back = stevens_from_ito_complex(a, j)
    for key, v in vals.items():
        assert back[key] == pytest.approx(v, rel=1e-10, abs=1e-14)
    # H = sum A(k,q) Y^(k,q) with <J M1|Y^(k,q)|J M2> = CG(J M2 k q|J M1)/CG(J J k 0|J J)
    m = m_values(j)
    h = sum(v * stevens_operator(j, *map(int, key.split(","))) for key, v in vals.items())
    ref = np.zeros_like(h)
    for (k, q), val in a.items():
        norm = clebsch_gordan(j, j, k, 0, j, j)
        for i1, m1 in enumerate(m):
            for i2, m2 in enumerate(m):
                if abs(m1 - m2 - q) < 1e-9:
                    ref[i1, i2] += val * clebsch_gordan(j, m2, k, q, j, m1) / norm
    assert np.abs(h - ref).max() < 1e-9 * np.abs(h).max()


def test_wybourne_needs_the_ion_and_theta_zero_ranks():
    with pytest.raises(ValueError, match="needs the ion"):
        convert_cf_parameters({"convention": "wybourne", "values": {"2,0": 1.0}}, "stevens")
    st6 = stevens_from_wybourne({"6,0": 100.0, "2,0": 100.0}, "Ce3+")   # theta_6 = 0 for Ce
    assert st6["6,0"] == 0.0 and st6["2,0"] == pytest.approx(100 * -2 / 35 / 2)
    with pytest.raises(ValueError, match="theta_6 = 0"):
        convert_cf_parameters({"convention": "stevens", "values": {"6,0": 1.0}}, "wybourne", "Ce3+")
    with pytest.raises(ValueError, match="out of range"):
        cf_parameter_set({"2,3": 1.0})
    assert vector_from_values({"4,-1": 2.0})[cf_keys().index((4, -1))] == 2.0


# --------------------------------------------------------------------------------------
# structures, calibration, batch, calculator
# --------------------------------------------------------------------------------------
def test_donor_classification_and_charge_schemes():
    atoms = dy_complex()
    pcm = point_charge_model(atoms, charges="formal")
    assert pcm.types == ("O_alkoxide",) * 2 + ("O_water",) * 5
    assert pcm.charges == pytest.approx([-1, -1] + [-0.2] * 5)
    rec = point_charge_model(atoms, charges="rec")
    assert np.linalg.norm(rec.positions, axis=1) == pytest.approx(
        [2.15 - 0.3] * 2 + [2.40 - 0.4] * 5)
    # carboxylate, hydroxide, carbonyl and halide donors
    mol = Atoms("DyOCOHOHCl", positions=[[0, 0, 0], [2.3, 0, 0], [3.2, 0.9, 0], [4.4, 0.7, 0],
                                          [2.9, 2.0, 0.0], [0, 2.3, 0], [0, 3.25, 0], [0, 0, 2.7]])
    types = {mol[i].symbol + str(i): classify_donor(mol, 0, i) for i in (1, 5, 7)}
    assert types == {"O1": "O_carboxylate", "O5": "O_hydroxide", "Cl7": "Cl"}
    ketone = Atoms("DyOC", positions=[[0, 0, 0], [0, 0, 2.35], [0, 0, 3.57]])
    assert classify_donor(ketone, 0, 1) == "O_neutral"
    xtb = np.linspace(-0.8, 0.4, len(atoms))
    own = point_charge_model(atoms, charges=xtb, include="all")
    assert len(own.charges) == len(atoms) - 1 and own.charges == pytest.approx(xtb[1:])


def test_dy_h2o5_l2_calibration_range():
    """Defaults (REC) put Dy(H2O)5L2 in the range of the GA/GAUSS-II family (a few hundred
    cm-1 to the first excited doublet, ~615 cm-1 at best) with a |+-15/2> ground doublet."""
    g_j = lanthanide_ion("Dy3+").g_J
    e1 = []
    for kw in (dict(), dict(r_ax=(2.10, 2.10), r_w=(2.35,) * 5), DISTORTED):
        _, _, lv = crystal_field_from_structure(dy_complex(**kw))
        assert 250 < lv.kd_energies[1] < 650
        assert lv.mean_abs_mj()[0] > 7.49
        assert lv.g_values[0] == pytest.approx([0, 0, 15 * g_j], abs=5e-3)
        e1.append(lv.kd_energies[1])
    assert e1[1] > e1[0] > e1[2]            # shorter axial bonds, larger gap; distortion lowers it
    # the unscreened formal charges give a larger splitting than REC, shielding reduces it
    _, _, formal = crystal_field_from_structure(dy_complex(), charges="formal")
    _, _, shielded = crystal_field_from_structure(dy_complex(), charges="formal", shielding=True)
    assert formal.kd_energies[1] > e1[0] > shielded.kd_energies[1] > 0


def test_batched_levels_equal_single_structures():
    rng = np.random.default_rng(3)
    base = dy_complex(**DISTORTED)
    frames = []
    for _ in range(6):
        a = base.copy()
        a.positions += rng.normal(scale=0.03, size=a.positions.shape)
        frames.append(a)
    batch = crystal_field_batch(frames)
    assert batch.kd_energies.shape == (6, 8) and batch.g_values.shape == (6, 8, 3)
    for i, f in enumerate(frames):
        _, _, one = crystal_field_from_structure(f)
        assert batch.kd_energies[i] == pytest.approx(one.kd_energies, abs=1e-8)
        assert batch.g_values[i] == pytest.approx(one.g_values, abs=1e-8)
        assert batch[i].easy_axis == pytest.approx(one.easy_axis, abs=1e-9)
    per_frame = crystal_field_batch(frames, same_topology=False)
    assert per_frame.kd_energies == pytest.approx(batch.kd_energies, abs=1e-8)


def test_ase_calculator_properties_and_rotation():
    atoms = dy_complex(**DISTORTED)
    atoms.calc = CrystalFieldCalculator()
    kd = atoms.calc.get_property("kd_energies", atoms)
    g = atoms.calc.get_property("g_tensors", atoms)
    cfp = atoms.calc.get_property("cf_parameters", atoms)
    assert kd.shape == (8,) and kd[0] == 0.0 and np.all(np.diff(kd) > 0)
    assert g.shape == (8, 3) and np.all(np.diff(g, axis=1) >= 0)
    assert validate_label("kd_energies", kd, len(atoms)) is not None
    assert validate_label("g_tensors", g, len(atoms)).shape == (8, 3)
    assert cfp.shape == (27,)                  # array form, CF_PARAMETER_KEYS order
    label = atoms.calc.cf_parameters_dict(atoms)
    assert validate_label("cf_parameters", label, len(atoms))["convention"] == "stevens"
    assert label["values"]["2,0"] == pytest.approx(cfp[CF_PARAMETER_KEYS.index("2,0")])
    props = atoms.get_properties(["kd_energies", "g_tensors", "cf_energies", "easy_axis"])
    assert props["cf_energies"].shape == (16,) and props["kd_energies"] == pytest.approx(kd)
    import io

    from ase.io import write
    write(io.StringIO(), atoms, format="extxyz")  # no clash with ASE's own property names
    axis = atoms.calc.get_property("easy_axis", atoms)
    rotated = atoms.copy()
    rotated.rotate(40, (1, 2, 3), center=atoms.positions[0])
    rotated.calc = CrystalFieldCalculator()
    assert rotated.calc.get_property("kd_energies", rotated) == pytest.approx(kd, abs=1e-7)
    assert abs(np.dot(rotated.calc.get_property("easy_axis", rotated),
                      (rotated.positions[1] - rotated.positions[0]) / 2.15)) == pytest.approx(
        abs(np.dot(axis, (atoms.positions[1] - atoms.positions[0]) / 2.15)), abs=1e-9)


def test_calculator_refuses_unsupported_structures():
    water = molecule("H2O")
    water.calc = CrystalFieldCalculator()
    with pytest.raises(ValueError, match="no lanthanide"):
        water.calc.get_property("kd_energies", water)
    eu = dy_complex()
    eu[0].symbol = "Eu"
    eu.calc = CrystalFieldCalculator()
    with pytest.raises(ValueError, match="no crystal-field splitting"):
        eu.calc.get_property("kd_energies", eu)
    y = dy_complex()
    y[0].symbol = "Y"
    y.calc = CrystalFieldCalculator(metal_index=0)
    with pytest.raises(ValueError, match="give the ion explicitly"):
        y.calc.get_property("kd_energies", y)
    y.calc = CrystalFieldCalculator(metal_index=0, ion="Dy3+")     # Y-substituted geometry
    assert y.calc.get_property("kd_energies", y).shape == (8,)


# --------------------------------------------------------------------------------------
# CLI (the sub-app; main.py registers it as `molmag cf`)
# --------------------------------------------------------------------------------------
runner = CliRunner()


def cli(*args, ok=True):
    result = runner.invoke(cf.app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_cli_levels_reproduces_the_ce_reference():
    out = json.loads(cli("levels", "--ion", "Ce3+", "--convention", "stevens", "--param",
                         "2,0=-115.37457113", "--param", "4,0=0.56360024", "--json").stdout)
    assert out["ion"] == "Ce3+" and out["J"] == 2.5
    assert out["kd_energies"] == pytest.approx(CE_KD, abs=2e-4)
    assert len(out["energies"]) == 6 and np.array(out["g_tensors"]).shape == (3, 3)
    assert out["g_tensors"][0][2] == pytest.approx(5 * lanthanide_ion("Ce").g_J)
    mev = json.loads(cli("levels", "--ion", "Ce3+", "--unit", "meV", "--param",
                         f"2,0={convert(-115.37457113, 'cm-1', 'meV')}", "--param",
                         f"4,0={convert(0.56360024, 'cm-1', 'meV')}", "--json").stdout)
    assert mev["kd_energies"] == pytest.approx(convert(np.array(CE_KD), "cm-1", "meV"), abs=1e-6)
    human = cli("levels", "--ion", "Ce3+", "-p", "2,0=-115.37457113", "-p", "4,0=0.56360024").output
    assert "1249.231" in human and "±5/2" in human


def test_cli_levels_errors_are_one_line():
    for args, msg in [(["--ion", "Dy3+", "--param", "2,5=1"], "out of range"),
                      (["--ion", "Dy3+", "--param", "x=1"], "not of the form"),
                      (["--ion", "Dy3+", "--param", "2,0"], "expected K,Q=VALUE"),
                      (["--ion", "Dy3+", "--param", "2,0=abc"], "not a number"),
                      (["--ion", "Xy3+", "--param", "2,0=1"], "unknown or unsupported ion"),
                      (["--ion", "Ce3+", "--param", "6,0=1"], "exceeds 2J"),
                      (["--ion", "Dy3+", "--param", "2,0=1", "--convention", "foo"],
                       "unknown convention"),
                      (["--ion", "Dy3+"], "at least one --param")]:
        r = cli("levels", *args, ok=False)
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, args
        assert len(r.output.strip().splitlines()) == 1


def test_cli_spectrum_structure_and_point_charges(tmp_path):
    path = tmp_path / "dy.xyz"
    dy_complex(**DISTORTED).write(path)
    out = json.loads(cli("spectrum", path, "--json").stdout)
    assert out["ion"] == "Dy3+" and len(out["kd_energies"]) == 8
    assert out["radial_integrals_a0"] == {"<r^2>": 0.849, "<r^4>": 1.977, "<r^6>": 10.44}
    assert out["options"]["charges"] == "rec" and out["options"]["shielding"] is False
    assert out["cf_parameters"]["convention"] == "stevens"
    assert len(out["cf_parameters"]["values"]) == 27
    assert len(out["donors"]) == 7 and np.linalg.norm(out["easy_axis"]) == pytest.approx(1.0)
    shielded = json.loads(cli("spectrum", path, "--charges", "formal", "--shielding",
                              "--json").stdout)
    assert shielded["options"]["sternheimer_sigma"]["2"] == pytest.approx(0.527)
    charges = tmp_path / "q.txt"
    charges.write_text("\n".join(["0.0"] + ["-0.5"] * (len(dy_complex()) - 1)))
    own = json.loads(cli("spectrum", path, "--charges", charges, "--json").stdout)
    assert own["donors"][0]["charge"] == -0.5
    assert "easy axis" in cli("spectrum", path).output
    pc = tmp_path / "pc.txt"
    pc.write_text("# q x y z\n-2 0 0 3\n-2 0 0 -3\n")
    pco = json.loads(cli("spectrum", "--ion", "Ce3+", "--point-charges", pc, "--json").stdout)
    ion = lanthanide_ion("Ce3+")
    b20 = -ion.theta[2] * ion.radial[2] * (2 * -2.0 * 2 / 4) / (3 / BOHR) ** 3 * HARTREE
    assert pco["cf_parameters"]["values"]["2,0"] == pytest.approx(b20)
    assert pco["easy_axis"] == pytest.approx([0, 0, 1])


def test_cli_spectrum_errors(tmp_path):
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    water = tmp_path / "w.xyz"
    molecule("H2O").write(water)
    pc = tmp_path / "pc.txt"
    pc.write_text("-1 0 0 2\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("-1 0 0\n")
    cases = [([empty], "contains no structures"), ([water], "no lanthanide"),
             ([], "either STRUCTURE"),
             ([water, "--point-charges", pc], "either STRUCTURE"),
             (["--point-charges", pc], "needs --ion"),
             (["--point-charges", empty, "--ion", "Dy3+"], "no point charges"),
             (["--point-charges", bad, "--ion", "Dy3+"], "expected 4 numbers"),
             ([tmp_path / "missing.xyz"], "no such file"),
             ([water, "--charges", "bogus"], "neither")]
    for args, msg in cases:
        r = cli("spectrum", *args, ok=False)
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, \
            (args, r.output)
