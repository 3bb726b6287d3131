"""Model evaluation on melodies it never trained on, beside Bach and simple baselines.

Melodies: every voice the model accepts, taken from 2-bar windows (hop one bar) of
the held-out test chorales, plus the built-in tunes (folk songs and hymn tunes from
outside the chorales) in each voice's range. Metrics are computed after the default
clean-up, on the three generated voices, by `bachgan.metrics`, and the Bach column
comes from the same code on the same windows.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from bachgan import metrics
from bachgan.data import windows
from bachgan.voices import STEPS_PER_BAR, VOICE_NAMES, WINDOW_STEPS

OTHERS = {v: tuple(x for x in range(4) if x != v) for v in range(4)}


@lru_cache(maxsize=1)
def _test_windows():
    from bachgan.data import load_corpus

    corpus = load_corpus()
    return corpus.windows("test")


@lru_cache(maxsize=8)
def bach_reference(voices: tuple[int, ...] = (1, 2, 3)) -> dict:
    """Bach's own figures on the held-out test chorales (2-bar windows, hop one bar)."""
    return metrics.reference(_test_windows(), voices=voices)


def tune_windows(result_voices) -> list:
    """A harmonized tune as 2-bar windows (hop one bar), padding the tail bar."""
    steps = -(-result_voices.steps // STEPS_PER_BAR) * STEPS_PER_BAR
    return windows(result_voices.pad_to(max(steps, WINDOW_STEPS)))


def evaluate(harmonizer, max_windows: int | None = None, seed: int = 0, progress=None) -> dict:
    """Metrics of the model per condition voice and source, with Bach and baselines."""
    from bachgan.melody import BUILTIN_TUNES, builtin_tune

    test = _test_windows()
    if max_windows:
        test = test[:: max(1, len(test) // max_windows)][:max_windows]
    rows: dict[str, dict] = {}
    pooled = []
    cond_voices = harmonizer.preset.condition_voices
    total = len(cond_voices) * (len(test) + len(BUILTIN_TUNES))
    done = 0
    for v in cond_voices:
        name = VOICE_NAMES[v]
        chorale_out = []
        for i, w in enumerate(test):
            chorale_out.append(harmonizer.harmonize(w.voice(v), v, seed=seed + i).voices)
            done += 1
            if progress:
                progress(done, total)
        tune_out = []
        for j, tune in enumerate(BUILTIN_TUNES):
            r = harmonizer.harmonize(builtin_tune(tune, name), v, seed=seed + j)
            tune_out.extend(tune_windows(r.voices))
            done += 1
            if progress:
                progress(done, total)
        others = OTHERS[v]
        rows[f"model/{name}/chorales"] = metrics.batch_metrics(chorale_out, voices=others)
        rows[f"model/{name}/tunes"] = metrics.batch_metrics(tune_out, voices=others)
        rows[f"bach/{name}"] = metrics.batch_metrics(test, voices=others)
        pooled.append((chorale_out + tune_out, others))
    rng = np.random.default_rng(seed)
    rows["random"] = metrics.batch_metrics(metrics.random_baseline(len(test), rng))
    rows["bach_shuffled_lower"] = metrics.batch_metrics(
        metrics.shuffled_lower_voices_baseline(test, rng)
    )
    # Mean over condition voices: the figure the targets are checked against.
    counts = [metrics.batch_metrics(b, voices=o) for b, o in pooled]
    rows["model/all"] = {k: float(np.mean([c[k] for c in counts])) for k in counts[0]}
    rows["bach/all"] = bach_reference()
    card = harmonizer.card
    return {
        "model": {
            "path": card.get("path"),
            "iteration": card.get("iteration"),
            "preset": harmonizer.preset.name,
        },
        "windows": len(test),
        "tunes": list(BUILTIN_TUNES),
        "seed": seed,
        "rows": rows,
        "meets_targets": {k: metrics.meets_targets(r) for k, r in rows.items()},
    }


def table(result: dict, columns: list[str] | None = None) -> str:
    """A markdown table of the headline metrics, one column per result row."""
    rows = result["rows"]
    columns = columns or [k for k in rows if k.startswith("model/")] + ["bach/all", "random"]
    return metrics.headline_table({c: rows[c] for c in columns})
