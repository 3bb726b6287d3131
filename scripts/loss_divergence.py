"""How far rounding carries in training: BachGAN's float32 and bfloat16 steps beside the reference.

The Performance issue asks for "the same losses up to float noise". At the first iteration
BachGAN's float32 step differs from the plain reference (bachgan.reference_step) only in the
order of its sums, the bfloat16 step in coarser arithmetic. Training amplifies either
difference; this measures how fast. A second copy of the reference runs too: the same code on
the same machine, so whatever separates it from the first is float noise alone (the order in
which TensorFlow's threads finish their sums). All four start from the same weights and rng
state and train with Adam, as `train` does, on the same real batches.

Per iteration, for each of the others against the reference:
- `loss`: the largest difference of the four losses, each relative to the larger of that
  loss's size at the iteration and its mean size over the run (a loss that crosses zero would
  make a plain relative difference explode);
- `weights`: the distance between the generator's weights and the reference's, relative to
  how far the reference's have moved from the start.

    .venv/bin/python scripts/loss_divergence.py --preset mid --iterations 40 > out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STEPS = {"float32": "no_xla", "bf16": "bf16"}  # BachGAN's step: name -> bench.TRAIN_MODES


def _flat(model) -> np.ndarray:
    return np.concatenate([w.ravel() for w in model.get_weights()])


def _summary(values: list[float]) -> dict:
    windows = {"1": (1, 1), "2-5": (2, 5), "6-10": (6, 10), "11-20": (11, 20), "21-": (21, None)}
    out = {}
    for name, (lo, hi) in windows.items():
        part = values[lo - 1 : hi]
        if part:
            out[name] = float(np.median(part))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mid")
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()

    from bachgan.bench import machine, same_start
    from bachgan.data import load_corpus, make_dataset, stack_windows
    from bachgan.presets import get_preset
    from bachgan.reference_step import ReferenceStep

    p = get_preset(args.preset)
    windows = stack_windows(load_corpus().windows("train", p.hop))
    batches = list(make_dataset(windows, p).take(args.iterations))
    gans = same_start(p, STEPS.values())
    first = gans[STEPS["float32"]]
    ref, again = ReferenceStep.like(first), ReferenceStep.like(first)
    start = _flat(ref.generator)
    # name -> (its generator, one iteration on a batch's (real, cond, voice))
    steps = {
        name: (
            gans[mode].generator,
            lambda *b, gan=gans[mode]: gan.train_on_batch(b, return_dict=True),
        )
        for name, mode in STEPS.items()
    }
    steps["reference_again"] = (again.generator, again)
    runs = {"reference": (ref.generator, ref), **steps}

    losses = {name: [] for name in runs}
    moved, apart = [], {name: [] for name in steps}
    for batch in batches:
        for name, (_, run) in runs.items():
            got = run(*batch)
            losses[name].append({k: float(v) for k, v in got.items()})
        theirs = _flat(ref.generator)
        moved.append(float(np.linalg.norm(theirs - start)))
        for name, (generator, _) in steps.items():
            apart[name].append(float(np.linalg.norm(_flat(generator) - theirs)))
        print(f"iteration {len(moved)} done", file=sys.stderr, flush=True)

    keys = list(losses["reference"][0])
    scale = {k: float(np.mean([abs(r[k]) for r in losses["reference"]])) for k in keys}
    result = {"preset": p.name, "iterations": args.iterations, "machine": machine(), "steps": {}}
    for name in steps:
        loss = [
            max(abs(a[k] - r[k]) / max(abs(r[k]), scale[k]) for k in keys)
            for a, r in zip(losses[name], losses["reference"])
        ]
        weights = [d / m for d, m in zip(apart[name], moved)]
        result["steps"][name] = {
            "loss_median": _summary(loss),
            "weights_median": _summary(weights),
            "loss": [float(f"{x:.3g}") for x in loss],
            "weights": [float(f"{x:.3g}") for x in weights],
        }
    f32, bf16 = result["steps"]["float32"]["loss"], result["steps"]["bf16"]["loss"]
    result["float32_reaches_bf16_first_iteration_at"] = next(
        (i + 1 for i, x in enumerate(f32) if x >= bf16[0]), None
    )
    result["losses"] = losses
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
