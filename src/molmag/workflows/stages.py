"""Resumable, stage-by-stage campaigns.

A campaign is an ordered list of :class:`Stage` run in one output folder.  The folder's
``campaign.json`` records, per stage, its status (``done`` or ``failed``), wall time, the
summary it returned (numbers the report uses) and, for a failure, the reason.  Running the
campaign again skips the stages already done (their outputs are on disk); a stage that was
interrupted or failed runs again, and most stages resume their own work inside (labelling
and training skip what is already computed, PSO and scans restart from checkpoints).
Nothing an earlier stage produced is deleted by a later failure.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from molmag.io.atomic import write_text_atomic
from molmag.io.jsonable import json_default
from molmag.io.provenance import now_iso
from molmag.labelling.pipeline import Reporter
from molmag.progress import ProgressFn

STATE_FILE = "campaign.json"


class StageError(RuntimeError):
    """A stage failed; ``stage`` names it, the message says why."""

    def __init__(self, stage: str, reason: str):
        super().__init__(f"stage {stage!r} failed: {reason}")
        self.stage = stage
        self.reason = reason


@dataclass
class Stage:
    """``func(context) -> dict`` (a JSON-ready summary); ``title`` is what the progress
    shows."""

    name: str
    title: str
    func: Callable[["Context"], dict]


@dataclass
class Context:
    """What every stage sees: the output folder, the settings, the summaries of the stages
    before it (``results[name]``) and a ``log`` callback."""

    out: Path
    settings: Any
    results: dict[str, dict] = field(default_factory=dict)
    log: Callable[[str], None] = lambda s: None
    progress: ProgressFn | None = None

    def path(self, *parts: str) -> Path:
        p = self.out.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


class CampaignState:
    """``campaign.json`` of an output folder (written atomically after every change)."""

    def __init__(self, out: Path, name: str, mode: str):
        self.path = Path(out) / STATE_FILE
        self.doc: dict = {"campaign": name, "mode": mode, "stages": {}, "created": now_iso()}
        if self.path.exists():
            try:
                old = json.loads(self.path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{self.path}: not a campaign state file ({exc}); remove it "
                                 "to start again") from None
            if old.get("campaign") != name:
                raise ValueError(f"{out} holds the {old.get('campaign')!r} campaign, not "
                                 f"{name!r}: choose another --out")
            if old.get("mode") != mode:
                raise ValueError(f"{out} holds a {old.get('mode')} run of this campaign; this "
                                 f"is a {mode} run: choose another --out (or --restart)")
            self.doc = old

    def stage(self, name: str) -> dict:
        return self.doc["stages"].get(name, {})

    def done(self, name: str) -> bool:
        return self.stage(name).get("status") == "done"

    def set(self, name: str, **entry) -> None:
        self.doc["stages"][name] = {**self.stage(name), **entry}
        self.save()

    def save(self) -> None:
        write_text_atomic(self.path, json.dumps(self.doc, indent=1, default=json_default))

    def summaries(self) -> dict[str, dict]:
        return {k: v.get("summary", {}) for k, v in self.doc["stages"].items()
                if v.get("status") == "done"}

    def seconds(self) -> dict[str, float]:
        return {k: float(v.get("seconds", 0.0)) for k, v in self.doc["stages"].items()}




class StageReporter:
    """Progress callbacks of :func:`run_stages` (the CLI prints them; default: nothing)."""

    def start(self, k: int, n: int, stage: Stage) -> None: ...
    def skip(self, k: int, n: int, stage: Stage, entry: dict) -> None: ...
    def finish(self, k: int, n: int, stage: Stage, entry: dict) -> None: ...
    def fail(self, k: int, n: int, stage: Stage, entry: dict) -> None: ...


class LabelProgress(Reporter):
    """A :class:`molmag.labelling.pipeline.Reporter` for campaign logs: one line at the start
    and at every quarter of a labelling stage, each prefixed with ``what``; build failures are
    left to the stage's own summary when ``quiet_failures``."""

    def __init__(self, log: Callable[[str], None], what: str = "",
                 quiet_failures: bool = False):
        self.log, self.what, self.quiet_failures = log, what, quiet_failures
        self.total = self.done = 0
        self.next = 0.0

    def _line(self, text: str) -> None:
        self.log(f"{self.what} {text}" if self.what else text)

    def start(self, stage: str, total: int, done: int = 0) -> None:
        self.total, self.done, self.next = total, done, 0.25
        self._line(f"{stage}: {done}/{total}")

    def advance(self, stage: str, n: int = 1) -> None:
        self.done += n
        if self.total and self.done / self.total >= self.next:
            self._line(f"{stage}: {self.done}/{self.total}")
            self.next += 0.25

    def message(self, text: str) -> None:
        if not (self.quiet_failures and text.startswith("build failed")):
            self.log(text)


def run_stages(stages: list[Stage], ctx: Context, state: CampaignState,
               reporter: StageReporter | None = None, only: str | None = None) -> dict:
    """Run ``stages`` in order, skipping those ``state`` has as done.  Returns the summaries
    of all stages.  A failing stage is recorded (status, reason, traceback tail) and raised
    as :class:`StageError`; the stages after it do not run.  ``only``: stop after this
    stage."""
    reporter = reporter or StageReporter()
    names = [s.name for s in stages]
    if only is not None and only not in names:
        raise ValueError(f"no stage {only!r}; the stages are {', '.join(names)}")
    n = len(stages)
    ctx.results = state.summaries()
    for k, stage in enumerate(stages, 1):
        if state.done(stage.name):
            reporter.skip(k, n, stage, state.stage(stage.name))
        else:
            reporter.start(k, n, stage)
            state.set(stage.name, status="running", started=now_iso())
            t0 = time.perf_counter()
            try:
                summary = stage.func(ctx) or {}
            except KeyboardInterrupt:
                state.set(stage.name, status="interrupted",
                          seconds=time.perf_counter() - t0)
                raise
            except Exception as exc:  # recorded, then raised with the stage's name
                reason = f"{type(exc).__name__}: {exc}".strip()
                tb = traceback.format_exc().strip().splitlines()[-12:]
                entry = {"status": "failed", "reason": reason, "traceback": tb,
                         "seconds": time.perf_counter() - t0, "finished": now_iso()}
                state.set(stage.name, **entry)
                reporter.fail(k, n, stage, state.stage(stage.name))
                raise StageError(stage.name, reason) from exc
            entry = {"status": "done", "seconds": time.perf_counter() - t0,
                     "finished": now_iso(), "summary": summary}
            entry.pop("reason", None)
            state.set(stage.name, **entry)
            state.doc["stages"][stage.name].pop("reason", None)
            state.doc["stages"][stage.name].pop("traceback", None)
            state.save()
            ctx.results[stage.name] = json.loads(json.dumps(summary, default=json_default))
            reporter.finish(k, n, stage, state.stage(stage.name))
        if only is not None and stage.name == only:
            break
    return ctx.results


__all__ = ["LabelProgress", "run_campaign", "Stage", "Context", "CampaignState", "StageError",
           "StageReporter", "run_stages", "STATE_FILE"]


def run_campaign(name: str, stages: list[Stage], out: str | Path, settings, *, log=None,
                 reporter: StageReporter | None = None,
                 progress: ProgressFn | None = None,
                 only: str | None = None) -> dict:
    """Run (or resume) the campaign ``name`` of ``stages`` in ``out`` with ``settings`` (a
    dataclass with ``mode`` and ``as_dict()``); the report stage, cheap and reading
    everything, is always run afresh.  Returns the stage summaries."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = CampaignState(out, name, settings.mode)
    new = settings.as_dict()
    old = state.doc.get("settings") or {}
    # settings whose change would mix two different runs in one folder (the stages already
    # done would be kept and the rest run on other inputs): refused, not resumed
    for key in getattr(settings, "same_on_resume", ()):
        if key in old and old[key] != new.get(key):
            raise ValueError(f"{out} holds a run with {key} = {old[key]!r}; this run has "
                             f"{key} = {new.get(key)!r}: choose another --out")
    state.doc["settings"] = new
    state.save()
    ctx = Context(out=out, settings=settings, log=log or (lambda s: None), progress=progress)
    if state.done("report"):
        state.doc["stages"].pop("report")
    return run_stages(stages, ctx, state, reporter=reporter, only=only)

