"""molmag.dynamics.active_learning: query-by-committee candidates and farthest-point batches."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from molmag.dynamics.active_learning import (
    farthest_point_selection,
    inverse_distances,
    select_frames,
)


def test_farthest_point_selection_on_known_points():
    x = np.array([[0, 0], [1, 0], [0, 3], [5, 5]], float)
    # from (0,0) the farthest is (5,5); then (0,3) is 3 from the nearest pick, (1,0) only 1
    assert farthest_point_selection(x, 3, first=0) == [0, 3, 2]
    # with (5,5) already labelled, the first pick is the point farthest from it
    assert farthest_point_selection(x, 1, existing=np.array([[5.0, 5.0]])) == [0]
    # never more than the rows, never a repeat
    q = farthest_point_selection(x, 10)
    assert sorted(q) == [0, 1, 2, 3]


def test_inverse_distances_are_rotation_and_translation_invariant():
    rng = np.random.default_rng(0)
    a = Atoms("CH4", positions=rng.normal(size=(5, 3)))
    b = a.copy()
    b.rotate(73, (1, 2, 3), center=(0, 0, 0))
    b.translate((3, -1, 2))
    np.testing.assert_allclose(inverse_distances([a]), inverse_distances([b]), rtol=1e-12)


def _frames(sig_f, sig_d):
    rng = np.random.default_rng(1)
    out = []
    for f, d in zip(sig_f, sig_d):
        a = Atoms("CO2", positions=[[0, 0, 0], [1.16, 0, 0], [-1.16, 0, 0]]
                  + rng.normal(scale=0.05, size=(3, 3)))
        a.info.update(forces_std_component_max=f, zfs_D_std=d)
        out.append(a)
    return out


def test_select_frames_takes_candidates_above_either_threshold_only():
    frames = _frames([0.01, 0.5, 0.02, 0.03, 0.9], [0.1, 0.1, 5.0, 0.2, 0.1])
    sel = select_frames(frames, {"forces": 0.1, "zfs_D": 1.0}, batch=10)
    assert sorted(sel.candidates) == [1, 2, 4]
    assert sorted(sel.picked) == [1, 2, 4]
    assert sel.above == {"forces": 2, "zfs_D": 1}
    assert sel.max_spread["forces"] == pytest.approx(0.9)
    # a batch of one: the most uncertain candidate relative to its threshold (F 0.9/0.1)
    assert select_frames(frames, {"forces": 0.1, "zfs_D": 1.0}, batch=1).picked == [4]
    # nothing above: no candidates, nothing picked
    none = select_frames(frames, {"forces": 5.0, "zfs_D": 50.0}, batch=3)
    assert none.candidates == [] and none.picked == []


def test_initial_normal_mode_samples_classical_are_narrower_than_quantum():
    """molmag learn's round-0 samples: classical amplitudes (k_B T / omega^2, what classical
    MD samples) are narrower than quantum ones (zero-point motion) at 100 K; both keep the
    molecule's centre and atom order; the template's configuration validates."""
    from ase.build import molecule

    from molmag.dynamics.learn_runs import LearnConfig, initial_frames

    start = molecule("H2O")
    start.info.update(charge=0, multiplicity=1)
    spread = {}
    for amp in ("classical", "quantum"):
        cfg = LearnConfig.model_validate({
            "structure": {"file": "unused.xyz"}, "tensor": None,
            "initial": {"kind": "normal-modes", "n": 200, "temperature": 100.0,
                        "amplitudes": amp, "seed": 1},
            "labels": {"xtb": {"properties": ["energy", "forces"]}}})
        frames = initial_frames(cfg, start)
        assert len(frames) == 200 and all((f.numbers == start.numbers).all() for f in frames)
        spread[amp] = np.std([f.positions - start.positions for f in frames])
    # O-H stretches and the bend (1600-3800 cm-1) are frozen at 100 K: quantum >> classical
    assert spread["classical"] < 0.3 * spread["quantum"], spread
