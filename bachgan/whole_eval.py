"""The whole-piece evaluation (issue 16): whole held-out chorales, harmonized whole, beside Bach.

The 2-bar window metrics stay as regression checks; they cannot hear a piece's key, its
cadences or its bass line, and noise through the decoder nearly meets them. Here each
held-out chorale's melody (one voice given) is harmonized whole, and every row of the
tables is computed the same way from `piece_stats`:

- "Bach": the split's own harmonizations (the same melodies);
- "Bach vs Bach": the noise floor, as many training chorales (same mode mix) drawn at
  random, against the other training chorales; mean over `draws` draws;
- "mismatched": Bach's given voice with the other three voices of a different chorale of
  the split in the same mode, transposed to the same tonic (the ceiling: Bach-like lines
  that do not belong to the melody);
- each model row: a callable `make(chorale, voice) -> Voices` (see `model_rows`).

Distances are to Bach's training-split chorales (`reference_stats`, cached on disk); the
classifier test compares a row with Bach's harmonizations of the same melodies. Choose
anything (features, checkpoints, decoding) on the valid split; test is for reporting.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable

import numpy as np

from bachgan import data
from bachgan import piece_stats as P
from bachgan import whole_compare as C
from bachgan.context import estimate as estimate_context
from bachgan.data import Chorale
from bachgan.melody import MelodyError
from bachgan.voices import STEPS_PER_BAR, VOICE_NAMES, Voices, voice_index
from bachgan.whole_tables import tables as tables  # the tables of a result, re-exported

FEATURES_VERSION = 2  # bump when piece_stats counts change: the reference cache is rebuilt
BACH, FLOOR, MISMATCHED = "Bach", "Bach vs Bach", "mismatched"
Make = Callable[[Chorale, int], Voices]


# ---------------------------------------------------------------- Bach's side


def chorale_stats(ch: Chorale, voices: Voices | None = None, key: bool = True) -> dict:
    """piece_stats of a chorale (or of other voices under its melody) in the chorale's key
    and with its phrase ends."""
    tonic, mode = P.parse_key(ch.key)
    return P.piece_stats(ch.voices if voices is None else voices, tonic, mode, ch.fermatas, key)


def reference_path():
    return data.cache_dir() / f"whole-reference-v{data.CACHE_VERSION}.{FEATURES_VERSION}.npz"


def _digest(chorales: list[Chorale]) -> str:
    """What the reference was computed from: ids, keys, notes and fermatas."""
    h = hashlib.sha1()
    for ch in chorales:
        h.update(f"{ch.name}|{ch.key}|{ch.voices.digest()}".encode())
        h.update(np.asarray(data._fermatas(ch)).tobytes())
    return h.hexdigest()


def reference_stats(corpus=None, progress=None) -> list[dict]:
    """piece_stats of every training chorale (4/4, 2/2), from the cache when it was made
    from the same chorales (about 7 s to rebuild on one core)."""
    corpus = corpus or data.load_corpus()
    train = corpus.chorales("train")
    digest, path = _digest(train), reference_path()
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["digest"]) == digest:
                    arrays = {k: z[k] for k in z.files if k != "digest"}
                    return [{k: a[i] for k, a in arrays.items()} for i in range(len(train))]
        except (OSError, ValueError, KeyError):
            pass  # unreadable: rebuilt below
    stats = []
    for i, ch in enumerate(train):
        stats.append(chorale_stats(ch))
        if progress:
            progress(i + 1, len(train))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    arrays = {k: np.stack([s[k] for s in stats]) for k in stats[0]}
    np.savez_compressed(tmp, digest=np.array(digest), **arrays)
    tmp.replace(path)
    return stats


def by_mode(stats: list[dict]) -> dict[str, dict]:
    """Pooled histograms per mode: the reference a row's pieces of that mode meet."""
    return {m: C.pool([s for s in stats if C.mode_of(s) == m]) for m in P.MODES}


# ---------------------------------------------------------------- rows


def harmonize_chorale(harmonizer, chorale: Chorale, voice: int, seed: int, raw=False) -> Voices:
    """The one call that harmonizes a whole chorale's melody (voice `voice`) with a model:
    the key read off the melody alone, the phrase ends its fermatas (as a hymnal prints the
    melody), never Bach's own harmonization."""
    melody = chorale.voices.voice(voice)
    context = estimate_context(melody, phrase_ends=chorale.fermatas, voice=voice)
    return harmonizer.harmonize(melody, voice=voice, seed=seed, raw=raw, context=context).voices


def piece_seed(seed: int, name: str) -> int:
    """A seed per piece, so that pieces do not share the latent rows of their bars."""
    return seed * 100_003 + int(hashlib.sha1(name.encode()).hexdigest()[:6], 16)


def model_rows(harmonizer, seed: int = 0) -> dict[str, Make]:
    """The model with default decoding, the model raw, and noise + decoder (no model)."""
    from bachgan.evaluate import NoiseHarmonizer

    noise = NoiseHarmonizer(harmonizer.preset, seed)

    def make(h, raw=False) -> Make:
        return lambda ch, v: harmonize_chorale(h, ch, v, piece_seed(seed, ch.name), raw)

    return {
        "model": make(harmonizer),
        "model raw": make(harmonizer, True),
        "noise + decoder": make(noise),
    }


def mismatched(chorale: Chorale, partner: Chorale, voice: int) -> Voices:
    """`chorale`'s voice `voice` with the other voices of `partner`, moved (by -5..+6
    semitones) to the same tonic and cut to length; a shorter partner is repeated from
    its start in whole bars."""
    shift = (P.parse_key(chorale.key)[0] - P.parse_key(partner.key)[0]) % 12
    other = partner.voices.transpose(shift - 12 if shift > 6 else shift)
    bars = other.pad_to(other.bars * STEPS_PER_BAR)
    while bars.steps < chorale.voices.steps:
        bars = Voices.concat([bars, other.pad_to(other.bars * STEPS_PER_BAR)])
    other = bars.slice(0, chorale.voices.steps)
    p, o = other.pitches.copy(), other.onsets.copy()
    p[:, voice], o[:, voice] = chorale.voices.pitches[:, voice], chorale.voices.onsets[:, voice]
    return Voices(p, o)


def mismatched_row(chorales: list[Chorale], seed: int = 0) -> Make:
    """A `make` giving each chorale the lower voices of another chorale of its mode."""
    rng = np.random.default_rng(seed)
    partner: dict[str, Chorale] = {}
    for mode in P.MODES:
        group = [c for c in chorales if P.parse_key(c.key)[1] == mode]
        if len(group) < 2:
            continue
        shift = 1 + rng.permutation(len(group) - 1)[0]  # a rotation: nobody keeps their own
        order = rng.permutation(len(group))
        for k, i in enumerate(order):
            partner[group[i].name] = group[order[(k + shift) % len(group)]]

    def make(ch: Chorale, v: int) -> Voices:
        if ch.name not in partner:
            raise MelodyError(f"no other {P.parse_key(ch.key)[1]} chorale to take voices from")
        return mismatched(ch, partner[ch.name], v)

    return make


def run_row(make: Make, chorales: list[Chorale], voice: int, tick=None) -> tuple[dict, dict]:
    """piece_stats of `make` on each chorale -> ({name: stats}, {name: why skipped})."""
    stats, skipped = {}, {}
    for ch in chorales:
        try:
            stats[ch.name] = chorale_stats(ch, make(ch, voice))
        except MelodyError as err:  # too long, out of range, a voice it does not take
            skipped[ch.name] = str(err)
        if tick:
            tick()
    return stats, skipped


def row_result(stats: dict, skipped: dict, bach: dict, reference: dict, given: int, seed: int):
    """Every figure of a row whose pieces harmonize the same melodies as `bach`'s."""
    names = [n for n in bach if n in stats]
    mine, his = [stats[n] for n in names], [bach[n] for n in names]
    dist = C.distances(mine, reference)
    return {
        "pieces": len(names),
        "skipped": skipped,
        **C.key_agreement(mine, his),
        **C.figures(mine),
        "distances": dist,
        "summary": C.summary(dist, given) if dist else {},
        "classifier": C.classify(his, mine, given, paired=True, seed=seed) if names else {},
    }


def _draw(train: list[dict], need: dict[str, int], rng) -> tuple[list[int], list[int]]:
    """Two disjoint sets of training pieces, each with `need[mode]` pieces of each mode."""
    a, b = [], []
    for mode, n in need.items():
        pool = [i for i, s in enumerate(train) if C.mode_of(s) == mode]
        pick = rng.choice(pool, size=min(2 * n, len(pool)), replace=False).tolist()
        a, b = a + pick[:n], b + pick[n : 2 * n]
    return a, b


def _mean_classifier(runs: list[dict]) -> dict:
    """Accuracy averaged over draws; the interval is that of one draw's pieces."""
    out = {}
    for kind in runs[0]:
        n = runs[0][kind]["n"]
        acc = float(np.mean([r[kind]["accuracy"] for r in runs]))
        low, high = C.wilson(round(acc * n), n)
        out[kind] = {"accuracy": acc, "low": low, "high": high, "n": n, "draws": len(runs)}
    return out


def floor_row(train: list[dict], split: list[dict], given: int, draws: int, seed: int) -> dict:
    """Bach vs Bach: for each draw, training chorales with the split's mode mix against the
    other training chorales (distances, figures) and against as many other ones (the
    classifier, one k-fold split per draw, at most 5 draws). Means over draws;
    'distances_sd' is the spread of the distances over draws."""
    need = {m: sum(C.mode_of(s) == m for s in split) for m in P.MODES}
    dists, figs, runs = [], [], []
    for r in range(draws):
        a_idx, b_idx = _draw(train, need, np.random.default_rng(seed + r))
        a, taken = [train[i] for i in a_idx], set(a_idx)
        dists.append(C.distances(a, by_mode([s for i, s in enumerate(train) if i not in taken])))
        figs.append(C.figures(a))
        if r < 5:
            b = [train[i] for i in b_idx]
            runs.append(C.classify(a, b, given, paired=False, seed=seed + r, repeats=1))
    dist = {k: float(np.nanmean([d[k] for d in dists])) for k in dists[0]}
    return {
        "pieces": len(a_idx),
        "skipped": {},
        "draws": draws,
        "mode_kept": None,
        "key_kept": None,
        **{k: float(np.nanmean([f[k] for f in figs])) for k in figs[0]},
        "distances": dist,
        "distances_sd": {k: float(np.nanstd([d[k] for d in dists])) for k in dists[0]},
        "summary": C.summary(dist, given),
        "classifier": _mean_classifier(runs),
    }


# ---------------------------------------------------------------- built-in tunes


def tune_results(makers: dict[str, Make], voices, tick=None) -> dict:
    """The built-in tunes under each model row: key and mode of the result against the
    tune's own key (`piece_stats.melody_key`), ending on that tonic, bass repeats,
    parallels. No Bach harmonization exists to compare with."""
    from bachgan.melody import BUILTIN_TUNES, builtin_tune

    out: dict = {}
    for v in voices:
        for row, make in makers.items():
            per_tune = {}
            for name in BUILTIN_TUNES:
                melody = builtin_tune(name, v)
                tonic, mode = P.melody_key(melody)
                four = Voices.empty(melody.steps)
                p, o = four.pitches.copy(), four.onsets.copy()
                p[:, v], o[:, v] = melody.pitches[:, 0], melody.onsets[:, 0]
                tune = Chorale(name, Voices(p, o), P.m21_key_name(tonic, mode))
                try:
                    s = P.piece_stats(make(tune, v), tonic, mode, None)
                except MelodyError as err:
                    per_tune[name] = {"skipped": str(err)}
                    continue
                finally:
                    if tick:
                        tick()
                fig = C.figures([s])
                per_tune[name] = {
                    "tune_key": [tonic, mode],
                    "result_key": [int(s["key"][0]), P.MODES[int(s["key"][1])]],
                    "mode_kept": bool(s["key"][1] == P.MODES.index(mode)),
                    "key_kept": bool(s["key"][0] == tonic and s["key"][1] == P.MODES.index(mode)),
                    "ends_on_tonic": bool(s["ends_on_tonic"]),
                    "bass_repeats": fig["bass_repeats"],
                    "parallels_per_100": fig["parallels_per_100"],
                }
            out.setdefault(VOICE_NAMES[v], {})[row] = per_tune
    return out


# ---------------------------------------------------------------- the evaluation


def evaluate_whole(
    harmonizer=None,
    split: str = "valid",
    voices=(0,),
    seed: int = 0,
    progress=None,
    rows: dict[str, Make] | None = None,
    draws: int = 10,
    corpus=None,
    max_chorales: int | None = None,
) -> dict:
    """The whole-piece evaluation of a harmonizer (its `model_rows`) and/or of `rows`
    (name -> make(chorale, voice) -> Voices) on a split's chorales, each voice in
    `voices` given in turn. Returns a JSON-able dict (see `tables`). `progress(done,
    total)` is called after every harmonization. `max_chorales`: the split's first ones
    only (a quick look; the figures need them all)."""
    started = time.perf_counter()
    voices = [voice_index(v) for v in voices]
    corpus = corpus or data.load_corpus()
    chorales = corpus.chorales(split)[:max_chorales]
    makers = dict(model_rows(harmonizer, seed) if harmonizer is not None else {})
    makers.update(rows or {})
    total = len(voices) * ((len(makers) + 1) * len(chorales) + len(makers) * 5)
    done = [0]

    def tick():
        done[0] += 1
        if progress:
            progress(done[0], total)

    train = reference_stats(corpus)
    reference = by_mode(train)
    bach = {ch.name: chorale_stats(ch) for ch in chorales}
    by_voice = {}
    for v in voices:
        rows_out = {BACH: row_result(bach, {}, bach, reference, v, seed)}
        rows_out[FLOOR] = floor_row(train, list(bach.values()), v, draws, seed)
        named = {MISMATCHED: mismatched_row(chorales, seed), **makers}
        for name, make in named.items():
            stats, skipped = run_row(make, chorales, v, tick)
            rows_out[name] = row_result(stats, skipped, bach, reference, v, seed)
        by_voice[VOICE_NAMES[v]] = {"rows": rows_out}
    card = getattr(harmonizer, "card", None) or {}
    result = {
        "split": split,
        "chorales": [ch.name for ch in chorales],
        "voices": [VOICE_NAMES[v] for v in voices],
        "seed": seed,
        "model": {
            **{k: card.get(k) for k in ("path", "run", "iteration")},
            "preset": harmonizer.preset.name,
        }
        if card
        else None,
        "reference": {
            "split": "train",
            "pieces": {m: sum(C.mode_of(s) == m for s in train) for m in P.MODES},
            "features_version": FEATURES_VERSION,
        },
        "distance_units": C.UNITS,
        "by_voice": by_voice,
        "tunes": tune_results(makers, voices, tick),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return jsonable(result)


def jsonable(x):
    """numpy scalars and arrays as Python numbers and lists, NaN as None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    return x


def write_json(result: dict, path) -> None:
    """The result as JSON (NaN as null), written atomically."""
    from bachgan.runs_io import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(jsonable(result), indent=1) + "\n").encode())
