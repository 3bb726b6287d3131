"""What each of the clean-up's whole-piece terms contributes, measured on the VALID split
(where its weights were chosen): the model with the default clean-up, then with one term off
at a time, each row the whole-piece figures of `evaluate --whole`.

    .venv/bin/python scripts/decoder_ablation.py [--checkpoint P] [--split valid] [--json F]
"""

from __future__ import annotations

import argparse
import contextlib
import json

from bachgan import cleanup
from bachgan import whole_eval as W
from bachgan.data import load_corpus
from bachgan.runs_io import atomic_write_bytes
from bachgan.sampling import Harmonizer
from bachgan.whole_tables import SUMMARY_LABELS

# Each variant: the clean-up's module constants it changes.
VARIANTS = {
    "default": {},
    "no cadence terms": {
        "CADENCE_COST": 0.0,
        "CADENCE_BONUS": 0.0,
        "END_COST": 0.0,
        "LEADING_TONE_COST": 0.0,
    },
    "no authentic-cadence bonus": {"CADENCE_BONUS": 0.0},
    "no bass hold cost": {"BASS_HOLD_COST": 0.0},
    "no odd-16th cost": {"SIXTEENTH_COST": 0.0},
    "leap cost 0.1 (before)": {"LEAP_COST": 0.1},
}


@contextlib.contextmanager
def constants(changes: dict):
    before = {k: getattr(cleanup, k) for k in changes}
    for k, v in changes.items():
        setattr(cleanup, k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            setattr(cleanup, k, v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a model folder (default: the shipped model)")
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args()
    h = Harmonizer(args.checkpoint)
    corpus = load_corpus()
    chorales = corpus.chorales(args.split)
    reference = W.by_mode(W.reference_stats(corpus))
    bach = {ch.name: W.chorale_stats(ch) for ch in chorales}
    rows = {}
    for name, changes in VARIANTS.items():
        with constants(changes):
            stats, skipped = W.run_row(
                lambda ch, v: W.harmonize_chorale(h, ch, v, W.piece_seed(0, ch.name)), chorales, 0
            )
        rows[name] = W.row_result(stats, skipped, bach, reference, 0, 0)
    head = ["clean-up", "mode kept", "key kept", *SUMMARY_LABELS.values()]
    head += ["bass repeats", "parallels /100", "authentic+half", "closed", "ends on tonic"]
    print(f"{len(chorales)} {args.split} chorales, soprano given, {h.card.get('path')}\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, r in rows.items():
        cells = [name, f"{r['mode_kept']:.0%}", f"{r['key_kept']:.0%}"]
        cells += [f"{r['summary'][k]:.3f}" for k in SUMMARY_LABELS]
        cells += [f"{r['bass_repeats']:.0%}", f"{r['parallels_per_100']:.2f}"]
        cells += [f"{r[k]:.0%}" for k in ("authentic_or_half", "closed", "ends_on_tonic")]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        out = {"split": args.split, "model": h.card.get("path"), "rows": W.jsonable(rows)}
        atomic_write_bytes(args.json, (json.dumps(out, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
