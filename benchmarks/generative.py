"""Generative benchmark (Khatibi et al. 2026): the GAUSS VAE on the QM9 ligand corpus,
SMILES against SELFIES, and the Dy(H2O)5L2 campaign's seed-bin R^2 and repopulation shift.

Run:  python benchmarks/generative.py [--qm9 FILE] [--n-train 5000] [--epochs 30]
                                      [--campaign DIR] [--json]

1. The corpus: donor-first O/N ligands of QM9 (``../shared/data/qm9_smiles.csv`` by default,
   ``--qm9``; molmag's built-in corpus when the file is missing), ``--n-train`` random ones for
   training and 500 held out.
2. For SMILES and for SELFIES: a GAUSS VAE (the paper's architecture, no head) trained for
   ``--epochs`` epochs (or until the paper's stopping rule), then
   * reconstruction accuracy: greedy decoding of mu equals the input, held-out set;
   * LP sampling at sigma = 0.3 around ``--seeds`` random training ligands, 100 samples each:
     validity (RDKit), uniqueness (distinct valid / valid), novelty (distinct valid not in
     the training set / distinct valid), all on kekulised canonical SMILES;
   * unique novel valid *ligands* (donor first, corpus rules) per minute of sampling.
3. With ``--campaign DIR`` (a finished ``molmag campaign dy-ligands`` folder): the seed-vs-
   sample R^2 of Delta E01 (paper: 0.82 for GAUSS-II on CASSCF) and the repopulation shift of
   Delta E01 (generated vs seeds vs the random labelled subset).

Times depend on the machine; the rates (validity, novelty, R^2, shift) do not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

QM9 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qm9_smiles.csv"


def corpus(path: Path | None, max_heavy_atoms: int) -> tuple[list[str], str]:
    from molmag.generative.corpus import default_corpus, ligands_from_smiles, read_smiles

    if path is not None and path.is_file():
        ligs, _ = ligands_from_smiles(read_smiles(path), max_heavy_atoms=max_heavy_atoms)
        return [g.smiles for g in ligs], f"QM9 ({path.name})"
    from molmag.generative.runs import heavy_atoms

    return [g.smiles for g in default_corpus() if heavy_atoms(g.smiles) <= max_heavy_atoms], \
        "molmag built-in corpus"


def bench_representation(kind: str, train: list[str], held: list[str], epochs: int,
                         n_seeds: int, seed: int) -> dict:
    from molmag.chem.builders import quiet_rdkit
    from molmag.generative.corpus import as_ligand
    from molmag.generative.sampling import (canonical_set, decode, encode, generation_metrics,
                                            perturb, reconstruction_accuracy)
    from molmag.generative.training import train_vae
    from molmag.generative.vae import VAEConfig
    from molmag.generative.vocab import Vocabulary

    vocab = Vocabulary.from_corpus(train + held, kind, from_smiles=True)
    tr = [vocab.to_repr(s) for s in train]
    va = [vocab.to_repr(s) for s in held]
    t0 = time.perf_counter()
    model = train_vae(tr, config=VAEConfig(), vocab=vocab, kind=kind, val_strings=va,
                      max_epochs=epochs, seed=seed)
    train_s = time.perf_counter() - t0
    rec = reconstruction_accuracy(model, va)
    train_canon = canonical_set(train)
    train_lig = set(train)
    rng = np.random.default_rng(seed)
    seeds = [tr[i] for i in rng.choice(len(tr), size=min(n_seeds, len(tr)), replace=False)]
    samples: list[str] = []
    t0 = time.perf_counter()
    new_ligands: set[str] = set()
    with quiet_rdkit():
        for k, s in enumerate(seeds):
            z = encode(model, [s])[0]
            out = decode(model, perturb(z, 0.3, 100, seed=[seed, k]))
            samples += out
            for o in out:
                smi = vocab.to_smiles(o) if kind == "selfies" else o
                lig = as_ligand(smi) if smi else None
                if lig is not None and lig.smiles not in train_lig:
                    new_ligands.add(lig.smiles)
    sample_s = time.perf_counter() - t0
    m = generation_metrics(samples, train_canon, kind, training_is_canonical=True)
    m.pop("novel")
    return {"representation": kind, "n_train": len(tr), "epochs": len(model.history),
            "train_seconds": train_s, "reconstruction_accuracy": rec,
            "validity": m["valid_rate"], "uniqueness": m["uniqueness"], "novelty": m["novelty"],
            "n_samples": m["n_samples"], "unique_novel": m["n_unique_novel"],
            "unique_novel_ligands": len(new_ligands), "sample_seconds": sample_s,
            "novel_ligands_per_minute": len(new_ligands) / sample_s * 60.0}


def campaign_numbers(folder: Path) -> dict:
    state = json.loads((folder / "campaign.json").read_text())
    st = state["stages"]
    out = {"mode": state.get("mode")}
    sd = (st.get("seeds") or {}).get("summary") or {}
    rp = (st.get("repopulate") or {}).get("summary") or {}
    mp = (st.get("map") or {}).get("summary") or {}
    out["order_dE01"] = (mp.get("neighbour_correlation") or {}).get("dE01")
    out["seed_sample_r2_dE01"] = sd.get("r2_dE01")
    out["seed_sample_pairs"] = sd.get("n_labelled")
    for key in ("generated", "seeds", "random"):
        out[f"{key}_mean_dE01"] = (rp.get(key) or {}).get("mean")
        out[f"{key}_n"] = (rp.get(key) or {}).get("n")
    out["shift_vs_random"] = (rp.get("shift_vs_random") or {}).get("mean_shift")
    out["p_generated_gt_random"] = (rp.get("shift_vs_random") or {}).get("p_greater")
    out["unique_new_per_minute"] = rp.get("unique_new_per_minute")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qm9", type=Path, default=QM9)
    ap.add_argument("--max-heavy-atoms", type=int, default=9)
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-held", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--representations", default="smiles,selfies")
    ap.add_argument("--campaign", type=Path, default=None,
                    help="a finished `molmag campaign dy-ligands` folder")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    smiles, source = corpus(a.qm9, a.max_heavy_atoms)
    corpus_s = time.perf_counter() - t0
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(smiles))
    held = [smiles[i] for i in order[:a.n_held]]
    train = [smiles[i] for i in order[a.n_held:a.n_held + a.n_train]]
    rows = []
    for k in [k.strip() for k in a.representations.split(",") if k.strip()]:
        rows.append(bench_representation(k, train, held, a.epochs, a.seeds, a.seed))
        print(f"# {k}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    camp = campaign_numbers(a.campaign) if a.campaign else None
    result = {"corpus": source, "n_corpus": len(smiles), "corpus_seconds": corpus_s,
              "rows": rows, "campaign": camp}
    if a.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"corpus: {source}, {len(smiles)} ligands (<= {a.max_heavy_atoms} heavy atoms) in "
          f"{corpus_s:.0f} s; training {len(train)}, held out {len(held)}\n")
    hdr = ("repr", "epochs", "train s", "recon acc", "valid", "unique", "novel",
           "new ligands", "per min")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        print(f"| {r['representation']} | {r['epochs']} | {r['train_seconds']:.0f} | "
              f"{r['reconstruction_accuracy']:.3f} | {r['validity']:.1%} | "
              f"{r['uniqueness']:.1%} | {r['novelty']:.1%} | {r['unique_novel_ligands']} | "
              f"{r['novel_ligands_per_minute']:.0f} |")
    print(f"\nLP sampling at sigma = 0.3, {a.seeds} seeds x 100 samples; validity per sample, "
          "uniqueness per valid, novelty per distinct valid; 'new ligands': distinct donor-first "
          "ligands not in the training set.")
    if camp:
        print(f"\ncampaign {a.campaign} ({camp['mode']}):")
        print("| quantity | value | paper |\n|---|---|---|")
        f = (lambda v, fmt: "-" if v is None else format(v, fmt))
        print(f"| latent order of dE01 (neighbour r) | {f(camp['order_dE01'], '.2f')} | ordered "
              "(Figs. 7i, 9) |")
        print(f"| seed-vs-sample R^2, dE01 ({camp['seed_sample_pairs']} pairs) | "
              f"{f(camp['seed_sample_r2_dE01'], '.2f')} | 0.82 |")
        print(f"| mean dE01: random subset / top seeds / generated (cm-1) | "
              f"{f(camp['random_mean_dE01'], '.0f')} / {f(camp['seeds_mean_dE01'], '.0f')} / "
              f"{f(camp['generated_mean_dE01'], '.0f')} | positive shift (Fig. 10b) |")
        print(f"| shift generated - random (cm-1) | {f(camp['shift_vs_random'], '+.0f')} | > 0 |")
        print(f"| P(generated > random) | {f(camp['p_generated_gt_random'], '.2f')} | > 0.5 |")
        print(f"| unique new ligands per minute (top seeds) | "
              f"{f(camp['unique_new_per_minute'], '.0f')} | ~2k in a few minutes |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
