"""The report of ``molmag campaign dy-ligands`` (Markdown + self-contained HTML)."""

from __future__ import annotations

from pathlib import Path

import molmag
from molmag.workflows.dy_ligands import PAPER
from molmag.workflows.report import Report
from molmag.workflows.stages import Context


def _f(x, fmt: str = ".0f"):
    return "–" if x is None else format(x, fmt)


def r2_interval(sd: dict, key: str = "r2_dE01_interval") -> str:
    """'(95 % bootstrap interval a to b; n pairs from k seeds)' for a seeds-stage result;
    says plainly when there are too few pairs or seeds for an interval."""
    ci = sd.get(key)
    if not ci:
        return f"({sd.get('n_labelled', 0)} pairs: too few for an interval)"
    pairs = f"{ci['n_pairs']} pairs from {ci['n_groups']} seeds"
    if ci.get("low") is None:
        return f"({pairs}: too few for a bootstrap interval)"
    # R^2 has no lower bound: a resample of a few pairs can reach -1000, which says only
    # "worse than the mean"; below -1 is shown as such
    low = "below −1" if ci["low"] < -1 else f"{ci['low']:.2f}"
    return (f"({100 * ci['level']:.0f} % bootstrap interval {low} to {ci['high']:.2f}, "
            f"seeds resampled; {pairs})")


def shift_interval(sh: dict) -> str:
    """' (95 % bootstrap interval a to b)' of a repopulation shift, or '' without one (older
    campaigns, or fewer than 2 values in a set)."""
    if sh.get("mean_shift_low") is None:
        return ""
    return (f" ({100 * sh.get('level', 0.95):.0f} % bootstrap interval "
            f"{sh['mean_shift_low']:+.0f} to {sh['mean_shift_high']:+.0f} cm⁻¹)")


def per_seed_rows(per_seed: list[dict], first: str) -> list[list]:
    """Rows of the per-seed validity/uniqueness/novelty table (rates of the draws)."""
    rows = []
    for r in per_seed:
        d = r.get("draws")
        if not d:
            continue
        rows.append([r.get(first, "–"), f"`{r['seed']}`", ", ".join(f"{x:g}" for x in r["sigmas"]),
                     d, f"{100 * r['n_valid'] / d:.1f} %",
                     f"{r['n_unique']} ({100 * r['n_unique'] / max(r['n_valid'], 1):.1f} %)",
                     r["n_novel"], r["n_novel_sane"]])
    return rows


PER_SEED_HEADER = ["σ", "draws", "valid", "unique (of valid)", "novel ligands",
                   "novel and sane"]


def findings(res: dict) -> list[str]:
    """The headline numbers: order of the latent space, seed-bin R^2, repopulation shift."""
    out = []
    mp = res.get("map") or {}
    order = mp.get("neighbour_correlation") or {}
    if "dE01" in order:
        out.append(f"**Ordered latent space**: trained on proxies only, the latent PCA orders "
                   f"ΔE01 with a neighbour correlation r = {order['dE01']:.2f} (donor charge "
                   f"{_f(order.get('donor_charge'), '.2f')}, donor Z "
                   f"{_f(order.get('donor_Z'), '.2f')}; 0 = no order, 1 = smooth).")
    sd = res.get("seeds") or {}
    if sd.get("r2_dE01") is not None:
        out.append(f"**Seed bins**: {sd['n_labelled']} generated ligands follow their seeds' "
                   f"ΔE01 with R² = {sd['r2_dE01']:.2f} {r2_interval(sd)} (ΔE07: "
                   f"{_f(sd.get('r2_dE07'), '.2f')}; the paper's GAUSS-II on CASSCF: "
                   f"{PAPER['seed_sample_r2']}).")
    rp = res.get("repopulate") or {}
    if rp.get("generated", {}).get("n"):
        g, r, sh = rp["generated"], rp["random"], rp["shift_vs_random"]
        out.append(f"**Repopulation**: {g['n']} new ligands generated around the top "
                   f"{len(rp['top_seeds'])} seeds have mean ΔE01 = {g['mean']:.0f} cm⁻¹ against "
                   f"{r['mean']:.0f} cm⁻¹ for the random labelled subset: a shift of "
                   f"{sh['mean_shift']:+.0f} cm⁻¹{shift_interval(sh)} (median "
                   f"{sh['median_shift']:+.0f}); a "
                   f"generated ligand beats a random one with probability "
                   f"{sh['p_greater']:.2f}. The seeds: mean {rp['seeds']['mean']:.0f} cm⁻¹.")
    if rp.get("unique_new") is not None:
        out.append(f"**Sampling**: {rp['unique_new']} unique new ligands from "
                   f"{len(rp['top_seeds'])} × {rp['n_draws_per_seed']} LP samples at σ = "
                   f"{rp['sigma']:g} in {rp['sampling_seconds']:.0f} s "
                   f"({rp['unique_new_per_minute']:.0f} per minute).")
    mg = res.get("magnetism") or {}
    if mg.get("U_eff_cm-1") is not None:
        out.append(f"**Magnetism of the best complex** (L = `{mg['ligand']}`, {mg['source']}): "
                   f"one-phonon U_eff = {mg['U_eff_cm-1']:.0f} cm⁻¹ against ΔE01 = "
                   f"{mg['gap_cm-1']:.0f} cm⁻¹, τ₀ = {mg['tau0_s']:.1e} s; χT(300 K) = "
                   f"{mg['chi_T_300K']:.2f} cm³ K mol⁻¹.")
    return out


def write_report(ctx: Context) -> tuple[Path, Path]:
    res = ctx.results
    s = ctx.settings
    rep = Report(f"Dy(H2O)5L2 ligand design campaign ({s.mode})")
    rep.text(f"molmag {molmag.__version__}. Khatibi, Mariano, Frangoulis & Lunghi 2026 "
             "(GAUSS-II): a SMILES VAE trained semi-supervised on cheap proxies of the free "
             "ligand orders its latent space by the Kramers gaps of Dy(H2O)5L2, which then "
             "guides the generation of new axial ligands. Here the proxies are GFN2-xTB/D4 "
             "properties of the donor atom (not LoProp/DFT) and the gaps come from molmag's "
             "crystal-field engine on GFN2-xTB-relaxed complexes (not DFT + CASSCF). Energies "
             "in cm⁻¹.")
    rep.heading("Findings")
    rep.bullets(findings(res) or ["(the campaign has not finished)"])

    c = res.get("corpus")
    if c:
        rep.heading("Corpus")
        rep.text(f"{c['n']} donor-first ligands with at most {c['max_heavy_atoms']} heavy atoms "
                 f"({c['source']} corpus; {c['neutral']} neutral, {c['anions']} anions): "
                 f"{c['n_train']} for training, {c['n_val']} held out.")
        rep.table(["donor kind", "ligands"], list(c["kinds"].items())[:12],
                  caption="the most common donor kinds")
    p = res.get("proxies")
    t = res.get("train")
    if p and t:
        rep.heading("GAUSS-II VAE")
        if t.get("pretrained"):
            lab = t.get("labels") or {}
            from molmag.generative.pretrained import MODELS

            shipped = t["pretrained"] in MODELS
            rep.text((f"The pretrained model `{t['pretrained']}` shipped with molmag ("
                      if shipped else f"The model file `{t['pretrained']}` (")
                     + ("SELFIES, " if t.get("representation") == "selfies" else "")
                     + f"autoregressive GRU decoder; {t.get('n_train', '?')} "
                     + ("QM9 " if shipped else "") + "ligands, "
                     f"{t.get('epochs_done', t.get('epochs'))} epochs, "
                     f"{lab.get('labelled', t.get('labelled', '?'))} ligands with GFN2-xTB/D4 "
                     "proxies for its head): no proxies computed and no training in this run.")
        else:
            rep.text(f"Proxies computed for {p['labelled']} of {p['asked']} training ligands "
                     f"({p['failed']} failed) on the GFN2-xTB-relaxed free ligand; the other "
                     f"{t['n_train'] - t['labelled']} train the autoencoder only. Encoder 3 "
                     "biGRU (128, 96, 32) → 32-d latent; decoder: "
                     + ("GRU language model conditioned on z (autoregressive)"
                        if t.get("decoder", "autoregressive") == "autoregressive"
                        else "2 biGRU + dense (the paper's)")
                     + "; head latent → 32 → 4; loss = reconstruction + α KL + masked MSE; "
                     "Adam 1e-3, batch 100.")
        rows = [["epochs (best)", f"{t.get('epochs')} ({t.get('best_epoch')})"
                 + ("" if t.get("converged") else ", max_epochs reached")],
                ["training time (s)", _f(t.get("train_seconds"))],
                ["reconstruction accuracy, validation",
                 _f(t.get("reconstruction_accuracy_val"), ".3f")],
                ["reconstruction accuracy, training",
                 _f(t.get("reconstruction_accuracy_train"), ".3f")]]
        for k, v in (t.get("head_r2_val") or t.get("head_r2_train") or {}).items():
            rows.append([f"head R² {k} ({'validation' if t.get('head_r2_val') else 'training'})",
                         _f(v, ".2f")])
        rep.table(["quantity", "value"], rows)
    g = res.get("gaps")
    if g:
        rep.heading("The labelled subset (Dy(H2O)5L2)")
        d = g["dE01"]
        rep.text(f"{g['labelled']} of {g['asked']} random training ligands assembled in both "
                 f"axial sites, relaxed with GFN2-xTB and labelled ({g['failed']} failed). "
                 f"ΔE01 = {d['mean']:.0f} ± {d['std']:.0f} cm⁻¹ (10–90 %: {d['q10']:.0f}–"
                 f"{d['q90']:.0f}); r(ΔE01, donor charge) = {_f(g['r_dE01_donor_charge'], '.2f')}.")
    mp = res.get("map")
    if mp:
        rep.heading("The latent space")
        ev = mp["explained_variance_ratio"]
        rep.text(f"PCA of the latent means of {mp['n']} ligands (PC1 {100 * ev[0]:.0f} %, PC2 "
                 f"{100 * ev[1]:.0f} % of the variance). Order of a map: Pearson r between a "
                 "ligand's value and the mean of its 5 nearest neighbours in the PCA plane.")
        rep.table(["property", "order r"], [[k, _f(v, ".2f")] for k, v in
                                            mp["neighbour_correlation"].items()])
        for key, cap in (("proxies", "latent PCA coloured by the computed proxies (Fig. 7)"),
                         ("gaps", "latent PCA coloured by ΔE01…ΔE07 of the labelled subset "
                                  "(Figs. 7i, 9)"),
                         ("predicted", "the head's predicted proxies over the whole corpus")):
            if key in mp["files"]:
                rep.figure(ctx.out / mp["files"][key], cap)
        sc = mp.get("sampling_curve")
        if sc:
            rep.text(f"Sampling curve around {sc['seed']!s}: {sc['samples']} LP samples over σ = "
                     f"0…1 in {sc['seconds']:.0f} s; unique novel rate peaks at σ = "
                     f"{sc['best_sigma']:g} ({100 * sc['best_unique_rate']:.1f} % of samples); "
                     f"{sc['unique_novel_total']} unique novel molecules in all (Fig. 2c).")
            rep.figure(ctx.out / sc["figure"], "validity, novelty and uniqueness against σ")
    sd = res.get("seeds")
    if sd:
        rep.heading("Seed bins (Fig. 8)")
        rep.text(f"{sd['n_seeds']} seeds from {s.n_bins} bins of ΔE01, up to "
                 f"{sd.get('samples_per_seed', s.samples_per_seed)} new ligands each (σ from "
                 f"{s.bin_sigmas[0]:g}); "
                 f"{sd['n_labelled']} labelled. R²(sample vs seed) ΔE01 = "
                 f"{_f(sd['r2_dE01'], '.2f')} {r2_interval(sd)}, ΔE07 = "
                 f"{_f(sd['r2_dE07'], '.2f')} {r2_interval(sd, 'r2_dE07_interval')}; Pearson r "
                 f"ΔE01 = {_f(sd['pearson_dE01'], '.2f')}. The samples of one seed share its "
                 f"value, so the interval resamples whole seeds: with few seeds it is wide, "
                 f"and an R² from a handful of pairs says little.")
        rep.figure(ctx.out / sd["figure"], "ΔE01 of generated ligands against their seeds")
        rows = per_seed_rows(sd.get("per_seed") or [], "bin")
        if rows:
            rep.table(["bin", "seed"] + PER_SEED_HEADER, rows,
                      caption="LP draws per seed: valid = RDKit reads the string; unique = "
                              "distinct valid molecules; novel = new ligands (not in the "
                              "corpus, the labelled subset or earlier seeds' samples; sampling "
                              "stops when enough are found); sane = passing the valence filter "
                              "(molmag.chem.valence)")
    rp = res.get("repopulate")
    if rp:
        rep.heading("Targeted repopulation (Fig. 10)")
        rows = [[name, v["n"], _f(v["mean"]), _f(v["median"]), _f(v["q10"]), _f(v["q90"])]
                for name, v in (("random labelled subset", rp["random"]),
                                (f"top {len(rp['top_seeds'])} seeds", rp["seeds"]),
                                ("generated", rp["generated"]))]
        rep.table(["set", "n", "mean ΔE01", "median", "10 %", "90 %"], rows,
                  caption="ΔE01 (cm⁻¹) distributions")
        sh = rp["shift_vs_random"]
        rep.text(f"Shift of the generated ligands against the random subset: mean "
                 f"{_f(sh['mean_shift'], '+.0f')} cm⁻¹{shift_interval(sh)}, median "
                 f"{_f(sh['median_shift'], '+.0f')} "
                 f"cm⁻¹, P(generated > random) = {_f(sh['p_greater'], '.2f')}. Against the "
                 f"seeds: mean {_f(rp['shift_vs_seeds']['mean_shift'], '+.0f')} cm⁻¹.")
        rep.figure(ctx.out / rp["figure"], "ΔE01: random subset, top seeds, generated ligands")
        rep.figure(ctx.out / rp["curve_figure"], "unique novel ligands against LP samples "
                   "per seed (mean and range over the top seeds)")
        rows = per_seed_rows(rp.get("per_seed") or [], "rank")
        if rows:
            rep.table(["rank", "seed"] + PER_SEED_HEADER,
                      [[k + 1] + r[1:] for k, r in enumerate(rows)],
                      caption=f"validity, uniqueness and novelty of the {rp['n_draws_per_seed']} "
                              f"LP draws around each top seed (novel = not in the training "
                              f"corpus; sane = passing the valence filter)")
        best, flagged = best_ligands(ctx, with_flagged=True)
        if best or flagged:
            rep.heading("Best generated ligands", 3)
            rep.text("Before ranking, every labelled generated ligand goes through the valence "
                     "sanity filter (molmag.chem.valence: RDKit sanitisation plus no hypervalent "
                     "S/P outside S(=O), S(=O)2 and P(=O) groups, no S/P chains, no antiaromatic "
                     "3-/4-membered rings, no charge away from the donor). Flagged ligands are "
                     f"left out of the ranking: {len(flagged)} of the {rp['labelled']} labelled "
                     f"generated ligands" + (":" if flagged else "."))
            if flagged:
                rep.table(["left out (donor first)", "ΔE01", "why"], flagged)
        if best:
            rep.table(["ligand (donor first)", "ΔE01", "ΔE07", "donor q (e)", "donor μ (e Å)",
                       "α (Å³)", "novel"], best,
                      caption="novel = not in the training corpus nor the labelled subset; "
                              "only ligands that pass the valence filter are ranked")
    from molmag.workflows.dy_magnetism import report_section

    report_section(rep, ctx)
    st = ctx.out / "campaign.json"
    if st.exists():
        import json

        secs = {k: v.get("seconds") for k, v in json.loads(st.read_text())["stages"].items()}
        rep.heading("Stage times")
        rep.table(["stage", "seconds"], [[k, _f(v)] for k, v in secs.items() if v is not None])
    return rep.write(ctx.out)


def best_ligands(ctx: Context, n: int = 10, with_flagged: bool = False):
    """The ``n`` labelled generated ligands of the repopulation with the largest ΔE01, among
    those that pass the valence sanity filter (:func:`molmag.chem.valence.valence_problems`).
    With ``with_flagged`` also the rows of the flagged ligands (ligand, ΔE01, problems) that
    were left out: returns (best rows, flagged rows)."""
    import json

    from molmag.chem.valence import valence_problems
    from molmag.generative.labels import gap_table, proxy_table

    path = ctx.out / "repopulation.json"
    if not path.exists():
        return ([], []) if with_flagged else []
    chosen = json.loads(path.read_text())["chosen"]
    gaps = gap_table(ctx.out / "complexes.db")
    prox = proxy_table(ctx.out / "proxies.db")
    ranked = sorted((g for g in chosen if g in gaps), key=lambda g: -gaps[g]["dE01"])
    problems = {g: valence_problems(g) for g in ranked}
    flagged = [[f"`{g}`", _f(gaps[g]["dE01"]), "; ".join(problems[g])]
               for g in ranked if problems[g]]
    rows = [g for g in ranked if not problems[g]][:n]
    out = []
    for g in rows:
        p = prox.get(g, {})
        out.append([f"`{g}`", _f(gaps[g]["dE01"]), _f(gaps[g]["dE07"]),
                    _f(p.get("donor_charge"), ".3f"), _f(p.get("donor_dipole"), ".3f"),
                    _f(p.get("donor_polarizability"), ".2f"), "yes"])
    return (out, flagged) if with_flagged else out


__all__ = ["write_report", "findings", "best_ligands", "r2_interval", "shift_interval",
           "per_seed_rows"]
