"""`molmag vae train|sample|evaluate|map`: the GAUSS VAE for generative ligand design."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from molmag.cli.common import console, err_console, fail, print_json, user_errors

app = typer.Typer(help="Generative ligand design: train the GAUSS VAE, sample it (the "
                  "pretrained gauss-ii-qm9 by default), evaluate it, map its latent space.",
                  no_args_is_help=True)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


@app.command("train")
def train(
    config: Path = typer.Argument(..., help="YAML settings (molmag template vae)."),
    max_epochs: Optional[int] = typer.Option(None, "--max-epochs", help="Override max_epochs."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Override output."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Train a SMILES/SELFIES VAE with a semi-supervised property head (labels computed and
    stored first, resumably); writes the model, OUTPUT-history.csv and OUTPUT-metrics.json."""
    from molmag.generative.runs import load_vae_train_config, run_vae_train

    with user_errors():
        cfg = load_vae_train_config(config, max_epochs=max_epochs,
                                    output=str(output) if output else None)
    log = (lambda s: err_console.print(f"[dim]{s}[/]", highlight=False)) if as_json else \
        (lambda s: console.print(f"[dim]{s}[/]", highlight=False))
    try:
        with user_errors():
            res = run_vae_train(cfg, log=log)
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted[/]: run the same command again to resume "
                          f"(checkpoint {cfg.output}.ckpt)")
        raise typer.Exit(130)
    m = res.metrics
    if as_json:
        print_json({"model": str(res.path), **m})
        return
    t = Table(title=f"{res.path} ({res.seconds:.0f} s)")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("training / validation ligands", f"{m['n_train']} / {m['n_val']}")
    t.add_row("labelled ligands", str(m["labelled"]))
    t.add_row("epochs (best)", f"{m['epochs']} ({m['best_epoch']})"
              + ("" if m["converged"] else ", stopped at max_epochs"))
    t.add_row("reconstruction accuracy (validation)", _fmt(m["reconstruction_accuracy_val"]))
    t.add_row("reconstruction accuracy (training)", _fmt(m["reconstruction_accuracy_train"]))
    for key, label in (("head_r2_train", "head R^2 (training)"),
                       ("head_r2_val", "head R^2 (validation)")):
        for name, v in (m.get(key) or {}).items():
            t.add_row(f"{label} {name}", _fmt(v))
    console.print(t)


def _seeds(seeds: Optional[List[str]], seeds_file: Optional[Path]) -> list[str]:
    out = list(seeds or [])
    if seeds_file is not None:
        from molmag.generative.corpus import read_smiles

        try:
            out += read_smiles(seeds_file)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{seeds_file}: not a text file of SMILES (byte {exc.start} is not "
                             "UTF-8)") from None
    if not out:
        raise ValueError("give at least one seed ligand (--seeds SMILES or --seeds-file FILE)")
    return out


MODEL_HELP = ("VAE model file (molmag vae train) or the name of a shipped model "
              "(default: gauss-ii-qm9, the pretrained GAUSS-II model).")


@app.command("sample")
def sample(
    model: Optional[str] = typer.Argument(None, help=MODEL_HELP),
    seeds: Optional[List[str]] = typer.Option(None, "--seeds", "-s",
                                              help="Seed ligand SMILES, donor atom first "
                                                   "(repeatable)."),
    seeds_file: Optional[Path] = typer.Option(None, "--seeds-file",
                                              help="File of seed SMILES (one per line or CSV)."),
    prior: bool = typer.Option(False, "--prior", help="Sample z ~ N(0, I) instead of around "
                               "seeds (multinomial decoding at --temperature)."),
    sigma: float = typer.Option(0.3, "--sigma", help="LP sampling width (latent units)."),
    n: int = typer.Option(1000, "--n", help="Samples per seed (or prior samples)."),
    temperature: Optional[float] = typer.Option(
        None, "--temperature", help="Decoding temperature: 0 greedy (default around seeds), "
        "1 the model's distribution (default with --prior)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="CSV of the unique valid molecules found."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Sample new ligands: local perturbation z' = z(seed) + sigma * eps around seed ligands,
    or --prior z ~ N(0, I).  Reports validity (RDKit, and RDKit plus the valence sanity
    filter), uniqueness, novelty and the new ligands (donor atom first) with the head's
    predicted properties.  A seed RDKit cannot read, or that is not a donor-first ligand, is
    refused with the reason; samples the model cannot re-encode are counted, never fatal."""
    from molmag.generative.pretrained import resolve_model
    from molmag.generative.runs import prior_table, sample_table, write_rows
    from molmag.generative.training import load_vae

    if sigma < 0:
        fail(f"--sigma must be >= 0, got {sigma}")
    if n < 1:
        fail(f"--n must be >= 1, got {n}")
    if temperature is not None and temperature < 0:
        fail(f"--temperature must be >= 0, got {temperature}")
    with user_errors():
        if prior and (seeds or seeds_file):
            raise ValueError("--prior samples N(0, I): give no seeds with it")
        seed_list = None if prior else _seeds(seeds, seeds_file)
        vae = load_vae(resolve_model(model))  # None: the shipped default
        if prior:
            summary, molecules = prior_table(vae, n, rng_seed=seed,
                                             temperature=1.0 if temperature is None
                                             else temperature)
            metrics = None
        else:
            assert seed_list is not None  # set whenever not prior
            metrics, molecules = sample_table(vae, seed_list, sigma, n, rng_seed=seed,
                                              temperature=temperature or 0.0)
        if out is not None:
            write_rows(molecules, out)
    name = model or "gauss-ii-qm9"
    if prior:
        if as_json:
            print_json({"model": name, "metrics": summary, "out": str(out) if out else None})
            return
        t = Table(title=f"{name}: {n} prior samples z ~ N(0, I), temperature "
                        f"{summary['temperature']:g}")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k in ("valid_rdkit", "valid", "unique_1k", "unique_10k", "novel", "int_div",
                  "ligand_share"):
            t.add_row(k, _fmt(summary[k]))
        t.add_row("new sane ligands (unique)", str(summary["n_novel_ligands"]))
        console.print(t)
        console.print("valid: RDKit reads it and it passes the valence sanity filter; unique@k "
                      "and novel per valid molecule (MOSES); ligand_share: valid ones that are "
                      "donor-first O/N ligands", highlight=False)
        if out is not None:
            console.print(f"wrote {len(molecules)} unique valid molecules to {out}")
        return
    assert metrics is not None  # sample_table's, whenever not prior
    if as_json:
        print_json({"model": name, "metrics": metrics, "out": str(out) if out else None})
        return
    t = Table(title=f"{name}: LP sampling, sigma = {sigma:g}, {n} samples per seed")
    for c in ("seed", "valid", "valid & sane", "unique", "novel", "ligands", "new ligands",
              "new sane ligands"):
        t.add_column(c, justify="left" if c == "seed" else "right")
    for m in metrics:
        t.add_row(m["seed"], f"{m['valid_rate']:.1%}", f"{m['valid_sane_rate']:.1%}",
                  str(m["n_unique"]), str(m["n_unique_novel"]), str(m["unique_ligands"]),
                  str(m["unique_novel_ligands"]), str(m["unique_novel_sane_ligands"]))
    console.print(t)
    console.print("valid: RDKit reads it; sane: also no hypervalent S/P outside S(=O), S(=O)2, "
                  "P(=O), no antiaromatic small ring, no stray charge (molmag.chem.valence)",
                  highlight=False)
    unread = sum(m["n_not_reencodable"] for m in metrics)
    if unread:
        console.print(f"{unread} unique molecule(s) the model cannot re-encode (tokens outside "
                      f"its vocabulary): properties predicted from the decoded string, "
                      f"reencodable = False in the CSV", highlight=False)
    if out is not None:
        console.print(f"wrote {len(molecules)} unique molecules to {out}")


@app.command("evaluate")
def evaluate_(
    model: Optional[str] = typer.Argument(None, help=MODEL_HELP),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Held-out ligands to "
                                          "reconstruct (default: those stored in the model)."),
    n: int = typer.Option(10000, "--n", help="Prior samples (unique@1k/@10k need 1000/10000)."),
    lp_seeds: int = typer.Option(16, "--lp-seeds", help="Random training ligands for the LP "
                                 "curve."),
    lp_draws: int = typer.Option(1000, "--lp-draws", help="LP samples per seed and sigma."),
    lp_temperature: float = typer.Option(0.0, "--lp-temperature", help="LP decoding "
                                         "temperature (0: greedy, the paper's)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """MOSES-style metrics: held-out reconstruction (greedy), prior validity (RDKit + valence
    sanity), unique@1k/@10k, novelty, internal diversity, the share of donor-first ligands and
    the LP sampling curve (valid / unique / novel against sigma)."""
    from molmag.generative.metrics import evaluate
    from molmag.generative.pretrained import resolve_model
    from molmag.generative.training import load_vae

    if n < 1:
        fail(f"--n must be >= 1, got {n}")
    with user_errors():
        vae = load_vae(resolve_model(model))  # None: the shipped default
        held = None
        if corpus is not None:
            from molmag.generative.corpus import read_corpus

            held, unknown = [], 0
            for g in read_corpus(corpus):
                try:
                    rep = vae.vocab.to_repr(g.smiles)
                    vae.vocab.indices([rep])
                except ValueError:
                    unknown += 1
                    continue
                held.append(rep)
            if not held:
                raise ValueError(f"{corpus}: none of its {unknown} ligands fits the model's "
                                 "vocabulary")
            if unknown:
                err_console.print(f"{unknown} ligand(s) of {corpus} left out: tokens the model "
                                  "does not know or longer than its max_len")
        res = evaluate(vae, held_out=held, n=n, seed=seed, lp_seeds=lp_seeds,
                       lp_draws=lp_draws, lp_temperature=lp_temperature)
    if as_json:
        print_json({"model": model or "gauss-ii-qm9", **res})
        return
    t = Table(title=f"{model or 'gauss-ii-qm9'} ({res['decoder']} decoder, "
                    f"{res['representation']})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row(f"reconstruction ({res['n_held_out']} held out, greedy)",
              _fmt(res["reconstruction"]))
    t.add_row(f"valid ({n} prior samples; RDKit {_fmt(res['valid_rdkit'])})", _fmt(res["valid"]))
    for k in ("unique_1k", "unique_10k", "novel", "int_div", "ligand_share"):
        t.add_row(k, _fmt(res[k]))
    console.print(t)
    if res["lp_curve"]:
        c = Table(title=f"LP sampling around {res['lp_curve'][0]['seeds']} training ligands, "
                        f"{lp_draws} draws each (per-seed means)")
        for col in ("sigma", "valid", "unique", "novel", "new ligands / 1000 (min-max)"):
            c.add_column(col, justify="right")
        for r in res["lp_curve"]:
            c.add_row(f"{r['sigma']:g}", f"{r['valid']:.3f}", f"{r['unique']:.3f}",
                      f"{r['novel']:.3f}", f"{r['unique_novel_per_1000']:.0f} "
                      f"({r['unique_novel_per_1000_min']:.0f}-"
                      f"{r['unique_novel_per_1000_max']:.0f})")
        console.print(c)


@app.command("map")
def map_(
    model: Optional[str] = typer.Argument(None, help=MODEL_HELP),
    out: Path = typer.Option(Path("latent-map"), "--out", "-o", help="Output folder."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Ligands to map (default: "
                                          "the model's training ligands)."),
    proxies: Optional[Path] = typer.Option(None, "--proxies", help="Dataset of proxy labels "
                                           "(colours the map by the computed proxies)."),
    gaps: Optional[Path] = typer.Option(None, "--gaps", help="Dataset of Dy(H2O)5L2 gap "
                                        "labels (colours the map by Delta E01..07)."),
    max_points: int = typer.Option(20000, "--max-points", help="Subsample larger corpora."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
):
    """PCA of the latent space coloured by the head's predictions, the computed proxies and
    the Kramers gaps (Khatibi et al. Figs. 4, 7, 9)."""
    from molmag.generative.pretrained import resolve_model
    from molmag.generative.runs import latent_map
    from molmag.generative.training import load_vae

    with user_errors():
        for p, what in ((proxies, "--proxies"), (gaps, "--gaps")):
            if p is not None and not p.is_file():
                raise FileNotFoundError(f"{what} {p}: no such dataset")
        vae = load_vae(resolve_model(model))  # None: the shipped default
        smiles = None
        if corpus is not None:
            from molmag.generative.corpus import read_corpus

            smiles = [g.smiles for g in read_corpus(corpus)]
        res = latent_map(vae, out, smiles=smiles, proxies=proxies, gaps=gaps,
                         max_points=max_points)
    if as_json:
        print_json(res)
        return
    ev = res["explained_variance_ratio"]
    console.print(f"{res['n']} ligands mapped; PC1 {ev[0]:.1%}, PC2 {ev[1]:.1%} of the "
                  "latent variance", highlight=False)
    if res["unreadable"]:
        console.print(f"{len(res['unreadable'])} labelled ligand(s) left out: tokens the model "
                      f"does not know (e.g. {res['unreadable'][0]})", highlight=False)
    if res["neighbour_correlation"]:
        t = Table(title="order of the map (r of a value with its 5 nearest neighbours' mean)")
        t.add_column("property")
        t.add_column("r", justify="right")
        for k, v in res["neighbour_correlation"].items():
            t.add_row(k, _fmt(v))
        console.print(t)
    for k, f in res["files"].items():
        console.print(f"{k}: {f}")
