r"""SINGLE_ANISO's old (MOLCAS 8.0) ASCII ab initio data file, and the g factors of its doublets.

Layout (free format, whitespace-separated numbers)::

    nstate nss                       number of spin-free and spin-orbit states
    E_1 ... E_nss                    spin-orbit energies, cm-1
    mult_1 ... mult_nstate           spin multiplicities of the spin-free states
    Re Im  (3 x nss x nss)           magnetic moment M_a(i, j), a = x, y, z, row-major in i, j
    Re Im  (3 x nss x nss)           spin moment S_a(i, j)

The multiplicities normally add up to nss (each spin-free state of multiplicity 2S+1 gives
2S+1 spin-orbit states).  OpenMolcas also writes files whose multiplicity list does not (e.g. a
Dy3+ file with header ``1 16`` and the multiplicity line ``1``): the energies and the matrices
still have the full size nss, which is all the doublets and g factors need, so such a file is
read from nss and the matrices, and the mismatch is reported in :attr:`QCResult.warnings`.

The magnetic moment is in Bohr magnetons, ``M = -(L + g_e S)`` (SINGLE_ANISO's convention).
For a Kramers doublet {i, j} the pseudospin-1/2 g tensor follows from

.. math::  G_{ab} = 2 \sum_{m,n \in \{i,j\}} \mathrm{Re}\, M_a(m,n) M_b(n,m), \qquad
           g_k = \sqrt{\lambda_k(G)}

(for a free spin, M_z = -diag(1, -1) gives G_zz = 4, g = 2); the principal axes are the
eigenvectors of G.  Both matrices must be Hermitian: a file whose blocks are not (a shifted or
garbled file) is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from molmag.io.errors import DataFileError
from molmag.io.qc_result import QCResult
from molmag.io.textscan import TextScan, to_float


def is_aniso_data_file(scan: TextScan) -> bool:
    """The first non-empty line holds exactly two positive integers ``nstate nss``."""
    for line in scan.lines[:5]:
        if line.strip():
            parts = line.split()
            return len(parts) == 2 and all(re.fullmatch(r"[0-9]+", p) and int(p) > 0
                                           for p in parts)
    return False


def doublet_g(moment: np.ndarray, states) -> tuple[np.ndarray, np.ndarray]:
    """Principal g values (ascending) and axes (columns) of the doublet ``states`` from the
    magnetic-moment matrices ``moment`` (3, n, n) in Bohr magnetons (module docstring)."""
    idx = np.asarray(states)
    block = moment[:, idx[:, None], idx[None, :]]
    G = 2.0 * np.einsum("amn,bnm->ab", block, block).real
    w, v = np.linalg.eigh(0.5 * (G + G.T))
    return np.sqrt(np.clip(w, 0.0, None)), v


def _numbers(scan: TextScan, start: int) -> tuple[np.ndarray, np.ndarray]:
    """All numbers after line ``start`` with the line each came from."""
    vals, where = [], []
    for i in range(start, len(scan)):
        for tok in scan.lines[i].split():
            try:
                vals.append(to_float(tok))
            except ValueError:
                raise scan.error(f"{tok!r} is not a (finite) number", i) from None
            where.append(i)
    return np.array(vals), np.array(where, dtype=int)


def _read(path: str | Path, scan: TextScan | None = None):
    """(nstate, nss, energies, multiplicities, magnetic moment (3,nss,nss), spin (3,nss,nss),
    warnings)."""
    scan = scan or TextScan.read(path)
    first = next((i for i, line in enumerate(scan.lines) if line.strip()), None)
    if first is None or not is_aniso_data_file(scan):
        raise DataFileError(path, "not a SINGLE_ANISO data file: line 1 must be 'nstate nss'")
    nstate, nss = (int(x) for x in scan.lines[first].split())
    vals, where = _numbers(scan, first + 1)
    sections = [("spin-orbit energies", nss), ("spin multiplicities", nstate),
                ("magnetic-moment matrix elements (Re, Im)", 2 * 3 * nss * nss),
                ("spin-moment matrix elements (Re, Im)", 2 * 3 * nss * nss)]
    pos = 0
    for name, n in sections:
        if len(vals) < pos + n:
            raise DataFileError(path, f"truncated: {name} need {n} numbers after the ones "
                                      f"before, only {len(vals) - pos} left (file ends at line "
                                      f"{len(scan)})",
                                field=name.split(" (")[0])
        pos += n
    if len(vals) > pos:
        raise DataFileError(path, f"line {where[pos] + 1}: {len(vals) - pos} numbers after the "
                                  f"spin-moment block; expected the file to end (nstate={nstate}, "
                                  f"nss={nss} on line {first + 1})")
    energies = vals[:nss]
    mults = vals[nss:nss + nstate]
    if np.any(mults < 1) or np.any(mults != np.round(mults)):
        raise DataFileError(path, f"spin multiplicities must be positive integers, got {mults}",
                            field="spin multiplicities")
    warnings = []
    if int(np.sum(mults)) != nss:
        warnings.append(f"line {where[nss] + 1}: the spin multiplicities {[int(x) for x in mults]} "
                        f"sum to {int(np.sum(mults))}, not nss = {nss}: read from nss and the "
                        f"{nss} x {nss} matrices (the multiplicities are not used)")
    off = nss + nstate
    blocks = []
    for name in ("magnetic moment", "spin moment"):
        flat = vals[off:off + 2 * 3 * nss * nss]
        m = (flat[0::2] + 1j * flat[1::2]).reshape(3, nss, nss)
        err = np.abs(m - np.conj(np.transpose(m, (0, 2, 1)))).max()
        if err > 1e-6 * max(1.0, np.abs(m).max()):
            raise DataFileError(path, f"the {name} matrices are not Hermitian (max deviation "
                                      f"{err:.2e}): the file is garbled or misaligned", field=name)
        blocks.append(m)
        off += 2 * 3 * nss * nss
    return nstate, nss, energies, mults, blocks[0], blocks[1], warnings


def _matrices(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Magnetic-moment and spin-moment matrices (3, nss, nss) of a data file."""
    return _read(path)[4:6]


def read_aniso_data(path: str | Path, scan: TextScan | None = None) -> QCResult:
    """Read the ASCII data file; Kramers-doublet energies and g tensors of every doublet.

    Raises :class:`DataFileError` naming what is missing for a truncated file."""
    nstate, nss, energies, mults, moment, _, warnings = _read(path, scan)
    order = np.argsort(energies, kind="stable")
    result = QCResult(file=str(path), program="openmolcas", kinds=["aniso-data", "so-spectrum"])
    result.so_energies = energies[order] - energies[order][0]
    result.so_method = "SINGLE_ANISO ab initio data file"
    result.calculation = {"nstate": nstate, "nss": nss,
                          "multiplicities": [int(x) for x in mults]}
    result.warnings.extend(warnings)
    if nss % 2 == 0:
        pairs = order.reshape(-1, 2)
        kd = result.so_energies.reshape(-1, 2).mean(axis=1)
        result.kd_energies = kd - kd[0]
        g, axes = zip(*(doublet_g(moment, p) for p in pairs))
        result.g_tensors = np.array(g)
        result.g_axes = np.array(axes)
        result.g_method = "pseudospin S=1/2 g from the magnetic moment of each doublet"
        result.kinds.append("g-tensors")
    return result


__all__ = ["doublet_g", "is_aniso_data_file", "read_aniso_data"]
