"""What each of the clean-up's whole-piece terms contributes, on the VALID split (where its
weights were chosen): `bachgan.whole_ablation` as a table, and as JSON with --json.

    .venv/bin/python scripts/decoder_ablation.py [--checkpoint P] [--split valid] [--json F]
"""

from __future__ import annotations

import argparse
import json

from bachgan import whole_ablation
from bachgan.data import load_corpus
from bachgan.runs_io import atomic_write_bytes
from bachgan.sampling import Harmonizer
from bachgan.whole_eval import jsonable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a model folder (default: the shipped model)")
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args()
    h = Harmonizer(args.checkpoint)
    rows = whole_ablation.ablation(h, load_corpus(), args.split)
    print(f"{args.split} chorales, soprano given, {h.card.get('path')}\n")
    print(whole_ablation.table(rows))
    if args.json:
        out = {"split": args.split, "model": h.card.get("path"), "rows": jsonable(rows)}
        atomic_write_bytes(args.json, (json.dumps(out, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
