"""The valence sanity filter (molmag.chem.valence): RDKit accepts these strings, a chemist
would not; ordinary ligands (the whole built-in corpus) pass."""

from __future__ import annotations

import pytest

from molmag.chem.valence import is_sane, valence_problems

#: Samples of the dy-ligands campaign's LP sampling that RDKit accepts (issue 16, item 5).
INSANE = {
    "O=[SH](C)(CC)C(C)C": ["S1: hypervalent sulfur (valence 6) with an S-H"],
    "O=PS(C)(C)C(C)C": ["P1: P=O/P=S on a three-valent phosphorus",
                        "S2: hypervalent sulfur (valence 4) that is not a sulfinyl",
                        "P1-S2: bond between P and S with a hypervalent partner"],
    "[O-]C1=CC=C1": ["ring CCCC (atoms 1, 2, 3, 4): antiaromatic 4-membered ring with 4 pi"],
    "O=P[PH](C)(C)C(C)C": ["P1: P=O/P=S on a three-valent phosphorus",
                           "P2: phosphorus of valence 5 with 0 double bond(s)",
                           "P1-P2: bond between P and P with a hypervalent partner"],
}


@pytest.mark.parametrize("smiles", sorted(INSANE))
def test_flagged_samples(smiles):
    problems = valence_problems(smiles)
    assert len(problems) == len(INSANE[smiles])
    for got, want in zip(problems, INSANE[smiles]):
        assert got.startswith(want), (got, want)
    assert not is_sane(smiles)
    # RDKit alone accepts every one of them: the filter is what catches them
    from rdkit import Chem
    assert Chem.MolFromSmiles(smiles) is not None


@pytest.mark.parametrize("smiles,expected", [
    ("C1=CC=C1", "antiaromatic 4-membered ring with 4 pi"),      # cyclobutadiene
    ("C1=CC=N1", "antiaromatic 4-membered ring with 4 pi"),      # azete
    ("O1C=C1", "antiaromatic 3-membered ring with 4 pi"),        # oxirene
    ("CS(=O)(=O)S(=O)(=O)C", "S1-S4: bond between S and S"),     # S-S chain of sulfonyls
    ("CS(C)(C)C", "hypervalent sulfur (valence 4)"),             # sulfurane
    ("CP(C)(C)(C)C", "phosphorus of valence 5 with 0 double"),   # pentaalkylphosphorane
    ("C=P(C)(C)C", "phosphorus of valence 5 with 1 double"),     # ylide written as P=C
    ("[O-]C(C)C[N+](C)(C)C", "N4: formal charge +1 on an atom other than the donor"),
    ("OC[CH2]", "C2: 1 unpaired electron"),
    ("OCI(=O)=O", "I2: hypervalent halogen (valence 5)"),          # RDKit allows I(V)
    ("C1CC(O", "RDKit cannot parse"),
    ("", "empty SMILES"),
])
def test_other_problems(smiles, expected):
    problems = valence_problems(smiles)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("smiles", [
    "O=P(NC(C)C)(NC(C)C)C(C)(C)C",     # tBuPO(NHiPr)2, the GAUSS-II template ligand
    "O=P(C)(C)C", "O=P(O)(O)O", "O=[PH](C)CCCC", "S=P(C)(C)C", "O=P(N)(N)N", "CP(C)C",
    "O=S(C)C", "O=S(=O)(C)C", "[O-]S(=O)(=O)C", "O=S(=O)(N)c1ccccc1", "CSC", "S",
    "[O-]c1ccccc1", "c1ccncc1", "N#CC", "O=C1C=C1",            # cyclopropenone: 2 pi, fine
    "O=C1C(=O)C=C1", "[O-]C1CCC1", "C1CCN1",
    "[O-][N+](=O)c1ccc(O)cc1",         # nitro group written charge-separated
    "[O-][n+]1ccccc1", "C[S+](C)[O-]", "C[P+](C)(C)[O-]",
    "OC(F)(F)F", "Oc1ccc(Cl)cc1", "Oc1ccc(I)cc1", "O",
])
def test_ordinary_ligands_pass(smiles):
    assert valence_problems(smiles) == []
    assert is_sane(smiles)


def test_accepts_rdkit_molecules():
    from rdkit import Chem

    assert valence_problems(Chem.MolFromSmiles("O=P(C)(C)C")) == []
    assert valence_problems(Chem.MolFromSmiles("[O-]C1=CC=C1"))


def test_built_in_corpus_passes():
    """The 22,880 ligands of the built-in corpus are ordinary molecules: none is flagged."""
    from molmag.generative.corpus import default_corpus

    ligands = default_corpus()
    assert len(ligands) > 20000
    flagged = [(g.smiles, valence_problems(g.smiles)) for g in ligands[::4]]
    flagged = [f for f in flagged if f[1]]
    assert flagged == []


def test_iminophosphoranes_are_sane_ligands():
    """R3P=NR (phosphinimides, a ligand class of Dy SMMs) is five-valent P with one P=N."""
    from molmag.chem.valence import is_sane

    for smi in ("CN=P(C)(C)C", "[N-]=P(c1ccccc1)(c1ccccc1)c1ccccc1", "N=P(C)(C)C"):
        assert is_sane(smi), smi
    assert not is_sane("CN=P(=O)(C)C")   # two double bonds on P: refused


def test_nested_quiet_rdkit_blocks_stay_quiet(capfd):
    from rdkit import Chem

    from molmag.chem.builders import quiet_rdkit
    from molmag.chem.valence import is_sane

    with quiet_rdkit():
        is_sane("C1CC(O")           # an inner block (the filter) that ends ...
        assert Chem.MolFromSmiles("[NH-]c1cccc()cc1") is None   # ... must not re-enable logs
    assert "SMILES Parse Error" not in capfd.readouterr().err


def test_generation_metrics_judge_anionic_donors_on_the_generated_string():
    """'[O-]C(C)(C)CC' is donor-first as generated; its canonical SMILES moves the charge off
    atom 0, which must not make it 'insane' (the dy-ligands model showed 0 % valid & sane)."""
    from molmag.generative.sampling import generation_metrics

    m = generation_metrics(["[O-]C(C)(C)CC", "[O-]C(C)(C)CC", "[O-]C1=CC=C1", "C1CC("],
                           ["OCC"])
    assert m["n_valid"] == 3 and m["n_valid_sane"] == 2 and m["n_unique_sane"] == 1
