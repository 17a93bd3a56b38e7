"""Parsers of ORCA / OpenMolcas / SINGLE_ANISO files against real outputs (../shared/data) and
against outputs written here in ORCA's layout from known tensors (so CI checks them too)."""

from __future__ import annotations

import numpy as np
import pytest

from molmag.io.errors import DataFileError
from molmag.io.molcas_aniso_data import doublet_g
from molmag.io.qc import parse_file
from molmag.physics.crystal_field import solve, stevens_from_ito
from molmag.physics.spin_hamiltonian import G_E
from molmag.physics.zfs import tensor_from_zfs, zfs_from_tensor

QC = "qc-outputs"
CE = "orca610_ce3_axial_pointcharges_single_aniso.out"
O2 = "orca303_dioxygen_dft_zfs.out"
NI = "orca610_ni_oh_casscf_zfs_excerpt.out"
ANISO = "openmolcas_aniso_input_test459.txt"


# ------------------------------------------------------------------ ORCA-layout fixtures
def _mat(m) -> str:
    return "\n".join("  " + "  ".join(f"{x:11.6f}" for x in row) + " " for row in m)


def orca_casscf_zfs_block(tensor, title="2ND ORDER SOC CONTRIBUTION") -> str:
    """A CASSCF ZFS block in ORCA 6's layout for a given D tensor (cm-1)."""
    p = zfs_from_tensor(tensor)
    w, v = np.linalg.eigh(tensor)
    return f"""--------------------------------------------
           ZERO-FIELD SPLITTING
{title}
--------------------------------------------

Raw matrix (cm-1):
{_mat(tensor)}

Eigenvalues (cm-1):
  {"  ".join(f"{x:11.6f}" for x in w)}

Eigenvalues (traceless) (cm-1):
  {"  ".join(f"{x - w.mean():11.6f}" for x in w)}

Eigenvectors:
{_mat(v)}

Euler angles w.r.t. molecular frame (degrees):
     0.0000       0.0000       0.0000

D   = {p.D:12.6f}  cm-1
E/D = {p.E_over_D:12.6f}

"""


def orca_like_output(blocks: str, *, geometry=True, terminated=True) -> str:
    head = ("                                 * O   R   C   A *\n"
            "                         Program Version 6.1.0  -  RELEASE   -\n\n")
    geo = """---------------------------------
CARTESIAN COORDINATES (ANGSTROEM)
---------------------------------
  Co     0.000000    0.000000    0.000000
  Cl     1.300000    1.300000    1.300000
  Cl    -1.300000   -1.300000    1.300000
  Cl    -1.300000    1.300000   -1.300000
  Cl     1.300000   -1.300000   -1.300000

 Total Charge           Charge          ....   -2
 Multiplicity           Mult            ....    4
Number of active electrons          ...    7
Number of active orbitals           ...    5
""" if geometry else ""
    tail = ("\n                             ****ORCA TERMINATED NORMALLY****\n"
            "TOTAL RUN TIME: 0 days\n")
    return head + geo + blocks + (tail if terminated else "")


@pytest.fixture
def d_tensor():
    r = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    r *= np.sign(np.linalg.det(r))
    return tensor_from_zfs(-61.5, 4.2, r)


def test_orca_casscf_blocks_from_known_tensor(tmp_path, d_tensor):
    heff = d_tensor * 1.05
    text = orca_like_output(
        "----------------------------------\nQDPT WITH CASSCF DIAGONAL ENERGIES\n---\n"
        + orca_casscf_zfs_block(d_tensor)
        + orca_casscf_zfs_block(heff, "EFFECTIVE HAMILTONIAN SOC CONTRIBUTION")
        + "----------------------------------\nQDPT WITH NEVPT2 DIAGONAL ENERGIES\n---\n"
        + orca_casscf_zfs_block(heff * 1.1, "EFFECTIVE HAMILTONIAN SOC CONTRIBUTION"))
    f = tmp_path / "co.out"
    f.write_text(text)
    r = parse_file(f)
    assert r.program == "orca" and r.version == "6.1.0"
    assert [z.method for z in r.zfs] == ["CASSCF(7,5)/QDPT 2nd order SOC",
                                        "CASSCF(7,5)/QDPT effective Hamiltonian SOC",
                                        "NEVPT2(7,5)/QDPT effective Hamiltonian SOC"]
    assert r.kinds == ["casscf-zfs", "nevpt2-zfs", "geometry"]
    np.testing.assert_allclose(r.zfs[0].tensor, d_tensor, atol=1e-6)
    assert r.zfs[0].D == pytest.approx(-61.5, abs=1e-5)
    assert r.zfs[0].E == pytest.approx(-4.2, abs=1e-4)        # E carries the sign of D
    # the dataset row takes NEVPT2 effective Hamiltonian unless told otherwise
    rec = r.to_record()
    np.testing.assert_allclose(rec.labels["zfs_tensor"], heff * 1.1, atol=1e-6)
    assert rec.provenance["zfs_tensor"].method.startswith("NEVPT2(7,5)")
    assert rec.provenance["zfs_tensor"].program == "ORCA"
    rec2 = r.to_record(zfs_method="casscf(7,5)/qdpt 2nd")
    np.testing.assert_allclose(rec2.labels["zfs_tensor"], d_tensor, atol=1e-6)
    with pytest.raises(DataFileError, match="several ZFS blocks"):
        r.to_record(zfs_method="effective")
    assert rec.charge == -2 and rec.multiplicity == 4
    assert rec.atoms.get_chemical_formula() == "Cl4Co"
    js = r.to_json()
    assert isinstance(js["zfs"], list) and js["structure"]["multiplicity"] == 4


def test_orca_truncated_or_garbled(tmp_path, d_tensor):
    full = orca_like_output(orca_casscf_zfs_block(d_tensor))
    lines = full.splitlines()
    for cut in range(1, len(lines) - 1):
        f = tmp_path / f"cut{cut}.out"
        f.write_text("\n".join(lines[:cut]) + "\n")
        with pytest.raises(DataFileError) as err:
            parse_file(f)
        assert str(f) in str(err.value)
    garbled = full.replace("D   = ", "D   =  1").replace("Raw matrix", "Raw matrix")
    f = tmp_path / "garbled.out"
    f.write_text(garbled)
    with pytest.raises(DataFileError, match="printed D"):
        parse_file(f)
    bad = full.replace(f"{d_tensor[1, 1]:11.6f}", "   nonsense")
    f.write_text(bad)
    with pytest.raises(DataFileError, match="raw D matrix"):
        parse_file(f)


def test_unrecognised_and_empty_files(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hello world\n")
    with pytest.raises(DataFileError, match="unrecognised"):
        parse_file(f)
    f.write_text("")
    with pytest.raises(DataFileError, match="empty"):
        parse_file(f)
    with pytest.raises(DataFileError, match="cannot read"):
        parse_file(tmp_path / "missing.out")


def test_row_needs_structure(tmp_path, d_tensor):
    f = tmp_path / "frag.out"
    f.write_text(orca_casscf_zfs_block(d_tensor))          # an excerpt: no banner, no geometry
    r = parse_file(f)
    assert r.atoms is None and len(r.zfs) == 1
    with pytest.raises(DataFileError, match="no geometry"):
        r.to_record()


# ------------------------------------------------------------------ real files
def test_orca_ni_casscf_excerpt(shared_data):
    r = parse_file(shared_data / QC / NI)
    assert [z.treatment for z in r.zfs] == ["2nd order", "effective Hamiltonian"]
    assert r.zfs[0].level == "CASSCF"
    np.testing.assert_allclose(np.diag(r.zfs[0].tensor), [-47.279088, -47.279088, -47.279087])
    np.testing.assert_allclose(r.zfs[0].axes[:, 0], [0.909309, 0.414430, -0.037486])
    assert r.zfs[0].D == 0.0 and r.zfs[0].E_over_D == 0.0
    assert abs(zfs_from_tensor(r.zfs[0].tensor).D) < 1e-5            # D = 0 by symmetry
    assert np.abs(r.zfs[1].tensor).max() == 0.0
    assert r.atoms is None


def test_orca_o2_dft(shared_data):
    r = parse_file(shared_data / QC / O2)
    assert r.version == "3.0.3"
    z = r.zfs[0]
    assert z.level == "DFT" and z.D == pytest.approx(2.108469) and z.E_over_D == 0.0
    np.testing.assert_allclose(z.tensor, np.diag([-0.250117, -0.250117, 1.858352]))
    assert zfs_from_tensor(z.tensor).D == pytest.approx(2.108469, abs=2e-6)
    np.testing.assert_allclose(r.g_tensors, [[2.0021331, 2.0194935, 2.0194935]])
    np.testing.assert_allclose(r.g_matrix, np.diag([2.0194935, 2.0194935, 2.0021331]))
    np.testing.assert_allclose(r.g_axes[0][:, 0], [0.0, 0.0, 1.0])      # g_zz along z
    assert r.charge == 0 and r.multiplicity == 3
    np.testing.assert_allclose(r.atoms.positions, [[0, 0, 0], [0, 0, 1.8]])
    rec = r.to_record()
    assert set(rec.labels) == {"zfs_tensor", "g_tensors"}
    assert rec.provenance["zfs_tensor"].version == "3.0.3"


def test_orca_ce_single_aniso(shared_data):
    r = parse_file(shared_data / QC / CE)
    assert r.kinds == ["so-spectrum", "single-aniso", "crystal-field", "geometry"]
    np.testing.assert_allclose(r.kd_energies, [0.0, 1249.2308, 2110.5583])
    assert len(r.so_energies) == 14 and r.so_energies[-1] == pytest.approx(4597.5888)
    assert r.g_tensors.shape == (3, 3)
    assert r.g_tensors[0, 2] == pytest.approx(4.13027822) and r.g_tensors[0, 0] < 1e-6
    np.testing.assert_allclose(r.g_axes[0][:, 2], [0.0, 0.0, 1.0], atol=1e-6)
    cf = r.cf_parameters
    assert cf["convention"] == "stevens" and len(cf["values"]) == 14
    assert cf["values"]["2,0"] == pytest.approx(-115.37457113106)
    assert cf["values"]["4,0"] == pytest.approx(0.56360023512012)
    # the ITO table converts to the ESO table (K_kq factors, C(k,q) -> q < 0)
    eso = stevens_from_ito(r.cf_parameters_ito["values"])
    for key, value in cf["values"].items():
        assert eso[key] == pytest.approx(value, rel=1e-9, abs=1e-15), key
    # structure: Ce3+ and the two -2 e point charges
    assert r.atoms.get_chemical_symbols() == ["Ce"] and r.charge == 3 and r.multiplicity == 2
    np.testing.assert_allclose(r.point_charges, [[-2, 0, 0, 3.0], [-2, 0, 0, -3.0]])
    assert r.calculation["active_space"] == [1, 7]
    assert any("AILFT" in w for w in r.calculation["warnings"])
    rec = r.to_record()
    assert rec.provenance["kd_energies"].parameters["point_charges"][0][0] == -2.0


def test_round_trip_eso_to_engine_levels(shared_data):
    """ESO parameters of the file -> molmag's crystal-field engine -> the file's doublets."""
    r = parse_file(shared_data / QC / CE)
    levels = solve("Ce3+", r.cf_parameters)
    np.testing.assert_allclose(levels.kd_energies, r.kd_energies, atol=0.01)
    np.testing.assert_allclose(levels.kd_energies, [0.0, 1249.2308, 2110.5583], atol=0.01)
    ito_levels = solve("Ce3+", r.cf_parameters_ito)
    np.testing.assert_allclose(ito_levels.kd_energies, r.kd_energies, atol=0.01)


def test_aniso_data_file(shared_data):
    r = parse_file(shared_data / QC / ANISO)
    assert r.program == "openmolcas" and "aniso-data" in r.kinds
    np.testing.assert_allclose(r.kd_energies[:3], [0.0, 257.0637, 837.9244])
    assert len(r.kd_energies) == 7 and len(r.g_tensors) == 7
    assert r.calculation["multiplicities"] == [2] * 7
    # spin moment = second block: exact spin-1/2 algebra [S_x, S_y] = i S_z over the f1 space
    from molmag.io.molcas_aniso_data import _matrices
    moment, spin = _matrices(shared_data / QC / ANISO)
    np.testing.assert_allclose(spin[0] @ spin[1] - spin[1] @ spin[0], 1j * spin[2], atol=1e-10)
    assert np.trace(spin[2] @ spin[2]).real == pytest.approx(14 * 0.25)
    # g from the same formula applied to the spin block reproduces the values OpenMolcas 18.09
    # stored for this file in its test 459 check file (GTENS_MAIN): the formula is SINGLE_ANISO's
    np.testing.assert_allclose(doublet_g(spin, [0, 1])[0], [0.088988484443, 0.280770404816,
                                                            0.511029897838], atol=1e-8)
    # and g from the magnetic moment M = -(L + g_e S) is what molmag reports
    np.testing.assert_allclose(r.g_tensors[0], doublet_g(moment, [0, 1])[0])
    with pytest.raises(DataFileError, match="no geometry"):
        r.to_record()


def test_doublet_g_free_spin():
    s = 0.5 * np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
    g, axes = doublet_g(-G_E * s, [0, 1])
    np.testing.assert_allclose(g, [G_E] * 3, rtol=1e-12)


def test_truncated_real_files(shared_data):
    """Every file cut at many points: a clear DataFileError, or (for the excerpt, which has no
    ORCA banner to check the end against) only the complete blocks before the cut."""
    for name in (CE, O2, NI, ANISO):
        path = shared_data / QC / name
        lines = path.read_text().splitlines()
        full = parse_file(path)
        cuts = sorted(set(np.linspace(1, len(lines) - 2, 60).astype(int)))
        if name == CE:       # many cuts inside the SINGLE_ANISO output too
            start = next(i for i, l in enumerate(lines) if "Calling the SINGLE_ANISO" in l)
            cuts += list(range(start, start + 3000, 97))
        for cut in cuts:
            text = "\n".join(lines[:cut]) + "\n"
            import os
            import tempfile
            with tempfile.NamedTemporaryFile("w", suffix=".out", delete=False) as fh:
                fh.write(text)
            try:
                try:
                    r = parse_file(fh.name)
                except DataFileError as exc:
                    assert fh.name in str(exc)
                    continue
                assert name == NI, f"{name} cut at line {cut} parsed without error"
                assert len(r.zfs) <= len(full.zfs)
                for a, b in zip(r.zfs, full.zfs):
                    np.testing.assert_array_equal(a.tensor, b.tensor)
            finally:
                os.unlink(fh.name)


def test_aniso_data_garbled(tmp_path, shared_data):
    text = (shared_data / QC / ANISO).read_text().splitlines()
    f = tmp_path / "bad.txt"
    f.write_text("\n".join(text[:3] + [text[4]] + text[3:4] + text[5:]) + "\n")   # rows swapped
    with pytest.raises(DataFileError, match="not Hermitian"):
        parse_file(f)
    f.write_text("\n".join(text[:5] + ["0.1 abc"] + text[5:]) + "\n")
    with pytest.raises(DataFileError, match="'abc' is not a \\(finite\\) number"):
        parse_file(f)
    f.write_text("\n".join(text + ["1.0"]) + "\n")
    with pytest.raises(DataFileError, match="expected the file to end"):
        parse_file(f)


# ------------------------------------------------------------------ OpenMolcas log layout
def openmolcas_like_log(levels, eso, ito, *, stop_aniso=True, rc="_RC_ALL_IS_WELL_") -> str:
    """A log in OpenMolcas' layout (strings and formats of gateway_util/print_geometry,
    rasscf/inppri, single_aniso2, aniso_util/atens and crystalfield) for a Ce3+ model."""
    bohr = 1.0 / 0.529177210903
    rows = [("CE1", 0.0, 0.0, 0.0), ("F2", 0.0, 0.0, 2.3), ("F3", 0.0, 0.0, -2.3)]
    geo = "\n".join(f"      {i + 1:3d} {'':5s}{lab:<8s}"
                    f"{x * bohr:15.6f}{y * bohr:15.6f}{z * bohr:15.6f}"
                    f"{'':7s}{x:15.6f}{y:15.6f}{z:15.6f}" for i, (lab, x, y, z) in enumerate(rows))
    so = np.repeat(levels.kd_energies, 2)
    so_lines = "\n".join(f"ENERGY OF THE SPIN-ORBIT STATE ({i + 1:4d}) ={e:25.14f}"
                         for i, e in enumerate(so))
    g_blocks = ""
    for n, (g, ax) in enumerate(zip(levels.g_values, levels.g_axes)):
        g_rows = "\n".join(f" g{c} = {g[k]:18.14f} | {c}m |{ax[0, k]:18.14f}{ax[1, k]:18.14f}"
                           f"{ax[2, k]:18.14f} |" for k, c in enumerate("XYZ"))
        g_blocks += f"""
{'%' * 95}
     CALCULATION OF PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET {n + 1} ( effective S =  1/2)
{'%' * 95}
The pseudospin is defined in the basis of the following spin-orbit states:
spin-orbit state 1; energy(1) =       0.000 cm-1.

    g TENSOR:
--------------------------------------------------------|
    MAIN VALUES    |             MAIN MAGNETIC AXES     |   x , y , z  -- initial Cartesian axes
-------------------|----|   ----- x ------- y ------- z ---|
Xm, Ym, Zm -- main magnetic axes
{g_rows}
--------------------------------------------------------|
"""
    eso_rows = "\n".join(f"  {k} | {q:3d} |{1.0:11.2f}  |{v:22.14E} |"
                         for (k, q), v in ((tuple(map(int, key.split(","))), v)
                                           for key, v in eso.items()))
    ito_rows = "\n".join(f"  {k}  |  {q}  |{ito.get(f'{k},{q}', 0.0):22.14E} |"
                         f"{ito.get(f'{k},{-q}', 0.0) if q else 0.0:22.14E} |"
                         for k in (2, 4) for q in range(0, k + 1))
    stop = (f"--- Stop Module: single_aniso at Wed Aug  8 12:17:31 2018 /rc={rc} ---\n"
            if stop_aniso else "")
    return f"""   This run of MOLCAS is using the pymolcas driver
               OPENMOLCASOPENMOLCA        version: 21.02
--- Start Module: gateway at Wed Aug  8 12:17:01 2018 ---
                    ************************************************{' '}
                    **** Cartesian Coordinates / Bohr, Angstrom ****{' '}
                    ************************************************{' '}

     Center  Label                x              y              z                     \
x              y              z
{geo}
--- Stop Module: gateway at Wed Aug  8 12:17:05 2018 /rc=_RC_ALL_IS_WELL_ ---
--- Start Module: rasscf at Wed Aug  8 12:17:06 2018 ---
      Spin quantum number                      0.5
      Total molecular charge    1.00
--- Stop Module: rasscf at Wed Aug  8 12:17:20 2018 /rc=_RC_ALL_IS_WELL_ ---
--- Start Module: single_aniso at Wed Aug  8 12:17:21 2018 ---
                                           &SINGLE_ANISO
LOW-LYING SPIN-ORBIT ENERGIES:
{so_lines}
{g_blocks}
{'%' * 95}
     CALCULATION OF CRYSTAL-FIELD PARAMETERS OF THE GROUND ATOMIC MULTIPLET J =  5/2.
{'%' * 95}
********************************************************************************
The Crystal-Field Hamiltonian:
   Hcf = SUM_{{k,q}} * [ B(k,q) * O(k,q) +  C(k,q) * W(k,q) ];
-----------------------------------------------------------|
  k  |  q  |         B(k,q)        |         C(k,q)        |
-----|-----|-----------------------|-----------------------|
{ito_rows}
-----------------------------------------------------------|

********************************************************************************
The Crystal-Field Hamiltonian:
   Hcf = SUM_{{k,q}} * [ B(k,q) * O(k,q) ];
where:
   O(k,q) =  Extended Stevens Operators (ESO) as defined in:
------------------------------------------------|
  k |  q  |    (K)^2    |         B(k,q)        |
----|-----|-------------|-----------------------|
{eso_rows}
------------------------------------------------|

DECOMPOSITION OF THE RASSI WAVE FUNCTIONS CORRESPONDING TO THE LOWEST ATOMIC MULTIPLET J = 5/2
{stop}
    Timing: Wall=25.44 User=25.43 System=1.00
"""


@pytest.fixture
def ce_model():
    from molmag.physics.crystal_field import ito_from_stevens
    eso = {"2,0": -115.37457113, "2,2": 3.5, "4,0": 0.56360024, "4,-3": 0.7}
    levels = solve("Ce3+", eso)
    full = {f"{k},{q}": eso.get(f"{k},{q}", 0.0) for k in (2, 4) for q in range(-k, k + 1)}
    return levels, full, ito_from_stevens(full)


def test_openmolcas_log(tmp_path, ce_model):
    levels, eso, ito = ce_model
    f = tmp_path / "ce.log"
    f.write_text(openmolcas_like_log(levels, eso, ito))
    r = parse_file(f)
    assert r.program == "openmolcas" and r.version == "21.02"
    assert r.kinds == ["single-aniso", "so-spectrum", "crystal-field", "geometry"]
    np.testing.assert_allclose(r.kd_energies, levels.kd_energies, atol=1e-9)
    np.testing.assert_allclose(r.g_tensors, levels.g_values, atol=1e-12)
    np.testing.assert_allclose(r.g_axes, levels.g_axes, atol=1e-12)
    for key, v in eso.items():
        assert r.cf_parameters["values"][key] == pytest.approx(v, rel=1e-12, abs=1e-14)
    assert stevens_from_ito(r.cf_parameters_ito["values"]) == pytest.approx(eso, rel=1e-12,
                                                                          abs=1e-14)
    np.testing.assert_allclose(solve("Ce3+", r.cf_parameters).kd_energies, r.kd_energies, atol=1e-6)
    assert r.atoms.get_chemical_symbols() == ["Ce", "F", "F"]
    np.testing.assert_allclose(r.atoms.positions[1], [0, 0, 2.3])
    rec = r.to_record()
    assert rec.charge == 1 and rec.multiplicity == 2
    assert rec.provenance["cf_parameters"].program == "OpenMolcas"


def test_openmolcas_log_truncated_or_failed(tmp_path, ce_model):
    levels, eso, ito = ce_model
    text = openmolcas_like_log(levels, eso, ito)
    lines = text.splitlines()
    stop = next(i for i, l in enumerate(lines) if "Stop Module: single_aniso" in l)
    f = tmp_path / "cut.log"
    for cut in range(2, stop, 3):
        f.write_text("\n".join(lines[:cut]) + "\n")
        with pytest.raises(DataFileError):
            parse_file(f)
    f.write_text(openmolcas_like_log(levels, eso, ito, rc="_RC_INTERNAL_ERROR_"))
    with pytest.raises(DataFileError, match="single_aniso stopped with rc=_RC_INTERNAL_ERROR_"):
        parse_file(f)


# ------------------------------------------------------------------ molmag parse
def test_cli_parse_json_and_db(tmp_path, d_tensor, ce_model):
    import json

    from typer.testing import CliRunner

    from molmag.cli.main import app
    from molmag.io import Dataset

    runner = CliRunner()
    co = tmp_path / "co.out"
    co.write_text(orca_like_output(orca_casscf_zfs_block(d_tensor)))
    res = runner.invoke(app, ["parse", str(co), "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.stdout)
    assert js["program"] == "orca" and js["kinds"] == ["casscf-zfs", "geometry"]
    assert js["zfs"]["D"] == pytest.approx(-61.5, abs=1e-5)
    assert js["zfs"]["E/D"] == pytest.approx(4.2 / 61.5, abs=1e-5)
    assert np.shape(js["zfs"]["tensor"]) == (3, 3) and js["structure"]["charge"] == -2

    ce = tmp_path / "ce.log"
    ce.write_text(openmolcas_like_log(*ce_model))
    db = tmp_path / "qc.db"
    res = runner.invoke(app, ["parse", str(co), str(ce), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    both = json.loads(res.stdout)
    assert [b["program"] for b in both] == ["orca", "openmolcas"]
    assert both[1]["cf_parameters"]["convention"] == "stevens"
    assert both[1]["cf_parameters_ito"]["convention"] == "ito"
    assert len(both[1]["g_tensors"]) == 3 and len(both[1]["kd_energies"]) == 3
    ds = Dataset(db)
    assert len(ds) == 2
    rows = list(ds.select())
    assert {tuple(sorted(r.labels)) for r in rows} == {
        ("zfs_tensor",), ("cf_parameters", "g_tensors", "kd_energies")}
    # re-adding is idempotent; a failing file (no geometry) means nothing is written
    frag = tmp_path / "frag.out"
    frag.write_text(orca_casscf_zfs_block(d_tensor))
    co2 = tmp_path / "co2.out"
    co2.write_text(orca_like_output(orca_casscf_zfs_block(2 * d_tensor))
                   .replace("1.300000", "1.310000"))
    res = runner.invoke(app, ["parse", str(co2), str(frag), "--db", str(db)])
    assert res.exit_code == 1 and "no geometry" in res.output
    assert "nothing was added" in res.output
    assert len(Dataset(db)) == 2
    res = runner.invoke(app, ["parse", str(co), "--db", str(db)])
    assert res.exit_code == 0 and len(Dataset(db)) == 2
    # truncated file: error names the file, exit 1, text output for the others still printed
    cut = tmp_path / "cut.out"
    cut.write_text("\n".join(co.read_text().splitlines()[:20]))
    res = runner.invoke(app, ["parse", str(cut), str(co)])
    assert res.exit_code == 1 and "cut.out" in res.output and "TERMINATED NORMALLY" in res.output


# ------------------------------------------------------------------ fuzzing regressions
def _expect_error(tmp_path, text, match, name="x.out"):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(DataFileError, match=match):
        parse_file(f)


def test_corrupted_orca_blocks_are_refused(tmp_path, d_tensor):
    good = orca_like_output(orca_casscf_zfs_block(d_tensor))
    row = f"{d_tensor[0, 0]:11.6f}"
    _expect_error(tmp_path, good.replace(row, "      1e999", 1), "not a finite number")
    _expect_error(tmp_path, good.replace("D   =   -61.500000", "D   =    61.500000"), "printed D")
    w = np.linalg.eigvalsh(d_tensor)
    _expect_error(tmp_path, good.replace(f"{w[0]:11.6f}", f"{w[0] + 5:11.6f}", 1), "eigenvalues")


def test_corrupted_single_aniso_blocks_are_refused(tmp_path, ce_model):
    levels, eso, ito = ce_model
    good = openmolcas_like_log(levels, eso, ito)
    _expect_error(tmp_path, good.replace("effective S =  1/2", "effective S =  1/0", 1),
                  "not an integer or half-integer")
    _expect_error(tmp_path, good.replace("J =  5/2.", "J =  5/2/."), "not an integer")
    _expect_error(tmp_path, good.replace("J =  5/2.", "J =  3/2."), "ranks above 2J")
    lines = good.splitlines()
    eso_row = next(i for i, l in enumerate(lines) if l.startswith("  4 |   2 |"))
    _expect_error(tmp_path, "\n".join(lines[:eso_row] + lines[eso_row + 1:]), "rank 4 has 8")
    _expect_error(tmp_path, "\n".join(lines[:eso_row + 1] + [lines[eso_row]] + lines[eso_row + 1:]),
                  "printed twice")
    b20 = f"{eso['2,0']:22.14E}"
    assert good.count(b20) == 2                       # in the ITO and the ESO table
    k = good.rindex(b20)
    _expect_error(tmp_path, good[:k] + f"{eso['2,0'] * 1.01:22.14E}" + good[k + len(b20):],
                  "disagrees with the ITO table")
    block = good.index("CALCULATION OF PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET 2")
    start = good.rindex("%" * 95, 0, block)
    end = good.index("CALCULATION OF PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET 3")
    end = good.rindex("%" * 95, 0, end)
    _expect_error(tmp_path, good[:start] + good[end:], "a block is missing")
    so = "ENERGY OF THE SPIN-ORBIT STATE (   4) ="
    i = good.index(so) + len(so)
    _expect_error(tmp_path, good[:i] + f"{levels.kd_energies[1] + 50:25.14f}" + good[i + 25:],
                  "not in Kramers pairs")
    _expect_error(tmp_path, good.replace("Spin quantum number                      0.5",
                                         "Spin quantum number                      1e999"),
                  "not a finite number")


def test_odd_first_lines_and_paths(tmp_path):
    _expect_error(tmp_path, "7 1\u00b2\nfoo\n", "unrecognised")
    with pytest.raises(DataFileError, match="cannot read"):
        parse_file("a\x00b")
    with pytest.raises(DataFileError, match="cannot read"):
        parse_file(tmp_path)


# ------------------------------------------------------------------ excerpts cut inside a block
def test_orca_excerpt_cut_inside_a_zfs_block_is_reported(tmp_path, d_tensor):
    """An excerpt (no ORCA banner, no termination line) that ends inside its last ZFS block keeps
    the complete blocks and names the cut one and its line in ``warnings`` (and in the JSON of
    ``molmag parse``); cut inside its only block it is an error naming that block."""
    import json

    from typer.testing import CliRunner

    from molmag.cli.main import app

    first = orca_casscf_zfs_block(d_tensor)
    second = orca_casscf_zfs_block(1.05 * d_tensor, "EFFECTIVE HAMILTONIAN SOC CONTRIBUTION")
    lines = (first + second).splitlines()
    n_first = len(first.splitlines())
    header2 = n_first + 2            # 1-based line of the second "ZERO-FIELD SPLITTING"
    assert "ZERO-FIELD SPLITTING" in lines[header2 - 1]
    last = next(i for i, l in enumerate(lines) if i >= n_first and l.startswith("E/D"))
    f = tmp_path / "excerpt.out"
    for cut in range(header2, last + 1):        # every cut from the header to before "E/D ="
        f.write_text("\n".join(lines[:cut]) + "\n")
        r = parse_file(f)
        assert len(r.zfs) == 1, cut
        np.testing.assert_allclose(r.zfs[0].tensor, d_tensor, atol=1e-6)
        assert r.zfs[0].D == pytest.approx(-61.5, abs=1e-5)
        assert len(r.warnings) == 1 and r.warnings[0].startswith(f"line {header2}: ")
        assert f"(line {cut})" in r.warnings[0] and "cut by the end of the excerpt" in r.warnings[0]
        if cut > header2:
            assert "CASSCF ZFS block (effective Hamiltonian)" in r.warnings[0]
    f.write_text("\n".join(lines[:last + 1]) + "\n")        # complete: no warning
    r = parse_file(f)
    assert len(r.zfs) == 2 and r.warnings == []
    assert r.zfs[1].D == pytest.approx(-61.5 * 1.05, abs=1e-5)
    # cut inside the only block: nothing complete, an error naming the block and the line
    for cut in (4, 10, n_first - 3):
        f.write_text("\n".join(lines[:cut]) + "\n")
        with pytest.raises(DataFileError, match="nothing complete to read: line 2: the CASSCF ZFS "
                                                r"block \(2nd order\) is cut"):
            parse_file(f)
    # a block that is wrong before the end of the file stays an error (not a "cut")
    bad = (first + second).replace(f"{1.05 * d_tensor[1, 1]:11.6f}", "   nonsense")
    f.write_text(bad)
    with pytest.raises(DataFileError, match="raw D matrix"):
        parse_file(f)
    # `molmag parse --json` carries the warning; the table shows it
    cut = header2 + 12
    f.write_text("\n".join(lines[:cut]) + "\n")
    res = CliRunner().invoke(app, ["parse", str(f), "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.stdout)
    assert js["zfs"]["D"] == pytest.approx(-61.5, abs=1e-5)
    assert js["warnings"] == [f"line {header2}: the CASSCF ZFS block (effective Hamiltonian) is "
                              f"cut by the end of the excerpt (line {cut}) and was not read"]
    res = CliRunner().invoke(app, ["parse", str(f)])
    assert res.exit_code == 0 and "warning" in res.output and "effective" in res.output


def test_orca_excerpt_cut_inside_the_spin_orbit_table(tmp_path, d_tensor):
    """A spin-orbit eigenvalue table running into the end of an excerpt may miss states: it is
    not read and says so; ended by a blank line it is read."""
    rows = "".join(f"  {i:2d}:   {e:12.2f}     0.0000     1.00e-01\n"
                   for i, e in enumerate([0, 0, 150.5, 150.5, 410.25, 410.25]))
    table = "Eigenvalues:     cm-1         eV      Boltzmann populations at T =  300.000 K\n"
    f = tmp_path / "so.out"
    f.write_text(orca_casscf_zfs_block(d_tensor) + table + rows + "\n")
    r = parse_file(f)
    np.testing.assert_allclose(r.so_energies, [0, 0, 150.5, 150.5, 410.25, 410.25])
    assert r.warnings == []
    f.write_text(orca_casscf_zfs_block(d_tensor) + table + "".join(rows.splitlines(True)[:3]))
    r = parse_file(f)
    assert r.so_energies is None and len(r.zfs) == 1
    n = len(orca_casscf_zfs_block(d_tensor).splitlines()) + 1
    assert r.warnings == [f"line {n}: the spin-orbit eigenvalue table runs into the end of the "
                          f"excerpt (line {n + 3}), so states may be missing: not read"]


# ------------------------------------------------------------------ SINGLE_ANISO data files
def _dy_aniso_data_file(mult_line: str, header: str = "1 16") -> tuple[str, np.ndarray]:
    """A molcas-8 ASCII data file for the Dy3+ J = 15/2 multiplet in the |J, mJ> basis, ordered
    as the doublets ±15/2, ±13/2, ..., ±1/2 (energies rising with falling |mJ|), with the
    magnetic moment M = -g_J J and the spin moment S = (g_J - 1) J (g_J = 4/3)."""
    from molmag.physics.spin_hamiltonian import spin_matrices
    j = 7.5
    jx, jy, jz = (np.asarray(a, dtype=complex) for a in spin_matrices(j))
    m = np.real(np.diag(jz))
    order = [i for k in np.argsort(-np.abs(m), kind="stable").reshape(-1, 2) for i in k]
    p = np.eye(16)[order]
    jx, jy, jz = (p @ a @ p.T for a in (jx, jy, jz))
    gj = 4.0 / 3.0
    energies = np.repeat([0.0, 120.5, 260.25, 410.0, 555.75, 700.0, 810.5, 905.125], 2)
    lines = [header, " ".join(f"{e:.4f}" for e in energies), mult_line]
    for block in ([-gj * a for a in (jx, jy, jz)], [(gj - 1) * a for a in (jx, jy, jz)]):
        for a in block:
            for row in a:
                lines.append(" ".join(f"{z.real:.14f} {z.imag:.14f}" for z in row))
    return "\n".join(lines) + "\n", energies


def test_aniso_data_file_whose_multiplicities_do_not_sum_to_nss(tmp_path):
    """OpenMolcas writes Dy3+ files with header '1 16' and multiplicity line '1': read from nss
    and the matrices with a warning; g of a pure ±mJ doublet is 2 g_J |mJ| along z, and of
    ±1/2 g_J (J + 1/2) across it."""
    text, energies = _dy_aniso_data_file("1")
    f = tmp_path / "dy.txt"
    f.write_text(text)
    r = parse_file(f)
    assert r.program == "openmolcas" and "g-tensors" in r.kinds
    np.testing.assert_allclose(r.kd_energies, energies[::2])
    assert len(r.g_tensors) == 8
    gj = 4.0 / 3.0
    for k, mj in enumerate(np.arange(7.5, 0, -1)):
        expected = [0, 0, 2 * gj * mj] if mj > 0.5 else [2 * gj * 0.5, gj * 8, gj * 8]
        np.testing.assert_allclose(r.g_tensors[k], expected, atol=1e-9)
    assert r.g_tensors[0][2] == pytest.approx(20.0)
    np.testing.assert_allclose(np.abs(r.g_axes[0][:, 2]), [0, 0, 1], atol=1e-9)
    assert r.calculation["multiplicities"] == [1]
    assert r.warnings == ["line 3: the spin multiplicities [1] sum to 1, not nss = 16: read from "
                          "nss and the 16 x 16 matrices (the multiplicities are not used)"]
    assert r.to_json()["warnings"] == r.warnings
    # a list that does add up gives no warning and the same numbers
    f.write_text(_dy_aniso_data_file("16")[0])
    r2 = parse_file(f)
    assert r2.warnings == [] and r2.calculation["multiplicities"] == [16]
    np.testing.assert_allclose(r2.g_tensors, r.g_tensors)
    # the counts still decide what belongs to which block: two multiplicities under nstate = 1
    # push every later number one place and the file is refused, not misread
    f.write_text(_dy_aniso_data_file("1 1")[0])
    with pytest.raises(DataFileError, match="expected the file to end"):
        parse_file(f)
