"""Model evaluation on melodies it never trained on, beside Bach and simple baselines.

Melodies: every voice the model accepts, taken from 2-bar windows (hop one bar) of
the held-out test chorales, plus the built-in tunes (folk songs and hymn tunes from
outside the chorales) in each voice's range. Metrics are computed after the default
clean-up, on the three generated voices, by `bachgan.metrics`, and the Bach column
comes from the same code on the same windows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from bachgan import metrics
from bachgan.data import windows
from bachgan.sampling import Harmonizer, reroll_bar
from bachgan.voices import STEPS_PER_BAR, VOICE_NAMES, WINDOW_STEPS

OTHERS = {v: tuple(x for x in range(4) if x != v) for v in range(4)}


@lru_cache(maxsize=1)
def _test_split() -> tuple[list, tuple[str, ...]]:
    """The held-out test chorales' windows and ids, from one read of the corpus."""
    from bachgan.data import load_corpus

    corpus = load_corpus()
    return corpus.windows("test"), tuple(c.name for c in corpus.chorales("test"))


def _test_windows():
    return _test_split()[0]


def test_chorales() -> tuple[str, ...]:
    """The ids of the held-out test chorales the windows come from."""
    return _test_split()[1]


@lru_cache(maxsize=8)
def bach_reference(voices: tuple[int, ...] = (1, 2, 3)) -> dict:
    """Bach's own figures on the held-out test chorales (2-bar windows, hop one bar)."""
    return metrics.reference(_test_windows(), voices=voices)


def tune_windows(result_voices) -> list:
    """A harmonized tune as 2-bar windows (hop one bar), padding the tail bar."""
    steps = result_voices.bars * STEPS_PER_BAR
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
            "run": card.get("run"),
            "iteration": card.get("iteration"),
            "preset": harmonizer.preset.name,
        },
        "windows": len(test),
        "test_chorales": list(test_chorales()),
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


def model_label(result: dict) -> str:
    m = result["model"]
    name = Path(str(m.get("path") or "model")).name
    if name.startswith("export-") and m.get("run"):  # a run's export: name the run
        name = m["run"]
    it = f", {m['iteration']:,} it." if m.get("iteration") else ""
    return f"{name} ({m['preset']}{it})"


def comparison_table(results: list[dict]) -> str:
    """Several models (each averaged over its condition voices) beside Bach and the
    baselines of the first result (the same windows and seed give the same baselines)."""
    columns = {model_label(r): r["rows"]["model/all"] for r in results}
    base = results[0]["rows"]
    columns["Bach (test split)"] = base["bach/all"]
    columns["Bach's lower voices from another window"] = base["bach_shuffled_lower"]
    columns["random notes in range"] = base["random"]
    return metrics.headline_table(columns)


class NoiseHarmonizer(Harmonizer):
    """The same pipeline with the generator replaced by uniform noise: what the
    clean-up's rules achieve on their own, to show how much the model contributes."""

    def __init__(self, preset, seed: int = 0):  # no model to load
        self.preset, self.card = preset, {"path": "noise", "iteration": 0}
        self._rng = np.random.default_rng(seed)

    def _run(self, cond, z, voice):
        shape = (len(cond), WINDOW_STEPS, self.preset.n_pitches, 4)
        return self._rng.uniform(-1, 1, shape).astype(np.float32)


def ablation(harmonizer, max_windows: int = 120, seed: int = 0) -> dict:
    """Held-out chorale melodies under each decoding, pooled over condition voices."""
    test = _test_windows()
    test = test[:: max(1, len(test) // max_windows)][:max_windows]
    noise = NoiseHarmonizer(harmonizer.preset, seed)
    variants = {
        "model + voice-leading clean-up (default)": (harmonizer, {}),
        "model + per-voice clean-up": (harmonizer, {"cleanup": "per-voice"}),
        "model, raw (no clean-up)": (harmonizer, {"raw": True}),
        "noise + voice-leading clean-up (no model)": (noise, {}),
    }
    rows = {}
    for name, (h, kw) in variants.items():
        per_voice = []
        for v in h.preset.condition_voices:
            res = [h.harmonize(w.voice(v), v, seed=seed + i, **kw) for i, w in enumerate(test)]
            # Raw output is judged on the generator's own roll, where a voice can hold
            # several pitches at once; cleaned output has one pitch per voice by design.
            rolls = [r.raw_roll for r in res] if kw.get("raw") else None
            out = [r.voices for r in res]
            per_voice.append(metrics.batch_metrics(out, voices=OTHERS[v], rolls=rolls))
        rows[name] = {k: float(np.mean([m[k] for m in per_voice])) for k in per_voice[0]}
    return rows


def latent_locality(harmonizer, n: int = 60, seed: int = 0) -> dict:
    """How local is re-rolling one bar's latent row? Share of the change in each bar.

    For held-out soprano melodies, bar 1's latent row is re-sampled and the generator's
    output compared: `raw_share_bar1` is bar 1's share of the total absolute change of
    the scores; `cleaned_changed_bar1/2` the share of generated notes that changed.
    """
    test = _test_windows()
    test = test[:: max(1, len(test) // n)][:n]

    d1 = d2 = c1 = c2 = 0.0
    v = harmonizer.preset.condition_voices[0]
    for i, w in enumerate(test):
        z = harmonizer.latent(WINDOW_STEPS, seed=seed + i)
        z2 = reroll_bar(z, 0, seed=10_000 + i, preset=harmonizer.preset)
        a = harmonizer.harmonize(w.voice(v), v, z=z)
        b = harmonizer.harmonize(w.voice(v), v, z=z2)
        diff = np.abs(a.raw_roll - b.raw_roll)
        d1, d2 = d1 + diff[:16].sum(), d2 + diff[16:].sum()
        changed = a.voices.pitches[:, OTHERS[v]] != b.voices.pitches[:, OTHERS[v]]
        c1, c2 = c1 + changed[:16].mean(), c2 + changed[16:].mean()
    return {
        "melodies": len(test),
        "raw_share_bar1": float(d1 / (d1 + d2)),
        "cleaned_changed_bar1": float(c1 / len(test)),
        "cleaned_changed_bar2": float(c2 / len(test)),
    }
