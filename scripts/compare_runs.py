"""Compare two training runs' logged musical metrics over a range of iterations.

Every run logs the same metrics of the same fixed held-out melodies every `metrics_every`
iterations (train.Run.musical_metrics), so two runs of one preset and seed that differ in one
setting (here: the precision) can be compared point by point. Prints JSON: per metric, each
run's mean and standard deviation over the logged points in the range.

    .venv/bin/python scripts/compare_runs.py runs/mid-a runs/mid-bf16 --start 1000 --end 1500
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bachgan.metrics import TARGETS  # noqa: E402
from bachgan.presets import run_precision  # noqa: E402
from bachgan.runs_io import read_json, read_jsonl  # noqa: E402


def logged(run: Path, start: int, end: int) -> dict[int, dict]:
    rows = read_jsonl(run / "metrics.jsonl")
    return {
        r["iteration"]: r
        for r in rows
        if start <= r.get("iteration", -1) <= end and "music/chord_tone_rate" in r
    }


def settings(run: Path) -> dict:
    config = read_json(run / "config.json", {})
    return {
        "preset": (config.get("preset") or {}).get("name"),
        "seed": config.get("seed"),
        "precision": run_precision(config),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs=2, type=Path)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--end", type=int, default=10**9)
    args = parser.parse_args()
    points = [logged(r, args.start, args.end) for r in args.runs]
    common = sorted(set(points[0]) & set(points[1]))
    if not common:
        print("no logged iteration in common in that range", file=sys.stderr)
        return 2
    out = {
        "runs": {str(r): settings(r) for r in args.runs},
        "iterations": [common[0], common[-1]],
        "points": len(common),
        "metrics": {},
    }
    for key in TARGETS:
        values = [[p[i][f"music/{key}"] for i in common] for p in points]
        out["metrics"][key] = {
            str(run): {"mean": round(statistics.mean(v), 4), "sd": round(statistics.pstdev(v), 4)}
            for run, v in zip(args.runs, values)
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
