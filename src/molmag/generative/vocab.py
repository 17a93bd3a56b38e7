"""Tokenisation and one-hot encoding of SMILES and SELFIES strings.

A :class:`Vocabulary` is built from a corpus (Khatibi et al. 2026, Methods: "the SMILES
strings in the training set were screened to determine the maximum sequence length and the
full set of characters present"). Strings are split into *tokens*, not characters, so that a
multi-character symbol is one one-hot position:

* SMILES: ``Cl``, ``Br``, bracket atoms (``[O-]``, ``[nH]``, ``[C@@H]``, ``[NH3+]``), two-digit
  ring closures (``%10``), and single characters otherwise;
* SELFIES: the bracketed symbols of :func:`selfies.split_selfies` (``[C]``, ``[=O]``,
  ``[Ring1]``, ...).

Every string is padded with the space token ``' '`` (index 0, always in the vocabulary; the
paper's convention) to ``max_len`` tokens, giving a ``(max_len, n_tokens)`` one-hot matrix.
Decoding joins tokens up to the first pad token (a pad in the middle ends the string).

SMILES are the exchange format everywhere in molmag; a SELFIES vocabulary converts with
:meth:`Vocabulary.to_repr` (SMILES -> SELFIES, ``selfies.encoder``) and
:meth:`Vocabulary.to_smiles` (``selfies.decoder``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

PAD = " "
KINDS = ("smiles", "selfies")

#: one SMILES token: bracket atom, two-letter organic-subset halogen, %nn ring closure,
#: or any single character
_SMILES_TOKEN = re.compile(r"(\[[^\[\]]*\]|Br|Cl|%\d{2}|.)", re.DOTALL)


def tokenize_smiles(smiles: str) -> list[str]:
    """Split a SMILES string into tokens (``Cl``, ``Br``, ``[nH]``, ``%10`` are one token)."""
    if not isinstance(smiles, str):
        raise TypeError(f"a SMILES must be a str, not {type(smiles).__name__} ({smiles!r})")
    if PAD in smiles:
        raise ValueError(f"SMILES {smiles!r} contains a space, the padding character")
    tokens = _SMILES_TOKEN.findall(smiles)
    for t in tokens:
        if t in "[]":
            raise ValueError(f"SMILES {smiles!r} has an unbalanced bracket")
    return tokens


def tokenize_selfies(selfies: str) -> list[str]:
    """Split a SELFIES string into its bracketed symbols (``selfies.split_selfies``)."""
    import selfies as sf

    if not isinstance(selfies, str):
        raise TypeError(f"a SELFIES must be a str, not {type(selfies).__name__} ({selfies!r})")
    tokens = list(sf.split_selfies(selfies))
    if "".join(tokens) != selfies:
        raise ValueError(f"{selfies!r} is not a SELFIES string (not all of it is [symbols])")
    return tokens


def smiles_to_selfies(smiles: str) -> str:
    """SMILES -> SELFIES (``selfies.encoder``), with an error that names the string."""
    import selfies as sf

    try:
        out = sf.encoder(smiles)
    except sf.EncoderError as exc:
        raise ValueError(f"SMILES {smiles!r} cannot be encoded as SELFIES: {exc}") from None
    if out is None:
        raise ValueError(f"SMILES {smiles!r} cannot be encoded as SELFIES")
    return out


def selfies_to_smiles(selfies: str) -> str:
    """SELFIES -> SMILES (``selfies.decoder``); '' where the string does not decode.

    Hydrogen completion: the decoder writes charged atoms as bracket atoms (``[N-1]``) and
    leaves the valence a string does not fill open, which RDKit reads as unpaired electrons
    (``[N-]C``: an aminyl radical anion).  Such open valences are filled with hydrogens here
    (``[NH-]C``), the reading SMILES gives every atom outside brackets and the closed-shell
    molecule the string describes; nothing else changes, and a string without open valences
    comes back exactly as the decoder wrote it.  Measured on 2000 prior samples of
    ``gauss-ii-qm9-selfies``: 222 carried a radical, 215 of them on an amide-type donor
    ``[N-]`` with one single bond (DEVELOPERS.md)."""
    import selfies as sf

    try:
        out = sf.decoder(selfies)
    except sf.DecoderError:
        return ""
    return _fill_open_valences(out) if out else ""


def _fill_open_valences(smiles: str) -> str:
    """``smiles`` with every radical electron replaced by a hydrogen (atom order kept, atom 0
    first); ``smiles`` itself when it has none or RDKit cannot read it."""
    if "[" not in smiles:
        return smiles
    from rdkit import Chem

    from molmag.chem.builders import quiet_rdkit

    with quiet_rdkit():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None or not any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
            return smiles
        for a in mol.GetAtoms():
            n = a.GetNumRadicalElectrons()
            if n:
                a.SetNumRadicalElectrons(0)
                a.SetNumExplicitHs(a.GetNumExplicitHs() + n)
        try:
            Chem.SanitizeMol(mol)
        except Exception:  # noqa: BLE001 - RDKit raises several types; keep the decoder's
            return smiles
        return Chem.MolToSmiles(mol, rootedAtAtom=0, canonical=False)


@dataclass
class Vocabulary:
    """Tokens (``tokens[0]`` is the pad ``' '``), the representation (``'smiles'`` or
    ``'selfies'``) and the fixed padded length ``max_len`` (in tokens)."""

    tokens: list[str]
    max_len: int
    kind: str = "smiles"
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown representation {self.kind!r}; use one of {KINDS}")
        self.tokens = list(self.tokens)
        if not self.tokens or self.tokens[0] != PAD:
            raise ValueError("the first token of a vocabulary must be the pad ' '")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("the vocabulary has repeated tokens")
        if int(self.max_len) < 1:
            raise ValueError("max_len must be >= 1")
        self.max_len = int(self.max_len)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_corpus(cls, strings: Iterable[str], kind: str = "smiles",
                    max_len: int | None = None, *, from_smiles: bool = False) -> Vocabulary:
        """Vocabulary of every token in ``strings`` (sorted, pad first). ``max_len``
        defaults to the longest string; ``from_smiles=True`` converts SMILES input to the
        representation first (only matters for ``kind='selfies'``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown representation {kind!r}; use one of {KINDS}")
        found: set[str] = set()
        longest = 0
        n = 0
        for s in strings:
            if from_smiles and kind == "selfies":
                s = smiles_to_selfies(s)
            toks = tokenize_smiles(s) if kind == "smiles" else tokenize_selfies(s)
            found.update(toks)
            longest = max(longest, len(toks))
            n += 1
        if n == 0:
            raise ValueError("cannot build a vocabulary from an empty corpus")
        if max_len is None:
            max_len = longest
        elif longest > max_len:
            raise ValueError(f"the corpus has a string of {longest} tokens, longer than "
                             f"max_len={max_len}")
        found.discard(PAD)
        return cls([PAD] + sorted(found), max(1, max_len), kind)

    def to_dict(self) -> dict:
        """JSON-serialisable form (stored in the model file header)."""
        return {"kind": self.kind, "max_len": self.max_len, "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabulary:
        return cls(list(d["tokens"]), int(d["max_len"]), d.get("kind", "smiles"))

    def __len__(self) -> int:
        return len(self.tokens)

    # -- representation -------------------------------------------------------------------
    def tokenize(self, s: str) -> list[str]:
        return tokenize_smiles(s) if self.kind == "smiles" else tokenize_selfies(s)

    def to_repr(self, smiles: str) -> str:
        """SMILES -> this vocabulary's representation."""
        return smiles if self.kind == "smiles" else smiles_to_selfies(smiles)

    def to_smiles(self, s: str) -> str:
        """This vocabulary's representation -> SMILES ('' for an undecodable SELFIES)."""
        return s if self.kind == "smiles" else selfies_to_smiles(s)

    # -- encoding -------------------------------------------------------------------------
    def indices(self, strings: Sequence[str]) -> np.ndarray:
        """``(n, max_len)`` int64 token indices, padded with 0 (the ``' '`` token)."""
        if isinstance(strings, str):
            strings = [strings]
        out = np.zeros((len(strings), self.max_len), dtype=np.int64)
        for i, s in enumerate(strings):
            toks = self.tokenize(s)
            if len(toks) > self.max_len:
                raise ValueError(f"{self.kind.upper()} {s!r} has {len(toks)} tokens, more "
                                 f"than the vocabulary's max_len={self.max_len}")
            for j, t in enumerate(toks):
                k = self.index.get(t)
                if k is None or t == PAD:
                    raise ValueError(f"{self.kind.upper()} {s!r} contains the token {t!r}, "
                                     "which is not in the vocabulary")
                out[i, j] = k
        return out

    def encodes(self, smiles: str) -> bool:
        """Whether a SMILES string (converted to this representation) fits the vocabulary:
        every token known and no longer than ``max_len``."""
        try:
            self.indices([self.to_repr(smiles)])
        except ValueError:
            return False
        return True

    def one_hot(self, strings: Sequence[str]) -> np.ndarray:
        """``(n, max_len, n_tokens)`` float32 one-hot matrices (pad = ``' '``)."""
        idx = self.indices(strings)
        out = np.zeros(idx.shape + (len(self.tokens),), dtype=np.float32)
        np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
        return out

    def decode_indices(self, idx: np.ndarray) -> list[str]:
        """Token indices ``(n, L)`` -> strings, each ending at its first pad token."""
        idx = np.atleast_2d(np.asarray(idx))
        out = []
        for row in idx:
            toks = []
            for k in row:
                t = self.tokens[int(k)]
                if t == PAD:
                    break
                toks.append(t)
            out.append("".join(toks))
        return out

    def decode_one_hot(self, x: np.ndarray) -> list[str]:
        """One-hot (or logits/probabilities) ``(n, L, n_tokens)`` -> strings via argmax."""
        return self.decode_indices(np.argmax(np.asarray(x), axis=-1))


__all__ = ["PAD", "Vocabulary", "tokenize_smiles", "tokenize_selfies", "smiles_to_selfies",
           "selfies_to_smiles"]
