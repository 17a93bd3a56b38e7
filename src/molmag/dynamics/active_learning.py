"""Which MD frames to label next: query by committee plus farthest-point selection.

A frame is a **candidate** when a calibrated committee spread exceeds its threshold
(Zaverkin et al. 2022, eq. 12, mapped by :mod:`molmag.models.calibration`; query by
committee as in Seung et al. 1992 and the active learning of Briganti & Lunghi):

* forces: the largest per-component calibrated sigma of the frame's forces (eV/Å);
* D: the calibrated sigma of D (cm-1).

A threshold is a number in those units, or ``"calibration"``: the model's own calibration
threshold, twice the 95th percentile of the calibrated sigmas on its validation split
(:func:`molmag.models.calibration.fit_calibration`; per component for forces, so a frame's
largest component exceeds it readily: a strict rule), or for forces ``"calibration-frame"``:
twice the 95th percentile of the validation frames' largest component sigma
(:func:`molmag.dynamics.learn_runs.frame_force_threshold`), the frame statistic itself.

Among the candidates a batch is chosen by **farthest-point selection** (greedy max-min,
Gonzalez 1985) in a structural descriptor space, starting from the structures already
labelled, so that one batch does not spend its labels on near-copies of one excursion.  The
descriptor is the vector of inverse interatomic distances 1/r_ij (i < j, Å^-1) of the frame:
invariant to translation and rotation, fixed atom order within one molecule, and it
weights the short (bonded) distances that decide the energy and the ligand field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from ase import Atoms

#: The spreads a frame carries (trajectory info keys) and their units.
SPREAD_KEYS = {"forces": ("forces_std_component_max", "eV/Å"), "zfs_D": ("zfs_D_std", "cm-1")}


def inverse_distances(frames: Sequence[Atoms]) -> np.ndarray:
    """(n_frames, N(N-1)/2) inverse interatomic distances, Å^-1."""
    out = []
    for a in frames:
        p = a.positions
        i, j = np.triu_indices(len(a), 1)
        out.append(1.0 / np.linalg.norm(p[i] - p[j], axis=1))
    return np.array(out)


def farthest_point_selection(x: np.ndarray, k: int, existing: np.ndarray | None = None,
                             first: int | None = None) -> list[int]:
    """Greedy max-min selection of ``k`` rows of ``x``: each pick is the row farthest from
    everything picked so far and from ``existing`` (rows already labelled).  Without
    ``existing``, the first pick is ``first`` (default: row 0).  Deterministic."""
    n = len(x)
    k = min(k, n)
    if k <= 0:
        return []
    if existing is not None and len(existing):
        from scipy.spatial.distance import cdist

        d = np.full(n, np.inf)
        for c in range(0, len(existing), 512):  # bounded memory for large labelled sets
            d = np.minimum(d, cdist(x, existing[c:c + 512]).min(axis=1))
        picked: list[int] = []
    else:
        first = 0 if first is None else int(first)
        picked = [first]
        d = np.linalg.norm(x - x[first], axis=1)
    while len(picked) < k:
        d[picked] = -np.inf
        nxt = int(np.argmax(d))
        picked.append(nxt)
        d = np.minimum(d, np.linalg.norm(x - x[nxt], axis=1))
    return picked


@dataclass
class Selection:
    candidates: list[int]          # frame indices above a threshold
    picked: list[int]              # the batch (indices into the frames)
    thresholds: dict[str, float]   # the thresholds applied, per spread
    above: dict[str, int]          # frames above each threshold
    max_spread: dict[str, float]   # the largest spread of each kind in the run


def spreads(frames: Sequence[Atoms]) -> dict[str, np.ndarray]:
    """The spreads of :data:`SPREAD_KEYS` the frames carry (NaN where a frame lacks one)."""
    out = {}
    for name, (key, _) in SPREAD_KEYS.items():
        v = np.array([float(a.info.get(key, np.nan)) for a in frames])
        if np.isfinite(v).any():
            out[name] = v
    return out


def select_frames(frames: Sequence[Atoms], thresholds: dict[str, float], batch: int,
                  labelled: Sequence[Atoms] = ()) -> Selection:
    """Candidates above any threshold, and a farthest-point batch of at most ``batch`` among
    them (far from the rows of ``labelled`` that are the same molecule, too).  ValueError for
    a threshold that is not a finite positive number."""
    frames = list(frames)
    s = spreads(frames)
    mask = np.zeros(len(frames), bool)
    above, thr_used, mx = {}, {}, {}
    for name, thr in thresholds.items():
        if not np.isfinite(thr) or thr <= 0:
            raise ValueError(f"threshold of {name} must be a finite positive number, got {thr}")
        if name not in s:
            continue
        hit = s[name] > thr
        mask |= hit
        above[name] = int(hit.sum())
        thr_used[name] = float(thr)
        mx[name] = float(np.nanmax(s[name]))
    cand = [int(i) for i in np.flatnonzero(mask)]
    if not cand:
        return Selection([], [], thr_used, above, mx)
    x = inverse_distances([frames[i] for i in cand])
    # distances in descriptor space compare one molecule in one atom order: labelled rows of
    # other molecules (a dataset shared with other systems) do not enter
    same = [a for a in labelled if len(a) == len(frames[0])
            and np.array_equal(a.numbers, frames[0].numbers)]
    ex = inverse_distances(same) if same else None
    # without a labelled set, start from the most uncertain candidate
    score = np.nanmax(np.stack([s[n][cand] / thr_used[n] for n in thr_used]), axis=0)
    local = farthest_point_selection(x, batch, ex, first=int(np.nanargmax(score)))
    return Selection(cand, [cand[i] for i in local], thr_used, above, mx)


__all__ = ["SPREAD_KEYS", "inverse_distances", "farthest_point_selection", "Selection",
           "spreads", "select_frames"]
