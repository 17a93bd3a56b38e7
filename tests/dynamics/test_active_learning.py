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


def test_select_frames_refuses_thresholds_that_can_never_select():
    frames = _frames([0.01, 0.5], [0.1, 0.1])
    for bad in (float("inf"), float("nan"), 0.0):
        with pytest.raises(ValueError, match="threshold of forces must be a finite positive"):
            select_frames(frames, {"forces": bad}, batch=1)


def test_select_frames_ignores_labelled_rows_of_other_molecules():
    """A dataset shared with other systems (``initial: none`` on a mixed dataset): rows of
    another molecule (other atom count or elements) do not enter the farthest-point
    distances, and the batch is the one chosen against the same molecule's rows."""
    from ase.build import molecule

    frames = _frames([0.5, 0.6, 0.7], [0.1, 0.1, 0.1])
    same = [frames[2].copy()]                   # labelled already: frame 2 is not new
    other = [molecule("CH4"), molecule("H2O"), Atoms("CS2", positions=frames[0].positions)]
    sel = select_frames(frames, {"forces": 0.1}, batch=1, labelled=same + other)
    ref = select_frames(frames, {"forces": 0.1}, batch=1, labelled=same)
    assert sel.picked == ref.picked and sel.picked != [2]


def test_a_stopped_learning_run_continues_when_its_limits_are_raised(tmp_path):
    """max_rounds or the label budget raised after a run stopped: the last round (which
    could pick nothing) selects again; a converged run stays converged."""
    from molmag.dynamics.learn_runs import LearnConfig, _reopen

    cfg = LearnConfig.model_validate({"structure": {"file": "unused.xyz"}, "max_rounds": 4,
                                      "budget": 50})
    (tmp_path / "round1").mkdir()
    (tmp_path / "round1" / "selection.json").write_text("{}")
    rounds = [{"round": 0, "picked": [1, 2]}, {"round": 1, "picked": []}]
    st = {"status": "stopped", "stop_reason": "max_rounds (2) reached", "rounds": list(rounds)}
    assert _reopen(st, cfg, 2, tmp_path, lambda s: None)
    assert st["status"] == "running" and st["stop_reason"] is None
    assert [r["round"] for r in st["rounds"]] == [0]
    assert not (tmp_path / "round1" / "selection.json").exists()
    # the same limits as when it stopped: it stays stopped
    st = {"status": "stopped", "stop_reason": "max_rounds (2) reached", "rounds": list(rounds)}
    assert not _reopen(st, cfg.model_copy(update={"max_rounds": 2}), 2, tmp_path,
                       lambda s: None)
    st = {"status": "stopped", "stop_reason": "label budget (2) spent", "rounds": list(rounds)}
    assert _reopen(st, cfg, 2, tmp_path, lambda s: None)
    st = {"status": "stopped", "stop_reason": "label budget (2) spent", "rounds": list(rounds)}
    assert not _reopen(st, cfg.model_copy(update={"budget": 2}), 2, tmp_path, lambda s: None)
    st = {"status": "converged", "stop_reason": "round 1: ...", "rounds": list(rounds)}
    assert not _reopen(st, cfg, 2, tmp_path, lambda s: None)


def test_calibration_force_threshold_is_a_per_frame_statistic(tmp_path):
    """``forces: calibration`` compares a frame's largest component sigma with twice the 95th
    percentile of the same per-frame maximum on the potential's validation frames (not with
    the per-component calibration threshold, which a maximum over 3N components exceeds in
    almost every frame)."""
    from ase.calculators.morse import MorsePotential

    from molmag.descriptors.bispectrum import snap_available
    from molmag.dynamics.learn_runs import frame_force_threshold
    from molmag.io.dataset import Dataset
    from molmag.io.provenance import Provenance
    from molmag.io.records import Record
    from molmag.training.config import TrainConfig
    from molmag.training.run import train

    if not snap_available():
        pytest.skip("LAMMPS ML-SNAP unavailable")
    rng = np.random.default_rng(3)
    d = 2.28 / np.sqrt(3)
    base = np.array([[0, 0, 0], [d, d, d], [-d, -d, d], [-d, d, -d], [d, -d, -d]])
    frames = [Atoms("CoCl4", positions=base + rng.uniform(-0.15, 0.15, base.shape))
              for _ in range(60)]
    e, f = [], []
    for a in frames:
        b = a.copy()
        b.calc = MorsePotential(epsilon=1.0, r0=2.3, rho0=5.0)
        e.append(b.get_potential_energy())
        f.append(b.get_forces())
    prov = Provenance(method="Morse", program="ase", version="test")
    db = Dataset(tmp_path / "morse.db")
    db.add_many([Record(a, charge=-2, multiplicity=4, labels={"energy": ei, "forces": fi},
                        provenance={"energy": prov, "forces": prov})
                 for a, ei, fi in zip(frames, e, f)])
    cfg = TrainConfig.model_validate({
        "model": {"kind": "snap-energy", "committee": 4},
        "descriptor": {"twojmax": 4, "rcutfac": 3.0},
        "data": {"dataset": str(tmp_path / "morse.db"), "split": {"val": 0.3, "test": 0.0}},
        "output": str(tmp_path / "pot")})
    model = train(cfg).model
    thr = frame_force_threshold(model)
    val = [db.get(i).atoms for i in model.config["split_ids"]["val"]]
    sig = model.predict(val, forces=True)["forces_std"]
    per_frame = np.array([np.max(s) for s in sig])
    assert thr == pytest.approx(2.0 * np.quantile(per_frame, 0.95))
    # the per-component threshold sits below most frames' maximum; the per-frame one does not
    per_component = model.calibration.get("forces").threshold
    assert np.mean(per_frame > per_component) > np.mean(per_frame > thr)
    assert np.mean(per_frame > thr) <= 0.05


def test_calibration_frame_threshold_is_for_forces_only():
    from molmag.dynamics.learn_runs import LearnConfig, thresholds

    cfg = LearnConfig.model_validate({"structure": {"file": "unused.xyz"},
                                      "select": {"forces": "calibration-frame",
                                                 "zfs_D": "calibration-frame"}})
    assert cfg.select.forces == "calibration-frame"
    with pytest.raises(ValueError, match="select.zfs_D: calibration-frame applies to forces"):
        thresholds(cfg, None, object())


def test_learn_config_refuses_zero_trajectories():
    from molmag.dynamics.learn_runs import LearnMDConfig

    assert LearnMDConfig().trajectories == 1
    with pytest.raises(ValueError, match="trajectories"):
        LearnMDConfig(trajectories=0)


def test_merge_picks_puts_frames_before_a_stop_first_or_last():
    from molmag.dynamics.learn_runs import LearnConfig, merge_picks

    # stopped_first false: farthest-point picks, then the frames before a stop where room is
    # left
    assert merge_picks([], [5, 9, 2], [30, 31, 9], 5) == [5, 9, 2, 30, 31]
    assert merge_picks([], [5, 9, 2], [30, 31], 3) == [5, 9, 2]
    # stopped_first (the default): those frames, then the picks (no index twice, never more than n)
    assert merge_picks([30, 31], [5, 30, 9], [30, 31], 3) == [30, 31, 5]
    assert merge_picks([30, 31, 32], [5], [30, 31, 32], 2) == [30, 31]
    assert LearnConfig.model_fields["select"].default_factory().stopped_first is True



def test_the_tensor_committee_of_learn_trains_on_subsamples_in_library_template_and_campaign():
    """The D committee of active learning: members on 80 % subsamples (bootstrap members on
    ~200 labels shrank D's structural slopes), the same in LearnConfig's default, in
    ``molmag template learn`` and in the co-pdms campaign's learn stage."""
    import yaml

    from molmag.dynamics.learn_runs import LearnConfig
    from molmag.dynamics.templates import LEARN

    default = LearnConfig.model_validate({}).tensor
    template = LearnConfig.model_validate(yaml.safe_load(LEARN)).tensor
    for section in (default, template):
        assert section is not None and section.kind == "covariant-ridge"
        assert (section.resample, section.subsample) == ("subsample", 0.8)
        assert section.hyper.lambda_selection == "loo"
    from molmag.workflows.co_pdms_dynamics import LEARN_TENSOR

    campaign = LearnConfig.model_validate({"tensor": LEARN_TENSOR | {"committee": 3}}).tensor
    assert campaign is not None and campaign.model_dump() == default.model_dump() | {
        "committee": 3}
