"""`molmag learn CONFIG.yaml`: active learning that keeps an ML potential and a D-tensor
model right where the molecule goes at finite temperature.

One round ``r`` (folder ``<output>/round<r>``):

1. train the energy committee (``potential``) and the tensor committee (``tensor``) on every
   row of the dataset (:func:`molmag.training.run.train`; the validation split calibrates
   their spreads);
2. run Langevin MD with them (:func:`molmag.dynamics.md.run_md`, every temperature of
   ``md``), each stored frame with its calibrated force and D spreads;
3. the frames above a threshold are candidates; a batch is chosen among them by
   farthest-point selection (:mod:`molmag.dynamics.active_learning`); a run that stopped
   (blow-up) adds its last stored frames as candidates;
4. the batch is labelled by the reference engines through the labelling pipeline (xTB energy
   and forces, ligand-field D tensor) into the dataset.

The loop ends when a whole round of MD (every run finished, ``md.time_ps`` long) has no
frame above the thresholds (converged), when ``budget`` labels have been added, or after
``max_rounds``; the last round's models, trained on every label, are the result
(``learn.json``: ``final``).  Round 0 starts from ``initial`` labels: Boltzmann samples along
the start structure's normal modes at the MD temperature (or random displacements).

Resumable: every step is idempotent (training skips a finished model, MD continues from its
checkpoint, labelling skips labelled rows) and ``learn.json`` records finished rounds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Literal, cast

import numpy as np
from ase import Atoms
from pydantic import Field, field_validator, model_validator

from molmag.config_files import StrictModel as _Strict
from molmag.config_files import read_yaml, resolve, validate
from molmag.dynamics.md import MAX_TIMESTEP_FS, MDSettings, run_md
from molmag.dynamics.md_files import write_json_atomic
from molmag.explore.calculators import StructureSpec, load_structure
from molmag.labelling.config import ClusterConfig, LabelsConfig
from molmag.training.config import ModelSection, model_section

Log = Callable[[str], None]




class InitialConfig(_Strict):
    """Round 0's labels: ``normal-modes`` (Boltzmann samples along the xTB normal modes of the
    start structure at ``temperature``; ``amplitudes``: ``quantum`` (default) with
    zero-point motion, hbar/(2 omega) coth(hbar omega / 2 k_B T), much wider than MD for the
    C-H stretches, or ``classical`` k_B T / omega^2, the distribution classical Langevin MD
    samples near the minimum), ``displacements`` (uniform
    random Cartesian displacements of +-``delta`` Å) or ``none`` (the dataset has labels
    already, e.g. a campaign's)."""

    kind: Literal["normal-modes", "displacements", "none"] = "normal-modes"
    n: int = Field(default=40, ge=4)
    temperature: float | None = Field(default=None, gt=0, description="K (default: the highest MD "
                                                              "temperature)")
    amplitudes: Literal["classical", "quantum"] = "quantum"
    delta: float = Field(default=0.05, gt=0, le=0.5)
    seed: int = 0


class LearnMDConfig(_Strict):
    engine: Literal["auto", "ase", "lammps"] = "auto"
    temperatures: list[float] = Field(default_factory=lambda: [100.0], min_length=1)
    time_ps: float = Field(default=5.0, gt=0, description="length of each round's run, ps")
    timestep_fs: float = Field(default=0.5, gt=0, le=MAX_TIMESTEP_FS)
    friction_per_fs: float = Field(default=0.01, gt=0)
    stride: int = Field(default=10, ge=1)
    seed: int = 0
    trajectories: int = Field(default=1, ge=1, le=64, description="independent runs per "
                              "temperature and round (own Maxwell-Boltzmann starts); the loop "
                              "converges when every one stays below the thresholds")

    @field_validator("temperatures")
    @classmethod
    def _positive(cls, v):
        if any(not t > 0 for t in v):
            raise ValueError("temperatures must be > 0 K")
        return v


Threshold = float | Literal["calibration", "calibration-frame"] | None


class SelectConfig(_Strict):
    """Thresholds of the calibrated spreads: a number (eV/Å for forces: the largest
    per-component sigma of a frame; cm-1 for D), ``calibration`` (the model's own: twice the
    95th percentile of its validation sigmas, per component for forces), for forces
    ``calibration-frame`` (twice the 95th percentile of the validation frames' largest
    component sigma: the frame statistic itself, more lenient), or null (not used)."""

    forces: Threshold = "calibration"
    zfs_D: Threshold = "calibration"
    batch: int = Field(default=10, ge=1, description="labels added per round")
    stopped_first: bool = Field(default=True, description="label the last stored frames "
                                "before each stopped MD run first, farthest-point picks fill "
                                "the rest (false: they only fill a batch the picks leave "
                                "short)")


class TestSetConfig(_Strict):
    dataset: str
    selection: str | None = None


def _section(kind: str, **fields: Any) -> ModelSection:
    # model_section validates against the ModelSection union (its annotation is the base)
    return cast(ModelSection, model_section(kind, **fields))


def _default_labels() -> LabelsConfig:
    return LabelsConfig.model_validate({"xtb": {"properties": ["energy", "forces"]},
                                        "ligand_field": {}})


class LearnConfig(_Strict):
    structure: StructureSpec = Field(default_factory=lambda: StructureSpec(builder="co-pdms"))
    dataset: str = Field(default="labels.db", description="all labels (initial + chosen): created "
                                                  "or extended")
    initial: InitialConfig = Field(default_factory=InitialConfig)
    labels: LabelsConfig = Field(default_factory=_default_labels)
    potential: ModelSection = Field(default_factory=lambda: _section("snap-energy"))
    # members on 80 % subsamples, not bootstrap resamples (63 % distinct rows): with the
    # 100-200 labels of active learning the bootstrap members' penalties shrink the slopes
    # of D (DEVELOPERS.md, "Ridge penalty by leave-one-out")
    tensor: ModelSection | None = Field(default_factory=lambda: _section(
        "covariant-ridge", resample="subsample", subsample=0.8))
    potential_selection: str | None = Field(
        default=None,
        description="rows the potential trains on (ASE selection, e.g. 'group!=disp0.2')")
    tensor_selection: str | None = Field(default=None,
                                         description="rows the tensor model trains on")
    descriptors: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="descriptor overrides per role: potential, tensor")
    md: LearnMDConfig = Field(default_factory=LearnMDConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    budget: int = Field(default=200, ge=1, description="labels added by the loop at most")
    max_rounds: int = Field(default=10, ge=1)
    val_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    seed: int = 0
    test: TestSetConfig | None = None
    cluster: ClusterConfig = Field(default_factory=lambda: ClusterConfig(kind="serial"))
    output: str = "learn"

    @model_validator(mode="after")
    def _descriptor_roles(self) -> LearnConfig:
        from molmag.training.config import descriptor_keys

        sections = {"potential": self.potential, "tensor": self.tensor}
        for role, overrides in self.descriptors.items():
            section = sections.get(role)
            if section is None:
                raise ValueError(f"descriptors.{role}: not a model role (potential, tensor)")
            unknown = [k for k in overrides if k not in descriptor_keys(section.kind)]
            if unknown:
                raise ValueError(f"descriptors.{role}: unknown setting(s) "
                                 f"{', '.join(unknown)} of the {section.kind} descriptor")
        return self


def load_learn_config(path: str | Path, **overrides) -> LearnConfig:
    """Read and validate a learn configuration; ``overrides``: ``output``, ``budget``,
    ``max_rounds``."""
    path = Path(path)
    raw = read_yaml(path)
    for key in ("output", "budget", "max_rounds"):
        if overrides.get(key) is not None:
            raw[key] = overrides[key]
    cfg = validate(path, LearnConfig, raw)
    base = path.resolve().parent
    cfg.structure.file = resolve(cfg.structure.file, base)
    cfg.output = resolve(cfg.output, base)
    cfg.dataset = resolve(cfg.dataset if "://" in cfg.dataset or Path(cfg.dataset).is_absolute()
                          else str(Path(cfg.output) / cfg.dataset), base)
    if cfg.test is not None:
        cfg.test.dataset = resolve(cfg.test.dataset, base)
    return cfg


# -- the steps of a round ---------------------------------------------------------------------
def _label_frames(cfg: LearnConfig, frames: list[Atoms], path: Path, group: str,
                  start: Atoms) -> dict[str, Any]:
    """Label ``frames`` with the reference engines into the dataset (idempotent)."""
    from ase.io import write

    from molmag.labelling.config import LabelConfig, SourceConfig
    from molmag.labelling.pipeline import run_labelling

    clean = []
    for a in frames:
        b = Atoms(a.numbers, positions=a.positions)
        b.info.update({k: start.info[k] for k in ("charge", "multiplicity", "metal_index",
                                                  "donor_indices") if k in start.info})
        clean.append(b)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, clean, format="extxyz")
    src = SourceConfig(file=str(path), charge=int(start.info.get("charge", 0)),
                       multiplicity=int(start.info.get("multiplicity", 1)),
                       metal_index=start.info.get("metal_index"), group=group)
    lc = LabelConfig(output=cfg.dataset, sources=[src], labels=cfg.labels,
                     cluster=cfg.cluster)
    return run_labelling(lc).as_dict()


def initial_frames(cfg: LearnConfig, start: Atoms) -> list[Atoms]:
    """Round 0's structures (see :class:`InitialConfig`)."""
    from molmag.chem import sampling

    ini = cfg.initial
    if ini.kind == "displacements":
        return sampling.random_displacements(start, ini.n, ini.delta, seed=ini.seed)
    from molmag.chem.xtb import XTBCalculator

    t = ini.temperature or max(cfg.md.temperatures)
    modes = sampling.normal_modes(start, XTBCalculator())
    return sampling.boltzmann_normal_mode_samples(start, modes, t, ini.n, seed=ini.seed,
                                                  quantum=ini.amplitudes == "quantum")


def _train(cfg: LearnConfig, section: Any, role: str, folder: Path, log: Log,
           selection: str | None = None) -> Path:
    from molmag.training.config import TrainConfig
    from molmag.training.run import train

    tc = TrainConfig.model_validate({
        "model": section.model_dump(), "descriptor": cfg.descriptors.get(role, {}),
        "data": {"dataset": cfg.dataset, "seed": cfg.seed, "selection": selection,
                 "split": {"by": "fraction", "val": cfg.val_fraction, "test": 0.0}},
        "output": str(folder)})
    res = train(tc, log=lambda s: log(f"  {role}: {s}"))
    return Path(res.output) / "model.npz"


def frame_force_threshold(potential) -> float:
    """The ``calibration`` threshold of a frame's largest force sigma (eV/Å): twice the 95th
    percentile, over the potential's validation frames, of each frame's largest calibrated
    per-component sigma.

    A frame's spread is the maximum over its 3N components (:data:`active_learning.SPREAD_KEYS`),
    so it is compared with the same statistic on the validation frames, not with the
    per-component threshold of the calibration (which the maximum of 3N components exceeds
    in almost every frame).  ``inf`` when the model has no validation frames."""
    from molmag.io.dataset import Dataset

    ids = (potential.config.get("split_ids") or {}).get("val") or []
    dataset = potential.config.get("dataset")
    if not ids or not dataset:
        return float("inf")
    ds = Dataset(dataset)
    frames = [ds.get(int(i)).atoms for i in ids]
    pred = potential.predict(frames, forces=True)
    per_frame = np.array([float(np.max(np.asarray(s))) for s in pred["forces_std"]])
    per_frame = per_frame[np.isfinite(per_frame)]
    return float(2.0 * np.quantile(per_frame, 0.95)) if per_frame.size else float("inf")


def thresholds(cfg: LearnConfig, potential, tensor) -> dict[str, float]:
    """The thresholds of ``select`` in numbers.  ``calibration``: the models' own calibration
    thresholds (twice the 95th percentile of the calibrated sigmas on the validation split;
    for forces per component, while a frame's spread is its largest component: a strict
    threshold); ``calibration-frame`` (forces): the same statistic as the frame's,
    :func:`frame_force_threshold`.  ValueError when one is not a finite positive number: a
    loop that can never select a frame would stop as "converged" without having checked
    anything."""
    out = {}
    for name, model, key in (("forces", potential, "forces"), ("zfs_D", tensor, "zfs_D")):
        thr = getattr(cfg.select, name)
        if thr is None or model is None:
            continue
        if thr == "calibration-frame" and name != "forces":
            raise ValueError(f"select.{name}: calibration-frame applies to forces only")
        if thr in ("calibration", "calibration-frame"):
            value = frame_force_threshold(model) if thr == "calibration-frame" else \
                float(model.calibration.get(key).threshold)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"select.{name}: calibration gives no usable threshold "
                                 f"({value}; the {name} model has no validation split with "
                                 "spreads); set a number instead")
        else:
            value = float(thr)
        out[name] = value
    return out


def test_errors(cfg: LearnConfig, potential_path: Path, tensor_path: Path | None
                ) -> dict[str, float]:
    """RMSE and +-1 sigma coverage of both models on the independent test set."""
    if cfg.test is None:
        return {}
    from molmag.training.run import evaluate

    out: dict[str, float] = {}
    ev = evaluate(potential_path, cfg.test.dataset, cfg.test.selection)["metrics"]["all"]
    out["forces_rmse"] = ev["forces_eV_per_A"]["rmse"]
    out["energy_rmse_meV_atom"] = ev["energy_meV_per_atom"]["rmse"]
    cal = ev.get("calibration", {}).get("forces", {})
    if cal:
        out["forces_coverage_1sigma"] = cal.get("coverage_1sigma")
    if tensor_path is not None:
        ev = evaluate(tensor_path, cfg.test.dataset, cfg.test.selection)["metrics"]["all"]
        out["D_ij_rmse"], out["D_rmse"] = ev["D_ij"]["rmse"], ev["D"]["rmse"]
        cal = ev.get("calibration", {}).get("zfs_D", {})
        if cal:
            out["D_coverage_1sigma"] = cal.get("coverage_1sigma")
    return out


def _md_round(cfg: LearnConfig, start: Atoms, pot_path: Path, ten_path: Path | None,
              folder: Path, log: Log) -> tuple[list, list[Atoms]]:
    from ase.io import read

    from molmag.dynamics.frame_tensors import TensorSource
    from molmag.dynamics.md_runs import use_lammps
    from molmag.models.calculator import ModelCalculator
    from molmag.models.committee import load_model

    pot = ModelCalculator(pot_path)
    ten = TensorSource(model=load_model(ten_path), label=str(ten_path)) if ten_path else None
    n_steps = max(1, int(round(cfg.md.time_ps * 1000 / cfg.md.timestep_fs)))
    n_steps = -(-n_steps // cfg.md.stride) * cfg.md.stride     # whole strides
    every = max(cfg.md.stride, (1000 // cfg.md.stride) * cfg.md.stride)
    results: list = []
    frames: list[Atoms] = []
    for t, k in ((t, k) for t in cfg.md.temperatures for k in range(cfg.md.trajectories)):
        s = MDSettings(temperature_K=t, n_steps=n_steps, timestep_fs=cfg.md.timestep_fs,
                       friction_per_fs=cfg.md.friction_per_fs, stride=cfg.md.stride,
                       checkpoint_every=every, seed=cfg.md.seed, trajectory=k)
        kw: dict[str, Any] = dict(tensor=ten, potential_label=str(pot_path),
                  tensor_label=str(ten_path) if ten_path else None)
        if use_lammps(cfg.md.engine, pot):
            from molmag.dynamics.md_lammps import run_md_lammps

            r = run_md_lammps(start, pot.model, s, folder / f"T{t:g}K_run{k}", **kw)
        else:
            r = run_md(start, pot, s, folder / f"T{t:g}K_run{k}", **kw)
        name = f"{t:g} K" + (f" run {k}" if cfg.md.trajectories > 1 else "")
        log(f"  MD {name}: {r.status}, {r.n_frames} frames, {r.ns_per_day:.3g} ns/day"
            + (f" ({r.stop_reason})" if r.stop_reason else ""))
        run_frames = read(r.trajectory, ":") if r.n_frames else []
        for a in run_frames:
            a.info["_stopped"] = False
        if r.status == "stopped":  # where the potential failed: worth labelling
            for a in run_frames[-3:]:
                a.info["_stopped"] = True
        results.append(r)
        frames += run_frames
    return results, frames


# -- the loop ---------------------------------------------------------------------------------
def _labelled_frames(dataset: str) -> list[Atoms]:
    from molmag.io.dataset import Dataset

    if "://" not in dataset and not Path(dataset).exists():
        return []
    return [r.atoms for r in Dataset(dataset).select()]


def _state(path: Path, cfg: LearnConfig) -> dict[str, Any]:
    if path.is_file():
        st = json.loads(path.read_text())
        if st.get("dataset") != cfg.dataset:
            raise ValueError(f"{path}: this learning run writes to {st.get('dataset')}, not "
                             f"{cfg.dataset}; use another output")
        return st
    return {"format": "molmag-learn/1", "dataset": cfg.dataset, "rounds": [],
            "initial_labels": 0, "status": "running", "stop_reason": None}


def merge_picks(first: list[int], picked: list[int], stopped: list[int], n: int) -> list[int]:
    """A round's batch of at most ``n`` frame indices: ``first`` (frames taken before the
    farthest-point picks), then the ``picked`` ones not among them, then frames of
    ``stopped`` (the last stored frames before a run stopped) where room is left."""
    out = list(first[:n])
    out += [i for i in picked if i not in out][:max(0, n - len(out))]
    out += [i for i in stopped if i not in out][:max(0, n - len(out))]
    return out


def _select_round(cfg: LearnConfig, frames: list[Atoms], pot_path: Path,
                  ten_path: Path | None, budget_left: int, folder: Path) -> dict[str, Any]:
    """The round's selection (stored in ``selection.json``, so a resumed round labels the
    same frames)."""
    from molmag.dynamics.active_learning import select_frames, spreads
    from molmag.models.committee import load_model

    done = folder / "selection.json"
    if done.is_file():
        return json.loads(done.read_text())
    pot = load_model(pot_path)
    ten = load_model(ten_path) if ten_path else None
    thr = thresholds(cfg, pot, ten)
    n = min(cfg.select.batch, budget_left)
    stopped = [i for i, a in enumerate(frames) if a.info.get("_stopped")]
    first = stopped[:n] if cfg.select.stopped_first else []
    # farthest-point picks keep away from the labelled rows and from the frames taken first
    sel = select_frames(frames, thr, n - len(first),
                        labelled=_labelled_frames(cfg.dataset) + [frames[i] for i in first])
    picked = merge_picks(first, sel.picked, stopped, n)
    forced = [i for i in stopped if i not in sel.picked]
    sp = spreads(frames)
    out = {"n_frames": len(frames), "thresholds": sel.thresholds, "above": sel.above,
           "candidates": len(set(sel.candidates) | set(forced)), "picked": picked,
           "max_spread": sel.max_spread,
           "mean_spread": {k: float(np.nanmean(v)) for k, v in sp.items()}}
    write_json_atomic(done, out)
    return out


def _reopen(st: dict[str, Any], cfg: LearnConfig, used: int, out: Path, log: Log) -> bool:
    """A run stopped by ``max_rounds`` or the label budget continues when the configuration
    now allows more: its last round (which could pick nothing) is selected again with the new
    limits (its models and MD are kept).  A converged run stays converged."""
    if st.get("status") != "stopped" or not st["rounds"]:
        return False
    reason = str(st.get("stop_reason") or "")
    more_rounds = reason.startswith("max_rounds") and cfg.max_rounds > len(st["rounds"])
    more_labels = reason.startswith("label budget") and cfg.budget > used
    if not (more_rounds or more_labels):
        return False
    last = st["rounds"].pop()
    (out / f"round{last['round']}" / "selection.json").unlink(missing_ok=True)
    log(f"continuing a stopped run ({reason}) with max_rounds {cfg.max_rounds}, budget "
        f"{cfg.budget}: round {last['round']} selects again")
    st.update(status="running", stop_reason=None)
    return True


def run_learning(cfg: LearnConfig, log: Log | None = None,
                 start: Atoms | None = None) -> dict[str, Any]:
    """Run (or continue) the active-learning loop of ``cfg``; returns the state
    (``learn.json``): one entry per round with the labels used, the MD outcome, the spreads,
    the candidates, and the test-set errors when ``test`` is given."""
    log = log or (lambda s: None)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "learn.json"
    st = _state(state_path, cfg)
    start = start if start is not None else load_structure(cfg.structure)
    if st["initial_labels"] == 0:
        if cfg.initial.kind == "none":
            st["initial_labels"] = len(_labelled_frames(cfg.dataset))
            if not st["initial_labels"]:
                raise ValueError(f"initial.kind none, but {cfg.dataset} has no rows")
        else:
            frames = initial_frames(cfg, start)
            log(f"round 0: labelling {len(frames)} initial structures ({cfg.initial.kind})")
            _label_frames(cfg, frames, out / "initial.extxyz", "al-initial", start)
            st["initial_labels"] = len(_labelled_frames(cfg.dataset))
        write_json_atomic(state_path, st)
    used = sum(len(r["picked"]) for r in st["rounds"])
    if _reopen(st, cfg, used, out, log):
        write_json_atomic(state_path, st)
    while st["status"] == "running":
        r = len(st["rounds"])
        folder = out / f"round{r}"
        log(f"round {r}: training on {len(_labelled_frames(cfg.dataset))} labelled structures")
        pot_path = _train(cfg, cfg.potential, "potential", folder / "potential", log,
                          cfg.potential_selection)
        ten_path = (_train(cfg, cfg.tensor, "tensor", folder / "tensor", log,
                           cfg.tensor_selection) if cfg.tensor is not None else None)
        st["final"] = {"potential": str(pot_path),
                       "tensor": str(ten_path) if ten_path else None}
        errs = test_errors(cfg, pot_path, ten_path)
        results, frames = _md_round(cfg, start, pot_path, ten_path, folder / "md", log)
        left = cfg.budget - used if r + 1 < cfg.max_rounds else 0
        sel = _select_round(cfg, frames, pot_path, ten_path, left, folder)
        row = {"round": r, "n_labels": st["initial_labels"] + used, "test": errs,
               "md": [{"temperature_K": x.sidecar.get("temperature_K"),
                       "trajectory": x.sidecar.get("trajectory", 0), "status": x.status,
                       "stop_reason": x.stop_reason, "n_frames": x.n_frames,
                       "ns_per_day": x.ns_per_day} for x in results],
               **{k: sel[k] for k in ("n_frames", "thresholds", "above", "candidates",
                                      "max_spread", "mean_spread", "picked")}}
        log(f"round {r}: {sel['candidates']} of {sel['n_frames']} frames above the thresholds "
            + ", ".join(f"{k} {v:.3g}" for k, v in sel["thresholds"].items())
            + (f"; test {_fmt(errs)}" if errs else ""))
        st["rounds"].append(row)
        if all(x.status == "finished" for x in results) and sel["candidates"] == 0:
            st.update(status="converged", stop_reason=f"round {r}: every MD run stayed "
                      "below the thresholds")
        elif r + 1 >= cfg.max_rounds:
            st.update(status="stopped", stop_reason=f"max_rounds ({cfg.max_rounds}) reached")
        elif not sel["picked"]:
            st.update(status="stopped", stop_reason=f"label budget ({cfg.budget}) spent")
        else:
            picked = [frames[i] for i in sel["picked"]]
            log(f"round {r}: labelling {len(picked)} frames")
            _label_frames(cfg, picked, folder / "selected.extxyz", f"al-round{r}", start)
            used += len(picked)
        write_json_atomic(state_path, st)
    write_json_atomic(state_path, st)
    return st


def _fmt(errs: dict[str, float]) -> str:
    names = {"forces_rmse": "F RMSE {:.3f} eV/Å", "D_ij_rmse": "D_ij RMSE {:.2f} cm-1"}
    return ", ".join(f.format(errs[k]) for k, f in names.items() if errs.get(k) is not None)


def plot_rounds(state: dict[str, Any], path: str | Path) -> Path:
    """Spreads, candidates and test errors against the number of labels, per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = state["rounds"]
    n = [r["n_labels"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for key, unit in (("forces", "eV/Å"), ("zfs_D", "cm-1")):
        y = [r["max_spread"].get(key) for r in rows]
        if any(v is not None for v in y):
            ax[0].semilogy(n, y, "o-", label=f"max sigma {key} ({unit})")
    ax[0].set_xlabel("labelled structures")
    ax[0].set_ylabel("largest calibrated spread in the MD run")
    ax[0].legend()
    for key, label in (("forces_rmse", "force RMSE (eV/Å)"), ("D_ij_rmse", "D_ij RMSE (cm-1)")):
        y = [r["test"].get(key) for r in rows]
        if any(v is not None for v in y):
            ax[1].semilogy(n, y, "s-", label=label)
    ax[1].set_xlabel("labelled structures")
    ax[1].set_ylabel("test-set error")
    if ax[1].lines:
        ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


__all__ = ["LearnConfig", "load_learn_config", "run_learning", "thresholds", "initial_frames",
           "merge_picks", "test_errors", "plot_rounds"]
