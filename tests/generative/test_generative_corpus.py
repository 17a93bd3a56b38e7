"""Donor-first ligand corpora (Khatibi et al. 2026, GAUSS-II): donor perception on known
molecules, rooting, filters, file round trips, the built-in corpus and the CLI."""

from __future__ import annotations

import json

import pytest
import typer
from rdkit import Chem
from typer.testing import CliRunner

from molmag.cli.corpus import corpus as corpus_command
from molmag.generative.corpus import (
    TEMPLATE_LIGAND,
    Ligand,
    default_corpus,
    default_corpus_stats,
    donor_and_charge,
    donor_first,
    ligands_from_smiles,
    read_corpus,
    read_donor_first,
    read_smiles,
    write_corpus,
)


def ligs(smiles, **kw):
    out, _ = ligands_from_smiles([smiles], **kw)
    return {(lig.smiles, lig.charge): lig for lig in out}


def first_atom(smiles):
    mol = Chem.MolFromSmiles(smiles)
    assert mol is not None, smiles
    return mol.GetAtomWithIdx(0)


# --- donor perception on known molecules ----------------------------------------------
def test_acetone_one_carbonyl_o():
    out = ligs("CC(C)=O")
    assert list(out) == [("O=C(C)C", 0)]
    assert out[("O=C(C)C", 0)].kind == "carbonyl O"


def test_ethanol_neutral_o_and_ethoxide():
    out = ligs("CCO")
    assert set(out) == {("OCC", 0), ("[O-]CC", -1)}
    assert out[("[O-]CC", -1)].kind == "alkoxide O-"
    assert out[("OCC", 0)].parent == "CCO"


def test_pyrrole_only_the_deprotonated_n():
    out = ligs("c1cc[nH]c1")
    assert list(out) == [("[n-]1cccc1", -1)]
    assert out[("[n-]1cccc1", -1)].kind == "azolide N-"


def test_nitromethane_no_donor():
    out, stats = ligands_from_smiles(["C[N+](=O)[O-]"])
    assert out == [] and stats.kept == 1 and stats.no_donor == 1


def test_acetamide_o_but_not_amide_n():
    out = ligs("CC(N)=O")
    neutral = [lig for lig in out.values() if lig.charge == 0]
    assert [(lig.smiles, lig.donor, lig.kind) for lig in neutral] == [("O=C(C)N", "O", "amide O")]
    # the only N ligand is the amidate anion
    assert [k for k, lig in out.items() if lig.donor == "N"] == [("[NH-]C(C)=O", -1)]


@pytest.mark.parametrize("smiles, expected", [
    ("c1ccncc1", {("n1ccccc1", 0)}),                       # pyridine N
    ("CC#N", {("N#CC", 0)}),                                # nitrile N
    ("CN(C)C", {("N(C)(C)C", 0)}),                          # amine N, no N-H to remove
    ("C[N+](C)(C)C", set()),                                # ammonium: a charged input
    ("c1ccoc1", set()),                                     # furan O: aromatic, excluded
    ("CS(C)=O", {("O=S(C)C", 0)}),                          # sulfinyl O
    ("CC(=O)O", {("O=C(C)O", 0), ("[O-]C(C)=O", -1)}),      # one carboxylate O
    ("C[N+](C)(C)[O-]", {("[O-][N+](C)(C)C", 0)}),          # N-oxide O, not its N
    ("CS(N)(=O)=O", {("O=S(C)(N)=O", 0), ("[NH-]S(C)(=O)=O", -1)}),  # sulfonamide N: no
])
def test_known_donors(smiles, expected):
    assert set(ligs(smiles)) == expected


def test_charge_state_switches():
    assert set(ligs("CCO", anions=False)) == {("OCC", 0)}
    assert set(ligs("CCO", neutral=False)) == {("[O-]CC", -1)}
    with pytest.raises(ValueError):
        ligands_from_smiles(["CCO"], neutral=False, anions=False)


# --- rooting -----------------------------------------------------------------------------
def test_donor_first_rooting_and_charge_on_donor():
    out, _ = ligands_from_smiles(["CCO", "CC(N)=O", "c1cc[nH]c1", "OC(=O)c1ccncc1",
                                  "CNc1ccccc1", "CC(C)=NO", TEMPLATE_LIGAND])
    assert len(out) == 14
    for lig in out:
        a = first_atom(lig.smiles)
        assert a.GetSymbol() == lig.donor and lig.donor_index == 0
        mol = Chem.MolFromSmiles(lig.smiles)
        assert Chem.GetFormalCharge(mol) == lig.charge
        if lig.charge == -1:
            assert a.GetFormalCharge() == -1
        # same molecule as the parent, up to the proton taken off
        assert mol.GetNumHeavyAtoms() == Chem.MolFromSmiles(lig.parent).GetNumHeavyAtoms()


def test_template_ligand_donor_first():
    s = donor_first(TEMPLATE_LIGAND, 0)
    assert s == "O=P(NC(C)C)(NC(C)C)C(C)(C)C"
    out = ligs(TEMPLATE_LIGAND)
    assert out[(s, 0)].kind == "phosphoryl O"
    # the NH of the phosphoramide is not a neutral donor, its anion is an amidate
    assert sorted(lig.kind for lig in out.values()) == ["amidate N-", "phosphoryl O"]


# --- dedup, filters, counts ------------------------------------------------------------
def test_dedup_and_counts():
    out, stats = ligands_from_smiles(["CCO", "OCC", "C(C)O", "not a smiles", "C1CC",
                                      "", "CCO.O", "CC[O-]", "C[CH2]", "CC(C)=O"])
    assert stats.read == 9  # the blank line is not a record
    assert stats.invalid == 2
    assert stats.filtered == {"charged": 1, "fragments": 1, "radical": 1}
    assert stats.kept == 4 and stats.ligands == 3 == len(out) and stats.duplicates == 4
    assert [lig.smiles for lig in out] == ["OCC", "[O-]CC", "O=C(C)C"]


def test_element_and_size_filters():
    out, stats = ligands_from_smiles(["CC(C)=O", "CCCCCCCCCCO", "C[Se]CO", "O=[Si](C)C"],
                                     max_heavy_atoms=8)
    assert [lig.smiles for lig in out] == ["O=C(C)C"]
    assert stats.filtered == {"elements": 1, "heavy_atoms": 1}
    out, _ = ligands_from_smiles(["CCO", "C[Se]CO"], elements={"C", "O", "H", "Se"})
    assert len(out) == 4


# --- files ----------------------------------------------------------------------------------
def test_read_smiles_formats_and_errors(tmp_path):
    p = tmp_path / "a.smi"
    p.write_text("smiles\nCCO ethanol\n\n# comment\nCC(C)=O\n")
    assert read_smiles(p) == ["CCO", "CC(C)=O"]
    c = tmp_path / "b.csv"
    c.write_text("id,SMILES\n1,CCO\n2,c1ccncc1\n")
    assert read_smiles(c) == ["CCO", "c1ccncc1"]
    bad = tmp_path / "c.csv"
    bad.write_text("id,name\n1,x\n")
    with pytest.raises(ValueError, match="c.csv.*smiles"):
        read_smiles(bad)
    empty = tmp_path / "d.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="d.txt"):
        read_smiles(empty)
    with pytest.raises(FileNotFoundError, match="nope.smi"):
        read_smiles(tmp_path / "nope.smi")


def test_write_read_round_trip(tmp_path):
    out, _ = ligands_from_smiles(["CCO", "CC(N)=O", "c1ccncc1"])
    back = read_corpus(write_corpus(out, tmp_path / "x" / "c.csv"))
    assert back == out
    smi = read_corpus(write_corpus(out, tmp_path / "c.smi"))
    assert [(lig.smiles, lig.donor, lig.charge) for lig in smi] == \
        [(lig.smiles, lig.donor, lig.charge) for lig in out]
    with pytest.raises(ValueError, match="c.xyz"):
        write_corpus(out, tmp_path / "c.xyz")
    (tmp_path / "e.csv").write_text("smiles,parent,donor,charge,kind\n")
    with pytest.raises(ValueError, match="e.csv"):
        read_corpus(tmp_path / "e.csv")


# --- the built-in corpus -----------------------------------------------------------------
def test_default_corpus():
    corpus = default_corpus()
    smiles = [lig.smiles for lig in corpus]
    assert len(corpus) == 22880 and len(set(smiles)) == len(corpus)
    assert donor_first(TEMPLATE_LIGAND, 0) in set(smiles)
    stats = default_corpus_stats()
    assert stats.invalid == 0 and stats.ligands == len(corpus)
    for lig in corpus:
        mol = Chem.MolFromSmiles(lig.smiles)
        assert mol is not None, lig.smiles
        a = mol.GetAtomWithIdx(0)
        assert a.GetSymbol() in ("O", "N") and a.GetSymbol() == lig.donor
        assert lig.charge in (0, -1) and Chem.GetFormalCharge(mol) == lig.charge
        assert lig.charge == 0 or a.GetFormalCharge() == -1
        assert mol.GetNumHeavyAtoms() <= 30
    # stable order and truncation
    assert [lig.smiles for lig in default_corpus(n_max=5)] == smiles[:5]
    assert smiles[0] == "O=P(C)(C)C"
    assert sum(lig.charge == -1 for lig in corpus) == 5974
    assert sum(lig.kind == "phosphoryl O" for lig in corpus) == 5456


# --- QM9 ---------------------------------------------------------------------------------
def test_qm9_first_2000(shared_data):
    smiles = read_smiles(shared_data / "qm9_smiles.csv")
    assert len(smiles) == 133885
    out, stats = ligands_from_smiles(smiles[:2000])
    assert (stats.read, stats.invalid, stats.kept, stats.no_donor) == (2000, 0, 2000, 158)
    assert stats.ligands == len(out) == 4469 and stats.duplicates == 165
    assert sum(lig.charge == -1 for lig in out) == 1534
    assert sum(lig.donor == "O" for lig in out) == 2542


# --- CLI -----------------------------------------------------------------------------------
def _app():
    app = typer.Typer()
    app.command()(corpus_command)
    app.command("noop")(lambda: None)  # two commands: typer keeps the sub-command name
    return app


def test_cli_on_a_small_file(tmp_path):
    src = tmp_path / "in.smi"
    src.write_text("CCO\nCC(C)=O\nxyz(\nc1cc[nH]c1\nCCO\n")
    out = tmp_path / "lig.csv"
    runner = CliRunner()
    r = runner.invoke(_app(), ["corpus", str(src), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["stats"]["read"] == 5 and res["stats"]["invalid"] == 1
    assert res["n_ligands"] == 4 and res["stats"]["duplicates"] == 2
    assert [lig.smiles for lig in read_corpus(out)] == ["OCC", "[O-]CC", "O=C(C)C",
                                                        "[n-]1cccc1"]
    r = runner.invoke(_app(), ["corpus", str(src), "--out", str(tmp_path / "n.smi"),
                               "--neutral-only"])
    assert r.exit_code == 0, r.output
    assert "alcohol O" in r.stdout and "alkoxide" not in r.stdout
    assert (tmp_path / "n.smi").read_text().split() == ["OCC", "O=C(C)C"]
    r = runner.invoke(_app(), ["corpus", str(tmp_path / "missing.smi"), "--out", str(out)])
    assert r.exit_code == 1 and "missing.smi" in r.output
    r = runner.invoke(_app(), ["corpus", str(src), "--out", str(out), "--neutral-only",
                               "--anions-only"])
    assert r.exit_code == 1


def test_cli_default_corpus(tmp_path):
    out = tmp_path / "default.smi"
    r = CliRunner().invoke(_app(), ["corpus", "--out", str(out), "--max-ligands", "100",
                                    "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_ligands"] == 100
    lines = out.read_text().split()
    assert lines == [lig.smiles for lig in default_corpus(n_max=100)]


def test_ligand_row():
    lig = Ligand("[O-]CC", "CCO", "O", -1, "alkoxide O-")
    assert lig.as_row() == {"smiles": "[O-]CC", "parent": "CCO", "donor": "O", "charge": -1,
                            "kind": "alkoxide O-"}


# --- donor and charge read from the SMILES text ----------------------------------------
@pytest.mark.parametrize("smiles, expected", [
    ("O=C(C)C", ("O", 0)), ("[O-]c1ccccc1", ("O", -1)), ("n1ccccc1", ("N", 0)),
    ("[NH-]C(C)=O", ("N", -1)), ("[nH]1cccc1", ("N", 0)), ("Clc1ccccc1", ("Cl", 0)),
    ("[N+](C)(C)(C)CC(=O)[O-]", ("N", 0)), ("[O-][N+](=O)C", ("O", 0)),
    ("[O--]", ("O", -2)), ("[N-2]C", ("N", -2)), ("[13CH3-]", ("C", -1)),
    ("[se]1cccc1", ("Se", 0)), ("[C@@H](O)(N)C", ("C", 0)), ("[NH3+:2]C", ("N", 1)),
])
def test_donor_and_charge_from_text(smiles, expected):
    assert donor_and_charge(smiles) == expected
    mol = Chem.MolFromSmiles(smiles)
    assert (first_atom(smiles).GetSymbol(), Chem.GetFormalCharge(mol)) == expected


def test_donor_and_charge_agrees_with_rdkit_on_the_corpus():
    corpus = default_corpus()
    for lig in corpus:
        assert donor_and_charge(lig.smiles) == (lig.donor, lig.charge), lig.smiles
    assert donor_and_charge("") is None and donor_and_charge("[Xx") is None
    # rows it cannot read from the text go to RDKit, which names the source on failure
    back = read_donor_first(["O=CC", "[O-]C", "*C(=O)C"], "here.smi")
    assert [(g.donor, g.charge) for g in back] == [("O", 0), ("O", -1), ("*", 0)]
    with pytest.raises(ValueError, match="here.smi"):
        read_donor_first(["[O-"], "here.smi")
