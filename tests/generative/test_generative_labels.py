"""GAUSS-II labels: GFN2-xTB atomic dipoles, the free-ligand builder, proxy and Kramers-gap
labels through the labelling pipeline (resumable), and corpus.as_ligand."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule
from ase.units import Bohr

from molmag.chem.builders import build
from molmag.chem.xtb import XTBCalculator, xtb_atomic_dipoles
from molmag.generative import labels as L
from molmag.generative.corpus import as_ligand, default_corpus


def test_atomic_dipoles_units_symmetry_and_rotation():
    from tblite.interface import Calculator

    w = molecule("H2O")
    calc = XTBCalculator()
    calc.calculate(w, ["energy", "charges", "atomic_dipoles"])
    dip = calc.results["atomic_dipoles"]
    assert dip.shape == (3,) and np.all(dip >= 0)
    assert dip[1] == pytest.approx(dip[2], abs=1e-8)          # the two H are equivalent
    # tblite's own number, in e*bohr, converted to e*Angstrom
    raw = Calculator("GFN2-xTB", w.numbers, w.positions / Bohr)
    raw.set("verbosity", 0)
    raw.add("xtbml")
    ref = raw.singlepoint().get("post-processing-dict")["dipm_A"]
    assert np.allclose(dip, np.asarray(ref) * Bohr, atol=1e-6)
    # a magnitude: the same after rotating and translating the molecule
    r = w.copy()
    r.rotate(73, (1, 2, 3), center="COM")
    r.translate((3.0, -1.0, 2.0))
    assert np.allclose(xtb_atomic_dipoles(r), dip, atol=1e-5)


def test_free_ligand_builder():
    a = build("ligand", ligand="[O-]c1ccccc1")
    assert a.info["charge"] == -1 and a.info["multiplicity"] == 1
    assert a.info["donor_indices"] == [0] and a.numbers[0] == 8
    assert a.info["relaxed"] and a.info["relax_fmax_eV_A"] < 0.05
    assert a.info["metal_index"] is None
    bare = build("ligand", ligand="[F-]")
    assert len(bare) == 1 and bare.info["charge"] == -1
    with pytest.raises(ValueError, match="first atom, C"):
        build("ligand", ligand="CC")


def test_proxy_labels_resumable_and_chemistry(tmp_path):
    ligs = ["O=P(C)(C)C", "[O-]c1ccccc1", "n1ccccc1", "[O-]C(C)(C)C", "CC"]
    db = tmp_path / "p.db"
    s1 = L.run_label_config(L.proxy_label_config(ligs, db, workers=1))
    assert s1.built == 4 and list(s1.failures_new) == ["build:ligand:CC"]
    table = L.proxy_table(db)
    assert set(table) == set(ligs[:4])
    assert table["n1ccccc1"]["donor_Z"] == 7 and table["O=P(C)(C)C"]["donor_Z"] == 8
    # an anionic O donor carries more negative charge than a phosphoryl O
    assert table["[O-]c1ccccc1"]["donor_charge"] < table["O=P(C)(C)C"]["donor_charge"] < 0
    assert all(r["donor_polarizability"] > 0 and r["donor_dipole"] >= 0 for r in table.values())
    assert "CC" in L.failed_ligands(db)
    # a rerun computes nothing again (the failed ligand is skipped, not retried)
    s2 = L.run_label_config(L.proxy_label_config(ligs, db, workers=1))
    assert s2.built == 0 and s2.labelled == 0 and s2.build_skipped == 4
    assert L.proxy_table(db) == table
    m = L.matrix(table, ["n1ccccc1", "missing"], L.PROXY_NAMES)
    assert m.shape == (2, 4) and np.isnan(m[1]).all() and m[0, 0] == 7


def test_gap_labels_anionic_donor_gives_larger_gap(tmp_path):
    db = tmp_path / "g.db"
    L.run_label_config(L.gap_label_config(["O=P(C)(C)C", "[O-]c1ccccc1"], db, workers=1))
    t = L.gap_table(db)
    po, phen = t["O=P(C)(C)C"], t["[O-]c1ccccc1"]
    for row in (po, phen):
        gaps = [row[g] for g in L.GAP_NAMES]
        assert np.all(np.diff(gaps) >= -1e-9) and gaps[0] > 0     # ascending, ground = 0
        assert row["donor_Z"] == 8 and row["angle_LML_axial_deg"] > 150
        assert row["MPP_eq_A"] >= 0 and row["SDP_eq_A"] >= 0
    # the axial anionic O of a phenolate splits the 6H15/2 much more than a phosphine oxide
    assert phen["dE01"] > 2 * po["dE01"]


def test_as_ligand_round_trip_and_rejections():
    corpus = default_corpus()[:2000]
    for g in corpus:
        h = as_ligand(g.smiles)
        assert h is not None and h.smiles == g.smiles and h.charge == g.charge
    assert as_ligand("[O-]c1ccccc1").kind == "phenolate O-"
    assert as_ligand("n1ccccc1").kind == "pyridine N"
    for bad in ("CC", "O=C(C)[O-]", "[nH]1cccc1", "C1CC", "", "[O-]O", "[NH4+]"):
        assert as_ligand(bad) is None, bad


def test_build_cli_free_ligand(tmp_path):
    from typer.testing import CliRunner

    from molmag.cli.main import app

    res = CliRunner().invoke(app, ["build", "ligand", "--ligand", "n1ccccc1", "-o",
                                   str(tmp_path / "py.xyz")])
    assert res.exit_code == 0, res.output
    assert "donor atom: N0" in res.output and (tmp_path / "py.xyz").is_file()
