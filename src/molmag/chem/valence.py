"""Valence sanity filter for ligands: what RDKit accepts but a chemist would not make.

RDKit's sanitisation only checks each atom against a list of allowed valences (S 2/4/6,
P 3/5/7, ...), so strings that a generative model emits such as ``O=[SH](C)(CC)C(C)C``
(an S-H on a six-valent sulfur), ``O=PS(C)(C)C(C)C`` (four-valent sulfur with no oxygen,
P=O on a three-valent phosphorus) or ``[O-]C1=CC=C1`` (a cyclobutadiene) pass it and would
then be ranked among the "best" ligands of a search.  :func:`valence_problems` lists, one
line each, what is wrong with a molecule; :func:`is_sane` is ``not valence_problems(...)``.
Every search over ligands (LP sampling, the dy-ligands campaign) uses this one filter.

Rules (on the kekulised molecule, after RDKit sanitisation):

* **RDKit** must parse and sanitise the SMILES (and kekulise it).
* **Charges**: only atom 0, the donor of a donor-first ligand SMILES, may carry a formal
  charge (the -1 of an anionic O-/N- donor, :mod:`molmag.generative.corpus`).  Exception: the
  conventional charge-separated pairs ``[N+]-[O-]`` (nitro groups, N-oxides) and
  ``[P+]-[O-]``/``[S+]-[O-]`` (ylidic phosphine oxides, sulfoxides), which are neutral
  groups written with formal charges; each such pair is accepted as a whole.
* **Radicals**: no atom with unpaired electrons.
* **Halogens** (F, Cl, Br, I): one bond (no hypervalent iodine/chlorine oxides).
* **Sulfur**: valence 2 (thioethers, thiols, thiocarbonyls); above 2 only as sulfinyl
  ``S(=O)`` (valence 4) or sulfonyl ``S(=O)(=O)`` (valence 6): every valence above 2 must come
  from S=O double bonds, with no hydrogen on the S.  Sulfoximine-/sulfonimide-type S=N bonds
  count like S=O.
* **Phosphorus**: valence 3 with single bonds only (phosphines, phosphites, P-N); or valence 5
  as phosphoryl ``P(=O)X3`` / thiophosphoryl ``P(=S)X3`` with exactly one such double bond (X
  may be H: secondary phosphine oxides ``O=[PH]R2`` are real compounds).  A P=O on a
  three-valent P (``O=P-X``), five single bonds (``[PH](C)4``) and P=C are flagged.
* **Chains**: no single bond between two atoms of S/P of which one is hypervalent (valence above 2
  for S, above 3 for P): ``O=P[PH](C)(C)C(C)C``, ``CS(=O)(=O)S(=O)(=O)C``.
* **Antiaromatic small rings**: a 3- or 4-membered ring in which every atom takes part in the
  pi system (an endocyclic double bond gives 1 electron, a lone-pair heteroatom (N, O, S,
  P) or a carbanion with only single ring bonds 2, an exocyclic double bond or a cation 0; an
  sp3 atom breaks the conjugation) with 4n (n >= 1) pi electrons: cyclobutadienes
  (``[O-]C1=CC=C1``), azetes, oxirenes, 1H-azirines.  Cyclopropenones and squaraine-type rings
  (2 pi electrons) pass.

Why not just trust RDKit: the paper's LP samples are ranked by predicted Kramers gaps, and a
hypervalent or antiaromatic "ligand" that cannot exist would otherwise top the table.
"""

from __future__ import annotations

from typing import Any

from molmag.chem.builders import quiet_rdkit

HALOGENS = frozenset({"F", "Cl", "Br", "I"})
_LONE_PAIR = frozenset({"N", "O", "S", "P"})


def _mol(mol_or_smiles: Any):
    """(kekulised RDKit Mol or None, problem or None)."""
    from rdkit import Chem

    if isinstance(mol_or_smiles, str):
        if not mol_or_smiles.strip():
            return None, "empty SMILES"
        with quiet_rdkit():
            mol = Chem.MolFromSmiles(mol_or_smiles)
        if mol is None:
            return None, f"RDKit cannot parse or sanitise {mol_or_smiles!r}"
    else:
        mol = Chem.Mol(mol_or_smiles)
        try:
            with quiet_rdkit():
                Chem.SanitizeMol(mol)
        except Exception as exc:  # noqa: BLE001 - RDKit raises several sanitisation errors
            return None, f"RDKit sanitisation fails: {exc}"
    if mol.GetNumAtoms() == 0:
        return None, "no atoms"
    try:
        with quiet_rdkit():
            Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception:  # noqa: BLE001 - KekulizeException
        return None, "RDKit cannot kekulise it"
    return mol, None


def _valence(atom) -> int:
    """Bond-order sum plus hydrogens (the kekulised molecule has integer bond orders)."""
    return int(round(sum(b.GetBondTypeAsDouble() for b in atom.GetBonds()))) + atom.GetTotalNumHs()


def _doubles_to(atom, symbols) -> int:
    """Number of double bonds from ``atom`` to neutral atoms of the given elements."""
    n = 0
    for b in atom.GetBonds():
        other = b.GetOtherAtom(atom)
        if b.GetBondTypeAsDouble() == 2.0 and other.GetSymbol() in symbols:
            n += 1
    return n


def _label(atom) -> str:
    return f"{atom.GetSymbol()}{atom.GetIdx()}"


def _ylide_pair(atom) -> bool:
    """A charge-separated neutral group: [N+]/[P+]/[S+] bonded to an [O-] (or the other way)."""
    q = atom.GetFormalCharge()
    if q == 1 and atom.GetSymbol() in ("N", "P", "S"):
        return any(n.GetSymbol() == "O" and n.GetFormalCharge() == -1 for n in atom.GetNeighbors())
    if q == -1 and atom.GetSymbol() == "O":
        return any(n.GetSymbol() in ("N", "P", "S") and n.GetFormalCharge() == 1
                   for n in atom.GetNeighbors())
    return False


def _hypervalent(atom) -> bool:
    v = _valence(atom) - atom.GetFormalCharge() * (1 if atom.GetSymbol() in ("P", "S") else 0)
    return (atom.GetSymbol() == "S" and v > 2) or (atom.GetSymbol() == "P" and v > 3)


def _sulfur(atom) -> str | None:
    if atom.GetFormalCharge() != 0:
        return None                        # [S+]-[O-] sulfoxides: judged as a charge pair
    v = _valence(atom)
    if v <= 2:
        return None
    oxo = _doubles_to(atom, ("O", "N"))
    if atom.GetTotalNumHs():
        return f"{_label(atom)}: hypervalent sulfur (valence {v}) with an S-H"
    if oxo in (1, 2) and v == 2 + 2 * oxo:
        return None
    return (f"{_label(atom)}: hypervalent sulfur (valence {v}) that is not a sulfinyl S(=O) or "
            f"sulfonyl S(=O)(=O) ({oxo} S=O)")


def _phosphorus(atom) -> str | None:
    if atom.GetFormalCharge() != 0:
        return None                        # [P+]-[O-] phosphine oxides: judged as a charge pair
    v = _valence(atom)
    doubles = sum(1 for b in atom.GetBonds() if b.GetBondTypeAsDouble() >= 2.0)
    oxo = _doubles_to(atom, ("O", "S"))
    imino = _doubles_to(atom, ("N",))
    if v == 3 and doubles == 0:
        return None
    if v == 5 and oxo == 1 and doubles == 1:
        return None                        # phosphoryl, H included (secondary phosphine oxides)
    if v == 5 and imino == 1 and doubles == 1 and not atom.GetIsAromatic():
        return None                        # iminophosphoranes / phosphinimides R3P=NR
    if v == 3 and oxo:
        return f"{_label(atom)}: P=O/P=S on a three-valent phosphorus (not a phosphoryl P(=O)X3)"
    return (f"{_label(atom)}: phosphorus of valence {v} with {doubles} double bond(s) (only "
            f"phosphines PX3, phosphoryl P(=O)X3 and iminophosphoranes R3P=NR are accepted)")


def _ring_pi_electrons(mol, ring) -> int | None:
    """pi electrons of a ring if every ring atom takes part in its pi system, else None."""
    members = set(ring)
    total = 0
    for i in ring:
        atom = mol.GetAtomWithIdx(i)
        endo = exo = 0
        for b in atom.GetBonds():
            if b.GetBondTypeAsDouble() >= 2.0:
                if b.GetOtherAtomIdx(i) in members:
                    endo += 1
                else:
                    exo += 1
        q = atom.GetFormalCharge()
        if endo:
            total += 1
        elif exo or q > 0:
            total += 0                     # an empty p orbital in the ring (C=O, cation)
        elif q < 0 or (atom.GetSymbol() in _LONE_PAIR and _valence(atom) <= 3):
            total += 2                     # a lone pair (heteroatom or carbanion)
        else:
            return None                    # sp3: no cyclic conjugation
    return total


def valence_problems(mol_or_smiles: Any) -> list[str]:
    """What is chemically wrong with a molecule (a SMILES or an RDKit Mol), one line each.

    An empty list means the molecule passes every rule of the module docstring.  In a
    donor-first ligand SMILES atom 0 is the donor and may carry a formal charge."""
    mol, problem = _mol(mol_or_smiles)
    if mol is None:
        return [problem]
    out: list[str] = []
    for atom in mol.GetAtoms():
        sym, idx, q = atom.GetSymbol(), atom.GetIdx(), atom.GetFormalCharge()
        if q and idx != 0 and not _ylide_pair(atom):
            out.append(f"{_label(atom)}: formal charge {q:+d} on an atom other than the donor "
                       f"(atom 0)")
        if atom.GetNumRadicalElectrons():
            out.append(f"{_label(atom)}: {atom.GetNumRadicalElectrons()} unpaired electron(s)")
        if sym in HALOGENS and _valence(atom) - q > 1:
            out.append(f"{_label(atom)}: hypervalent halogen (valence {_valence(atom)})")
        elif sym == "S":
            p = _sulfur(atom)
            if p:
                out.append(p)
        elif sym == "P":
            p = _phosphorus(atom)
            if p:
                out.append(p)
    for b in mol.GetBonds():
        a, c = b.GetBeginAtom(), b.GetEndAtom()
        if b.GetBondTypeAsDouble() == 1.0 and a.GetSymbol() in ("S", "P") and \
                c.GetSymbol() in ("S", "P") and (_hypervalent(a) or _hypervalent(c)):
            out.append(f"{_label(a)}-{_label(c)}: bond between {a.GetSymbol()} and "
                       f"{c.GetSymbol()} with a hypervalent partner")
    for ring in mol.GetRingInfo().AtomRings():
        if len(ring) > 4:
            continue
        pi = _ring_pi_electrons(mol, ring)
        if pi is not None and pi > 0 and pi % 4 == 0:
            atoms = "".join(mol.GetAtomWithIdx(i).GetSymbol() for i in ring)
            out.append(f"ring {atoms} (atoms {', '.join(map(str, ring))}): antiaromatic "
                       f"{len(ring)}-membered ring with {pi} pi electrons")
    return out


def is_sane(mol_or_smiles: Any) -> bool:
    """True when :func:`valence_problems` finds nothing."""
    return not valence_problems(mol_or_smiles)


__all__ = ["valence_problems", "is_sane"]
