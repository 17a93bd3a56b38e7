"""Outputs of ``molmag ga``: ``ga.json``, the figures and ``report.md`` / ``report.html``.

``ga.json``: the settings, the objective, per arm (``ga``, ``random``, ``vae``) the history
(per generation: evaluations used, best value, population median and best, failures, and for
the GA the pre-screen's precision/recall), the best-so-far curve against evaluations, the
ten best individuals and the failures with their reasons; and the comparison at equal
budgets (best of each arm after n evaluations, evaluations each arm needs to reach random
search's best).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from .loop import SearchResult, best_curve, evaluations_to_reach

LABELS = {"ga": "GA", "random": "random search", "vae": "VAE (LP sampling)"}
COLOURS = {"ga": "C0", "random": "C7", "vae": "C3"}


def summarize(res: SearchResult, cfg) -> dict:
    obj = res.objective
    arms = {}
    curves = {}
    for name, arm in res.arms.items():
        curve = best_curve(arm, res.outcomes, obj)
        curves[name] = curve
        ranked = sorted((k for k in dict.fromkeys(arm.evaluated)
                         if res.outcomes.get(k, {}).get("value") is not None),
                        key=lambda k: -obj.fitness(res.outcomes[k]["value"]))
        arms[name] = {
            "evaluations": len(arm.evaluated), "generations": arm.generation,
            "note": arm.note, "history": arm.history, "best_curve": curve,
            "best": [{"individual": k, obj.name: res.outcomes[k]["value"]} for k in ranked[:10]],
            "failures": {k: res.outcomes[k]["reason"] for k in arm.evaluated
                         if res.outcomes.get(k, {}).get("value") is None}}
    cmp: dict = {}
    if "random" in curves and curves["random"]:
        target = curves["random"][-1]
        cmp = {"budget": len(curves["random"]), "random_best": target,
               "evaluations_to_reach_random_best": {
                   n: evaluations_to_reach(c, target, obj) for n, c in curves.items()},
               "best_at_budget": {n: (c[-1] if c else None) for n, c in curves.items()}}
    return {"objective": {"metal": obj.metal, "name": obj.name, "unit": obj.unit,
                          "title": obj.title, "sense": "max" if obj.sense > 0 else "min",
                          "builder": obj.builder, "relaxed": obj.relax},
            "settings": cfg.model_dump(mode="json"), "dataset": "evaluations.db",
            "seconds": res.seconds, "arms": arms, "comparison": cmp,
            "evaluations_computed": len(res.outcomes)}


def plot_progress(summary: dict, path: Path) -> Path:
    """GA best and population median against evaluations."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obj = summary["objective"]
    h = summary["arms"]["ga"]["history"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = [r["evaluations"] for r in h]
    ax.plot(x, [np.nan if r["best"] is None else r["best"] for r in h], "o-", label="best")
    ax.plot(x, [np.nan if r["population_median"] is None else r["population_median"] for r in h],
            "s--", label="population median")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"{obj['name']} ({obj['unit']})")
    ax.set_title(f"GA: {obj['title']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_comparison(summary: dict, path: Path) -> Path:
    """Best-so-far against evaluations: GA, random search, VAE LP sampling."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obj = summary["objective"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, arm in summary["arms"].items():
        c = [np.nan if v is None else v for v in arm["best_curve"]]
        ax.step(np.arange(1, len(c) + 1), c, where="post", color=COLOURS.get(name),
                label=LABELS.get(name, name))
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best {obj['name']} ({obj['unit']})")
    ax.set_title(f"{obj['title']}: GA vs random vs VAE", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _f(v, nd=1) -> str:
    if v is None:
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def _diversity(d: dict | None) -> str:
    """The diversity settings in words."""
    if not d:
        return "no diversity mechanism"
    parts = [f"niching {d['niching']}" + (
        f" (radius {d['niche_radius']} on {d['niche_on']} fingerprints, "
        f"{d['niche_capacity']} per niche)" if d["niching"] == "clearing" else
        f" ({d['niche_on']} fingerprints)" if d["niching"] == "crowding" else ""),
        f"{100 * d['immigrants']:.0f} % immigrants",
        f"random-ligand mutation {d['random_ligand']}"
        + (" (adaptive)" if d["adaptive"] else "")]
    if d["restart_after"]:
        parts.append(f"restart after {d['restart_after']} generations without progress")
    return ", ".join(parts)


def markdown(summary: dict, figures: dict[str, str]) -> str:
    obj = summary["objective"]
    s = summary["settings"]
    u = obj["unit"]
    sense = 'maximised' if obj['sense'] == 'max' else 'minimised'
    relaxed = 'GFN2-xTB relaxed' if obj['relaxed'] else 'unrelaxed'
    lines = [f"# GA screening: {obj['title']}", "",
             f"Objective {obj['name']} ({u}, {sense}"
             f"), builder `{obj['builder']}`, {relaxed}"
             f"; {s['genes']} genes, population {s['population']}, {s['offspring']} children "
             f"evaluated per generation, budget {s['budget']} evaluations per arm; pre-screen "
             f"{'on' if s['prescreen']['enabled'] else 'off'}; {_diversity(s.get('diversity'))}"
             f". {summary['evaluations_computed']} "
             f"distinct individuals evaluated in {summary['seconds']:.0f} s.", ""]
    cmp = summary["comparison"]
    lines += ["## GA against random search and the VAE", "",
              "| arm | evaluations | best | evaluations to reach random's best |",
              "|---|---|---|---|"]
    for name, arm in summary["arms"].items():
        reach = cmp.get("evaluations_to_reach_random_best", {}).get(name) if cmp else None
        lines.append(f"| {LABELS.get(name, name)} | {arm['evaluations']} | "
                     f"{_f(arm['best_curve'][-1] if arm['best_curve'] else None)} | "
                     f"{_f(reach)} |")
    vae = (s.get("vae") or {}).get("model")
    if "vae" in summary["arms"]:
        lines += ["", "VAE: " + (f"LP sampling of `{vae}`" if vae else
                                 "LP sampling of a VAE trained on the library (`vae.npz`)")
                  + f" around the {(s.get('vae') or {}).get('top_seeds', '')} best individuals "
                  "so far, sigmas " + ", ".join(f"{x:g}" for x in (s.get("vae") or {}).get(
                      "sigmas", [])) + "."]
    lines.append("")
    for key, cap in (("comparison", "Best so far against evaluations."),
                     ("progress", "GA: best and population median per generation.")):
        if key in figures:
            lines += [f"![{cap}]({figures[key]})", "", f"*{cap}*", ""]
    lines += ["## GA generations", "",
              "Diversity: mean Tanimoto distance of the population (Morgan fingerprints, sites "
              "summed); duplicates: share of the population whose value repeats another's; "
              "immigrants: random individuals evaluated in the generation (all of them at a "
              "restart, marked R).", "",
              "| generation | evaluations | best | population median | diversity | duplicates "
              "| bred | immigrants | pre-screen precision | recall |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["arms"]["ga"]["history"]:
        p = r.get("prescreen") or {}
        lines.append(f"| {r['generation']} | {r['evaluations']} | {_f(r['best'])} | "
                     f"{_f(r['population_median'])} | {_f(r.get('diversity'), 2)} | "
                     f"{_f(r.get('duplicate_share'), 2)} | {_f(r.get('bred'))} | "
                     f"{_f(r.get('immigrants'))}{' R' if r.get('restart') else ''} | "
                     f"{_f(p.get('precision'), 2)} | {_f(p.get('recall'), 2)} |")
    lines += ["", "## Best individuals (GA)", "", f"| individual | {obj['name']} ({u}) |",
              "|---|---|"]
    for b in summary["arms"]["ga"]["best"]:
        lines.append(f"| `{b['individual']}` | {_f(b[obj['name']])} |")
    nfail = {n: len(a["failures"]) for n, a in summary["arms"].items()}
    lines += ["", "Failures (recorded with their reason, never retried): "
              + ", ".join(f"{LABELS.get(n, n)} {v}" for n, v in nfail.items()) + ".", ""]
    for n, a in summary["arms"].items():
        if a["note"]:
            lines.append(f"- {LABELS.get(n, n)} stopped early: {a['note']}.")
    return "\n".join(lines) + "\n"


def to_html(md: str, base: Path) -> str:
    """A self-contained HTML page of the report's Markdown (tables, figures embedded)."""
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>GA report</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
           "</style></head><body>"]
    rows: list[list[str]] = []

    def flush():
        if rows:
            out.append("<table>" + "".join(
                "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}"
                                 f"</{'th' if i == 0 else 'td'}>" for c in r) + "</tr>"
                for i, r in enumerate(rows)) + "</table>")
            rows.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                rows.append(cells)
            continue
        flush()
        if line.startswith("#"):
            n = len(line) - len(line.lstrip("#"))
            out.append(f"<h{n}>{html.escape(line[n:].strip())}</h{n}>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1:line.rindex(")")]
            data = base64.b64encode((base / src).read_bytes()).decode()
            out.append(f"<img src='data:image/png;base64,{data}'>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_outputs(res: SearchResult, cfg) -> dict:
    """Write ``ga.json``, the PNGs and the reports into ``res.out``; returns the summary."""
    from molmag.io.atomic import write_text_atomic

    out = res.out
    summary = summarize(res, cfg)
    (out / "figures").mkdir(exist_ok=True)
    figs = {"progress": "figures/ga_progress.png", "comparison": "figures/ga_vs_random_vae.png"}
    plot_progress(summary, out / figs["progress"])
    plot_comparison(summary, out / figs["comparison"])
    summary["figures"] = figs
    write_text_atomic(out / "ga.json", json.dumps(summary, indent=1) + "\n")
    md = markdown(summary, figs)
    write_text_atomic(out / "report.md", md)
    write_text_atomic(out / "report.html", to_html(md, out))
    return summary


__all__ = ["summarize", "plot_progress", "plot_comparison", "markdown", "to_html",
           "write_outputs"]
