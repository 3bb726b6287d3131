"""Choose among a run's exports on the VALID split, by whole pieces (never on test).

    .venv/bin/python scripts/pick_checkpoint.py EXPORT [EXPORT ...] [--json F]

Each export harmonizes the soprano of every valid chorale whole (as `evaluate --whole`
does); its score is the mean over the whole-piece features of its distance to Bach's
distributions divided by the Bach-vs-Bach floor (1 = as near as Bach's own chorales are to
each other). The lowest score is chosen; key, cadences and the classifier are printed beside.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from bachgan import whole_eval as W
from bachgan.data import load_corpus
from bachgan.runs_io import atomic_write_bytes
from bachgan.sampling import Harmonizer
from bachgan.whole_tables import SUMMARY_LABELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+")
    parser.add_argument("--json", help="also write every export's figures to this file")
    args = parser.parse_args()
    corpus = load_corpus()
    chorales = corpus.chorales("valid")
    train = W.reference_stats(corpus)
    reference = W.by_mode(train)
    bach = {ch.name: W.chorale_stats(ch) for ch in chorales}
    floor = W.floor_row(train, list(bach.values()), 0, draws=10, seed=0)["summary"]
    results = {}
    print("| export | score (distance / floor) | mode kept | key kept | closed | ends on tonic |")
    print("|---|---|---|---|---|---|")
    for path in args.exports:
        h = Harmonizer(path)
        stats, skipped = W.run_row(
            lambda ch, v, h=h: W.harmonize_chorale(h, ch, v, W.piece_seed(0, ch.name)), chorales, 0
        )
        r = W.row_result(stats, skipped, bach, reference, 0, 0)
        score = float(np.mean([r["summary"][k] / floor[k] for k in SUMMARY_LABELS]))
        results[path] = {"score": score, **{k: r[k] for k in ("mode_kept", "key_kept")}}
        results[path].update(closed=r["closed"], ends_on_tonic=r["ends_on_tonic"])
        results[path]["summary"] = r["summary"]
        print(
            f"| {path} | {score:.2f} | {r['mode_kept']:.0%} | {r['key_kept']:.0%} | "
            f"{r['closed']:.0%} | {r['ends_on_tonic']:.0%} |",
            flush=True,
        )
    best = min(results, key=lambda p: results[p]["score"])
    print(f"\nchosen: {best}")
    if args.json:
        out = {"split": "valid", "floor": floor, "exports": results, "chosen": best}
        atomic_write_bytes(args.json, (json.dumps(W.jsonable(out), indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
