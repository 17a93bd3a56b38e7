"""`molmag vae train|sample|map`: the GAUSS VAE for generative ligand design."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from molmag.cli.common import console, err_console, fail, print_json, user_errors

app = typer.Typer(help="Generative ligand design: train the GAUSS VAE, sample it, map its "
                  "latent space.", no_args_is_help=True)


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


@app.command("sample")
def sample(
    model: Path = typer.Argument(..., help="VAE model file (molmag vae train)."),
    seeds: Optional[List[str]] = typer.Option(None, "--seeds", "-s",
                                              help="Seed ligand SMILES, donor atom first "
                                                   "(repeatable)."),
    seeds_file: Optional[Path] = typer.Option(None, "--seeds-file",
                                              help="File of seed SMILES (one per line or CSV)."),
    sigma: float = typer.Option(0.3, "--sigma", help="LP sampling width (latent units)."),
    n: int = typer.Option(1000, "--n", help="Samples per seed."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="CSV of the unique valid molecules found."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Local-perturbation sampling z' = z(seed) + sigma * eps: validity (RDKit, and RDKit plus
    the valence sanity filter), uniqueness, novelty and the new ligands (donor atom first) with
    the head's predicted properties.  A seed RDKit cannot read is refused; samples the model
    cannot re-encode are counted, never fatal."""
    from molmag.generative.runs import sample_table, write_rows
    from molmag.generative.training import load_vae

    if sigma < 0:
        fail(f"--sigma must be >= 0, got {sigma}")
    if n < 1:
        fail(f"--n must be >= 1, got {n}")
    with user_errors():
        seed_list = _seeds(seeds, seeds_file)
        vae = load_vae(model)
        metrics, molecules = sample_table(vae, seed_list, sigma, n, rng_seed=seed)
        if out is not None:
            write_rows(molecules, out)
    if as_json:
        print_json({"metrics": metrics, "out": str(out) if out else None})
        return
    t = Table(title=f"LP sampling, sigma = {sigma:g}, {n} samples per seed")
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


@app.command("map")
def map_(
    model: Path = typer.Argument(..., help="VAE model file (molmag vae train)."),
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
    from molmag.generative.runs import latent_map
    from molmag.generative.training import load_vae

    with user_errors():
        for p, what in ((proxies, "--proxies"), (gaps, "--gaps")):
            if p is not None and not p.is_file():
                raise FileNotFoundError(f"{what} {p}: no such dataset")
        vae = load_vae(model)
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
