r"""Genes of the ligand genetic algorithm (after Frangoulis et al. 2025, review section 3.6).

An **individual** is a tuple of donor-first ligand SMILES, one per ligand site of the
complex's template (Dy(H2O)5L2: one site, L in both axial positions; tetrahedral Co(II)L2L'2:
two sites).  Its **key** (:func:`individual_key`) is what the builder takes and what the
labelled dataset stores under the tag ``ligand``: the ligands joined by ``'.'``, the sites
sorted (the two Co sites are equivalent) and a tuple of equal ligands written once.

Two encodings:

* **static**: every ligand is a member of a fixed :class:`Library` (any corpus molmag reads).
  Mutation replaces the ligand of one site by one of its ``k`` nearest library neighbours
  (Tanimoto similarity of Morgan fingerprints, radius 2) or, with a small probability, by a
  random library ligand; crossover swaps whole sites between two parents (uniform
  crossover) or, for a one-site template, takes the library ligand most similar to a
  Graph-GA crossover child of the two parent ligands (mol-ga, Jensen 2019).
* **dynamic**: ligands are free molecules, so new ligands appear.  Mutation is a SELFIES
  token insertion, deletion or replacement (the donor token, the first, is never deleted) or
  a Graph-GA mutation (mol-ga's atom/bond/ring edits); crossover a one-point SELFIES crossover
  that keeps the first parent's donor or a Graph-GA crossover.  A child is kept only if it
  parses, passes the valence sanity filter (:func:`molmag.chem.valence.is_sane`), is a
  donor-first ligand (:func:`molmag.generative.corpus.as_ligand`: atom 0 an O/N donor by the
  corpus rules) and the builder accepts it (:func:`molmag.chem.builders.parse_ligand`).

mol-ga (MIT licence, https://github.com/AustinT/mol_ga) supplies the Graph-GA crossover and
mutation on RDKit molecules; its loop and selection are not used (the loop here is batched,
checkpointed and resumable; see :mod:`molmag.screening.loop`).  The donor survives its
operators as the one atom marked with isotope :data:`DONOR_ISOTOPE`.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from typing import AbstractSet, Sequence

import numpy as np

from molmag.chem.builders import quiet_rdkit

#: Isotope label that marks the donor atom while mol-ga's operators edit a ligand.
DONOR_ISOTOPE = 99
#: Morgan fingerprint of the pre-screen and the similarity search: radius, bits.
FP_RADIUS = 2
FP_BITS = 2048

Individual = tuple[str, ...]


def individual_key(ind: Sequence[str]) -> str:
    """The dataset key of an individual: sites sorted, equal ligands written once."""
    parts = sorted(set(ind))
    return ".".join(parts)


def key_ligands(key: str, n_sites: int) -> Individual:
    """The individual of a key (inverse of :func:`individual_key`)."""
    parts = key.split(".")
    return tuple(parts * n_sites)[:n_sites] if len(parts) == 1 else tuple(parts)


# -- ligand checks ---------------------------------------------------------------------------
def accepted_ligand(smiles: str | None, *, max_heavy_atoms: int) -> str | None:
    """The corpus form of ``smiles`` if it is a ligand the search may evaluate (donor first,
    sane valences, accepted by the builders), else None."""
    from molmag.chem.builders import parse_ligand
    from molmag.chem.valence import is_sane
    from molmag.generative.corpus import as_ligand

    if not smiles:
        return None
    with quiet_rdkit():
        lig = as_ligand(smiles, max_heavy_atoms=max_heavy_atoms)
        if lig is None or not is_sane(lig.smiles):
            return None
        try:
            parse_ligand(lig.smiles, max_heavy_atoms=max_heavy_atoms)
        except ValueError:
            return None
    return lig.smiles


# -- fingerprints ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=65536)
def morgan_bits(smiles: str) -> np.ndarray:
    """Morgan fingerprint (radius :data:`FP_RADIUS`, :data:`FP_BITS` bits) as a bool array
    (cached; read-only)."""
    from rdkit import Chem

    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        out = np.zeros(FP_BITS, bool)
    else:
        out = np.asarray(_generator().GetFingerprintAsNumPy(mol), dtype=bool)
    out.flags.writeable = False
    return out


_GEN = None


def _generator():
    global _GEN
    if _GEN is None:
        from rdkit.Chem import rdFingerprintGenerator

        _GEN = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    return _GEN


def tanimoto(fp: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Tanimoto similarity of one bool fingerprint to each row of ``fps``."""
    inter = (fps & fp).sum(axis=1)
    union = (fps | fp).sum(axis=1)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


@functools.lru_cache(maxsize=65536)
def donor_bits(smiles: str) -> np.ndarray:
    """Morgan fingerprint of the donor's environment only: the environments of radius 0 and
    1 rooted at atom 0 (the donor, its element, charge, H count, degree and ring membership,
    and its bonded atoms), as a bool array of :data:`FP_BITS` (cached; read-only).  Two
    ligands with the same donor environment (an alkoxide O- on an sp3 C, a deprotonated
    amide N-, a pyridine N, ...) have the same donor bits."""
    from rdkit import Chem

    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        out = np.zeros(FP_BITS, bool)
    else:
        out = np.asarray(_donor_generator().GetFingerprintAsNumPy(mol, fromAtoms=[0]),
                         dtype=bool)
    out.flags.writeable = False
    return out


_DONOR_GEN = None


def _donor_generator():
    global _DONOR_GEN
    if _DONOR_GEN is None:
        from rdkit.Chem import rdFingerprintGenerator

        _DONOR_GEN = rdFingerprintGenerator.GetMorganGenerator(radius=1, fpSize=FP_BITS)
    return _DONOR_GEN


def individual_fingerprints(keys: Sequence[str], n_sites: int,
                            kind: str = "molecule") -> np.ndarray:
    """``(n, FP_BITS)`` bit counts of individuals, summed over their sites (a key of equal
    ligands counts its ligand on every site): Morgan fingerprints of the whole ligands
    (``kind="molecule"``) or of their donor environments (``"donor"``, :func:`donor_bits`)."""
    bits = {"molecule": morgan_bits, "donor": donor_bits}[kind]
    out = np.zeros((len(keys), FP_BITS), np.float32)
    for i, k in enumerate(keys):
        for lig in key_ligands(k, n_sites):
            out[i] += bits(lig)
    return out


def tanimoto_distances(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Tanimoto distances 1 - sum(min)/sum(max) between the rows of non-negative integer
    count fingerprints ``a`` and ``b`` (``b`` = ``a`` if omitted); 0 between two empty rows.
    (sum(min) = sum over thresholds t of [a >= t].[b >= t]: matrix products, no n x m x bits
    array.)"""
    a = np.asarray(a, np.float32)
    b = a if b is None else np.asarray(b, np.float32)
    inter = np.zeros((len(a), len(b)), np.float64)
    for t in range(1, int(max(a.max(initial=0), b.max(initial=0))) + 1):
        inter += (a >= t).astype(np.float32) @ (b >= t).astype(np.float32).T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, 1.0 - inter / np.maximum(union, 1e-12), 0.0)


def mean_pairwise_distance(fps: np.ndarray) -> float:
    """Mean Tanimoto distance over the distinct pairs of rows (0 for fewer than two)."""
    n = len(fps)
    if n < 2:
        return 0.0
    d = tanimoto_distances(fps)
    return float(d[np.triu_indices(n, 1)].mean())


# -- the library -----------------------------------------------------------------------------
@dataclass
class Library:
    """The static genes' ligand library: donor-first SMILES with their fingerprints."""

    ligands: list[str]
    source: str = ""
    fps: np.ndarray | None = field(default=None, repr=False)
    _index: dict = field(default_factory=dict, repr=False)
    _neighbours: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.fps is None:
            self.fps = np.stack([morgan_bits(s) for s in self.ligands]) if self.ligands \
                else np.zeros((0, FP_BITS), bool)
        self._index = {s: i for i, s in enumerate(self.ligands)}

    def __len__(self) -> int:
        return len(self.ligands)

    def __contains__(self, smiles: str) -> bool:
        return smiles in self._index

    def neighbours(self, smiles: str, k: int) -> list[str]:
        """The ``k`` library ligands most similar to ``smiles`` (itself left out)."""
        if (smiles, k) not in self._neighbours:
            assert self.fps is not None  # set in __post_init__
            sim = tanimoto(morgan_bits(smiles), self.fps)
            if smiles in self._index:
                sim[self._index[smiles]] = -1.0
            order = np.argsort(-sim, kind="stable")[:k]
            self._neighbours[(smiles, k)] = [self.ligands[i] for i in order]
        return self._neighbours[(smiles, k)]

    def nearest(self, smiles: str, exclude: AbstractSet[str] = frozenset()) -> str | None:
        """The library ligand most similar to ``smiles`` that is not in ``exclude``."""
        assert self.fps is not None  # set in __post_init__
        sim = tanimoto(morgan_bits(smiles), self.fps)
        for i in np.argsort(-sim, kind="stable"):
            if self.ligands[i] not in exclude:
                return self.ligands[i]
        return None


def load_library(corpus: str, max_heavy_atoms: int) -> Library:
    """The ligands of ``corpus`` ("default" or a ``molmag corpus`` file) the builders accept,
    up to ``max_heavy_atoms``.  ValueError (naming the corpus) if none is left."""
    from molmag.generative.runs import load_ligands

    ligs = load_ligands(corpus, max_heavy_atoms)
    ok = [s for s in dict.fromkeys(g.smiles for g in ligs)
          if accepted_ligand(s, max_heavy_atoms=max_heavy_atoms) == s]
    if not ok:
        raise ValueError(f"library {corpus}: none of its {len(ligs)} ligands is one the builder "
                         "accepts (donor-first O/N ligand, sane valences, <= "
                         f"{max_heavy_atoms} heavy atoms)")
    return Library(ok, source=corpus)


# -- mol-ga Graph-GA operators with the donor tracked ----------------------------------------
def _marked(smiles: str):
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    mol.GetAtomWithIdx(0).SetIsotope(DONOR_ISOTOPE)
    return mol


def _unmark(mol, max_heavy_atoms: int) -> str | None:
    """Donor-first SMILES of an operator's product whose donor is the one marked atom."""
    from rdkit import Chem

    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001 - RDKit raises several sanitisation errors
        return None
    marked = [a.GetIdx() for a in mol.GetAtoms() if a.GetIsotope() == DONOR_ISOTOPE]
    if len(marked) != 1:
        return None
    mol.GetAtomWithIdx(marked[0]).SetIsotope(0)
    if len(Chem.GetMolFrags(mol)) != 1:
        return None
    smi = Chem.MolToSmiles(mol, rootedAtAtom=marked[0])
    return accepted_ligand(smi, max_heavy_atoms=max_heavy_atoms)


def graph_mutate(smiles: str, rng: random.Random, max_heavy_atoms: int) -> str | None:
    """mol-ga's Graph-GA mutation of one ligand (donor kept first), or None."""
    from mol_ga.graph_ga import mutate as mu

    with quiet_rdkit():
        mol = _marked(smiles)
        try:
            child = mu.mutate(mol, rng) if mol is not None else None
        except Exception:  # noqa: BLE001 - mol-ga lets RDKit errors through
            return None
        return _unmark(child, max_heavy_atoms)


def graph_crossover(a: str, b: str, rng: random.Random, max_heavy_atoms: int) -> str | None:
    """mol-ga's Graph-GA crossover of two ligands, the child keeping a donor of a parent."""
    from mol_ga.graph_ga import crossover as co

    with quiet_rdkit():
        ma, mb = _marked(a), _marked(b)
        if ma is None or mb is None:
            return None
        try:
            child = co.crossover(ma, mb, rng)
        except Exception:  # noqa: BLE001
            return None
        return _unmark(child, max_heavy_atoms)


# -- SELFIES operators -----------------------------------------------------------------------
def selfies_alphabet(ligands: Sequence[str]) -> list[str]:
    """The SELFIES tokens of ``ligands`` (the dynamic genes' mutation alphabet)."""
    import selfies as sf

    toks: set[str] = set()
    for s in ligands:
        try:
            toks.update(sf.split_selfies(sf.encoder(s)))
        except Exception:  # noqa: BLE001 - selfies raises EncoderError and others
            continue
    return sorted(toks)


def _tokens(smiles: str) -> list[str] | None:
    import selfies as sf

    try:
        return list(sf.split_selfies(sf.encoder(smiles)))
    except Exception:  # noqa: BLE001
        return None


def _decode(tokens: list[str], max_heavy_atoms: int) -> str | None:
    import selfies as sf

    if not tokens:
        return None
    try:
        smi = sf.decoder("".join(tokens))
    except Exception:  # noqa: BLE001
        return None
    return accepted_ligand(smi, max_heavy_atoms=max_heavy_atoms)


def selfies_mutate(smiles: str, alphabet: Sequence[str], rng: random.Random,
                   max_heavy_atoms: int) -> str | None:
    """One SELFIES token inserted, deleted or replaced (never the donor token 0 deleted)."""
    toks = _tokens(smiles)
    if not toks:
        return None
    op = rng.choice(("insert", "delete", "replace"))
    if op == "insert":
        toks.insert(rng.randint(1, len(toks)), rng.choice(alphabet))
    elif op == "delete" and len(toks) > 1:
        del toks[rng.randint(1, len(toks) - 1)]
    else:
        toks[rng.randrange(len(toks))] = rng.choice(alphabet)
    return _decode(toks, max_heavy_atoms)


def selfies_crossover(a: str, b: str, rng: random.Random, max_heavy_atoms: int) -> str | None:
    """One-point crossover: a prefix of ``a`` (donor token included) + a suffix of ``b``."""
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return None
    i = rng.randint(1, len(ta))
    j = rng.randint(0, len(tb) - 1)
    return _decode(ta[:i] + tb[j:], max_heavy_atoms)


# -- the operators on individuals ------------------------------------------------------------
@dataclass
class Operators:
    """Mutation and crossover of individuals for one encoding (``static`` or ``dynamic``)."""

    encoding: str
    library: Library
    n_sites: int
    max_heavy_atoms: int
    neighbours: int = 8
    random_jump: float = 0.1
    alphabet: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.encoding not in ("static", "dynamic"):
            raise ValueError(f"genes must be 'static' or 'dynamic', not {self.encoding!r}")
        if self.encoding == "dynamic" and not self.alphabet:
            self.alphabet = selfies_alphabet(self.library.ligands)

    def random_individual(self, rng: random.Random) -> Individual:
        return tuple(rng.choice(self.library.ligands) for _ in range(self.n_sites))

    def _mutate_ligand(self, smi: str, rng: random.Random,
                       random_jump: float | None = None) -> str | None:
        if self.encoding == "static":
            if rng.random() < (self.random_jump if random_jump is None else random_jump):
                return rng.choice(self.library.ligands)
            return rng.choice(self.library.neighbours(smi, self.neighbours))
        if rng.random() < 0.5:
            return selfies_mutate(smi, self.alphabet, rng, self.max_heavy_atoms)
        return graph_mutate(smi, rng, self.max_heavy_atoms)

    def _cross_ligand(self, a: str, b: str, rng: random.Random) -> str | None:
        if self.encoding == "dynamic":
            if rng.random() < 0.5:
                return selfies_crossover(a, b, rng, self.max_heavy_atoms)
            return graph_crossover(a, b, rng, self.max_heavy_atoms)
        child = graph_crossover(a, b, rng, self.max_heavy_atoms)
        if child is None:
            return rng.choice(self.library.neighbours(rng.choice((a, b)), self.neighbours))
        return child if child in self.library else self.library.nearest(child, {a, b})

    def mutate(self, ind: Individual, rng: random.Random,
               random_jump: float | None = None) -> Individual | None:
        """One site's ligand replaced (static genes: by a random library ligand with
        probability ``random_jump``, default :attr:`random_jump`, else by one of its
        ``neighbours`` most similar library ligands)."""
        site = rng.randrange(self.n_sites)
        new = self._mutate_ligand(ind[site], rng, random_jump)
        if new is None:
            return None
        return tuple(new if k == site else s for k, s in enumerate(ind))

    def crossover(self, a: Individual, b: Individual, rng: random.Random) -> Individual | None:
        if self.n_sites > 1:
            child = tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))
            if rng.random() < 0.5:   # and one site bred from both parents' ligands
                site = rng.randrange(self.n_sites)
                new = self._cross_ligand(a[site], b[site], rng)
                if new is not None:
                    child = tuple(new if k == site else s for k, s in enumerate(child))
            return child
        new = self._cross_ligand(a[0], b[0], rng)
        return None if new is None else (new,)


__all__ = ["Individual", "individual_key", "key_ligands", "accepted_ligand", "morgan_bits",
           "tanimoto", "donor_bits", "individual_fingerprints", "tanimoto_distances",
           "mean_pairwise_distance", "Library", "load_library", "graph_mutate", "graph_crossover",
           "selfies_alphabet", "selfies_mutate", "selfies_crossover", "Operators",
           "DONOR_ISOTOPE"]
