"""Musical metrics for four-voice results (soprano, alto, tenor, bass).

Everything is vectorised numpy over a batch of equal-length windows, so thousands of
2-bar windows take milliseconds. Each metric is computed as counts (numerator and
denominator); `batch_metrics` sums the counts over the whole batch and divides once
(a ratio of sums, so a window with many motions weighs more than one with few).
A ratio whose denominator is 0 is NaN.

Definitions (T steps of a 16th note, bars of `STEPS_PER_BAR` steps):

- silence/<voice>: share of steps where the voice is silent.
- empty_bars/<voice>: share of bars in which the voice is silent throughout. Bars are
  ceil(T / 16); a trailing partial bar counts as a bar.
- pitch_classes_per_bar/<voice>: distinct pitch classes the voice uses in a bar,
  averaged over all bars (an empty bar counts 0).
- onsets_per_bar/<voice>: note starts (the `onsets` array: a pitch change, a start
  after silence or a repeated note) per bar, bars = T / 16.
- in_range/<voice>: share of the voice's notes (by onset) inside `SATB_RANGES`.
- in_key_rate: share of notes (by onset, all four voices) whose pitch class is in the
  scale of the excerpt's key. The key is Krumhansl-Schmuckler: the duration-weighted
  (sounding steps) pitch-class histogram of all four voices is correlated with the 24
  rotated Krumhansl-Kessler profiles and the best one wins. Major: the major scale;
  minor: natural minor plus raised 6th and 7th (9 pitch classes). in_key/<voice> is
  the same per voice.
- chord_tone_rate: over steps where 3 or more voices sound (counted per step, i.e.
  duration-weighted), the share whose set of sounding pitch classes is a subset of a
  major, minor, diminished or augmented triad or a dominant 7th, major 7th, minor 7th,
  half-diminished or diminished 7th chord. Sets of 1-2 pitch classes (doublings)
  always fit.
- parallel_per_100: for each of the 6 voice pairs, a motion is a pair of consecutive
  steps where both voices sound at both steps and at least one changes pitch (a
  repeated note alone is not a motion). It is a parallel fifth (octave) when both
  voices move in the same direction and the interval between them, mod 12, is 7 (0)
  at both steps: compound intervals and unisons count, hidden/direct fifths and
  contrary fifths do not. Reported per 100 motions over all pairs
  (parallel_fifths_per_100, parallel_octaves_per_100 separately) and per pair
  (parallel_per_100/soprano-alto, ...).
- voice_crossing: over steps where at least one adjacent pair (S-A, A-T, T-B) both
  sound, the share where some sounding adjacent pair is crossed (upper voice strictly
  below the lower one).
- multi_pitch_rate: share of steps where some voice of a raw pianoroll sounds more
  than one pitch (`multi_pitch_rate`). `Voices` hold one pitch per voice, so it is 0
  unless raw rolls are passed to `batch_metrics(..., rolls=...)`.
- <name>_lower: the per-voice metric pooled over the `voices` argument (by default
  alto, tenor, bass: the voices generated under a given soprano). For the step- and
  bar-based metrics this equals the mean over those voices; in_range and in_key pool
  their notes.

Baselines for comparison: `reference` (Bach itself), `shuffled_lower_voices_baseline`
(a soprano with the lower voices of another chorale) and `random_baseline` (a new
random pitch within each voice's SATB range on every 16th step).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import combinations

import numpy as np

from bachgan.voices import (
    PITCH_CLASS_NAMES,
    SATB_RANGES,
    STEPS_PER_BAR,
    VOICE_NAMES,
    Voices,
    voice_index,
)

LOWER_VOICES = (1, 2, 3)

# The quality table's metrics: (key, label), in the order tables show them.
HEADLINE: list[tuple[str, str]] = [
    ("chord_tone_rate", "chord-tone rate (sonorities of 3+ voices fitting a triad/7th)"),
    ("parallel_per_100", "parallel 5ths/8ves per 100 voice-pair motions"),
    ("voice_crossing", "voice crossing (share of steps)"),
    ("in_key_rate", "in-key rate (Krumhansl key of the excerpt; minor admits raised 6/7)"),
    ("onsets_per_bar_lower", "onsets per bar per lower voice"),
    ("silence_lower", "silence in lower voices"),
    ("multi_pitch_rate", "steps where a voice sounds > 1 pitch"),
]

# Their targets: inclusive (low, high) bounds.
TARGETS: dict[str, tuple[float, float]] = {
    "chord_tone_rate": (0.80, math.inf),
    "parallel_per_100": (-math.inf, 0.5),
    "voice_crossing": (-math.inf, 0.05),
    "in_key_rate": (0.93, math.inf),
    "onsets_per_bar_lower": (3.0, 6.0),
    "silence_lower": (-math.inf, 0.05),
    "multi_pitch_rate": (-math.inf, 0.02),
}


def target_text(key: str) -> str:
    """A target as the tables print it: '>= 0.80', '<= 0.5' or '3 to 6'."""
    lo, hi = TARGETS[key]
    if math.isinf(hi):
        return f">= {lo:.2f}"
    if math.isinf(lo):
        return f"<= {hi:g}"
    return f"{lo:g} to {hi:g}"


PAIRS = tuple(combinations(range(len(VOICE_NAMES)), 2))
PAIR_NAMES = tuple(f"{VOICE_NAMES[i]}-{VOICE_NAMES[j]}" for i, j in PAIRS)

# ------------------------------------------------------------------ tables

# Krumhansl-Kessler key profiles, index 0 = tonic.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)  # natural + harmonic + melodic minor

CHORD_TYPES = {
    "major": (0, 4, 7),
    "minor": (0, 3, 7),
    "diminished": (0, 3, 6),
    "augmented": (0, 4, 8),
    "dominant 7th": (0, 4, 7, 10),
    "major 7th": (0, 4, 7, 11),
    "minor 7th": (0, 3, 7, 10),
    "half-diminished 7th": (0, 3, 6, 10),
    "diminished 7th": (0, 3, 6, 9),
}


def _zscore(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    return x / np.where(norm > 0, norm, 1.0)


# Row k < 12: major key on tonic k; row 12 + k: minor key on tonic k.
_KEY_PROFILES = _zscore(
    np.stack([np.roll(KK_MAJOR, k) for k in range(12)] + [np.roll(KK_MINOR, k) for k in range(12)])
)
_KEY_SCALES = np.zeros((24, 12), bool)
for _k in range(12):
    _KEY_SCALES[_k, [(_k + d) % 12 for d in MAJOR_SCALE]] = True
    _KEY_SCALES[12 + _k, [(_k + d) % 12 for d in MINOR_SCALE]] = True


def _chord_table() -> np.ndarray:
    """fits[mask] for every 12-bit pitch-class set: a subset of some triad/7th chord."""
    chords = {
        sum(1 << ((root + d) % 12) for d in shape)
        for shape in CHORD_TYPES.values()
        for root in range(12)
    }
    masks = np.arange(4096)
    fits = np.zeros(4096, bool)
    for c in chords:
        fits |= (masks & ~c) == 0
    return fits


CHORD_FITS = _chord_table()
_BITS = (1 << np.arange(12)).astype(np.int32)
_RANGE_LOW = np.array([SATB_RANGES[n][0] for n in VOICE_NAMES])
_RANGE_HIGH = np.array([SATB_RANGES[n][1] for n in VOICE_NAMES])


# ------------------------------------------------------------------ counting


def _normalise(pitches, onsets=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, 4) int pitches and bool onsets, with the same onset rules as `Voices`."""
    p = np.asarray(pitches).astype(np.int32)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[2] != len(VOICE_NAMES):
        raise ValueError(f"expected (windows, steps, 4) pitches (SATB), got {p.shape}")
    s = p >= 0
    o = np.zeros(p.shape, bool) if onsets is None else np.asarray(onsets, bool).reshape(p.shape)
    prev = np.concatenate([np.full_like(p[:, :1], -1), p[:, :-1]], axis=1)
    return p, (o & s) | (s & (p != prev))


def _counts(p: np.ndarray, o: np.ndarray) -> dict[str, np.ndarray]:
    """Numerators and denominators of every metric for a batch of equal-length windows."""
    n, t, v = p.shape
    s = p >= 0
    pc = np.where(s, p % 12, 0)
    onehot = (pc[..., None] == np.arange(12)) & s[..., None]  # (N, T, V, 12)
    c: dict[str, np.ndarray] = {"windows": np.array(n), "steps": np.array(n * t)}

    # Per voice: silence, onsets, bars.
    c["silent"] = (~s).sum(axis=(0, 1))
    c["onsets"] = o.sum(axis=(0, 1))
    c["bar_units"] = np.array(n * t / STEPS_PER_BAR)
    n_bars = -(-t // STEPS_PER_BAR)
    pad = n_bars * STEPS_PER_BAR - t
    if pad:
        onehot_b = np.concatenate([onehot, np.zeros((n, pad, v, 12), bool)], axis=1)
    else:
        onehot_b = onehot
    bar_pcs = onehot_b.reshape(n, n_bars, STEPS_PER_BAR, v, 12).any(axis=2)  # (N, B, V, 12)
    used = bar_pcs.sum(axis=-1)  # (N, B, V)
    c["bars"] = np.array(n * n_bars)
    c["empty_bars"] = (used == 0).sum(axis=(0, 1))
    c["bar_pitch_classes"] = used.sum(axis=(0, 1))

    # Range, by note.
    inside = (p >= _RANGE_LOW) & (p <= _RANGE_HIGH)
    c["in_range"] = (o & inside).sum(axis=(0, 1))

    # Key of each window (duration-weighted histogram of all voices), in-key notes.
    hist = onehot.sum(axis=(1, 2)).astype(float)  # (N, 12)
    key = (_zscore(hist) @ _KEY_PROFILES.T).argmax(axis=1)  # (N,)
    scale = _KEY_SCALES[key]  # (N, 12)
    in_scale = np.take_along_axis(scale[:, None, :], pc.reshape(n, -1)[:, :, None], axis=2)
    in_scale = in_scale.reshape(n, t, v)
    c["in_key"] = (o & in_scale).sum(axis=(0, 1))

    # Chord tones, per step with 3+ sounding voices.
    mask = (onehot.any(axis=2) * _BITS).sum(axis=-1)  # (N, T)
    full = s.sum(axis=2) >= 3
    c["chord_steps"] = np.array(full.sum())
    c["chord_fits"] = np.array((full & CHORD_FITS[mask]).sum())

    # Parallel fifths / octaves per voice pair.
    both = s[:, 1:] & s[:, :-1]  # voice sounds at t-1 and t
    d = np.sign(p[:, 1:] - p[:, :-1])
    motions, fifths, octaves = [], [], []
    for i, j in PAIRS:
        ok = both[..., i] & both[..., j]
        moving = ok & ((d[..., i] != 0) | (d[..., j] != 0))
        similar = moving & (d[..., i] == d[..., j])
        iv = np.abs(p[..., i] - p[..., j]) % 12
        before, after = iv[:, :-1], iv[:, 1:]
        motions.append(moving.sum())
        fifths.append((similar & (before == 7) & (after == 7)).sum())
        octaves.append((similar & (before == 0) & (after == 0)).sum())
    c["motions"], c["fifths"], c["octaves"] = map(np.array, (motions, fifths, octaves))

    # Crossing of adjacent voices.
    adj = s[..., :-1] & s[..., 1:]  # (N, T, 3)
    crossed = adj & (p[..., :-1] < p[..., 1:])
    c["crossing_steps"] = np.array(adj.any(axis=2).sum())
    c["crossed"] = np.array(crossed.any(axis=2).sum())
    return c


def _ratio(num, den) -> float:
    num, den = float(num), float(den)
    return num / den if den > 0 else math.nan


def _finish(c: dict[str, np.ndarray], voices: Sequence[int], multi: tuple[int, int]) -> dict:
    sel = list(voices)
    m: dict[str, float] = {
        "chord_tone_rate": _ratio(c["chord_fits"], c["chord_steps"]),
        "parallel_per_100": 100
        * _ratio(c["fifths"].sum() + c["octaves"].sum(), c["motions"].sum()),
        "parallel_fifths_per_100": 100 * _ratio(c["fifths"].sum(), c["motions"].sum()),
        "parallel_octaves_per_100": 100 * _ratio(c["octaves"].sum(), c["motions"].sum()),
        "voice_crossing": _ratio(c["crossed"], c["crossing_steps"]),
        "in_key_rate": _ratio(c["in_key"].sum(), c["onsets"].sum()),
        "multi_pitch_rate": _ratio(*multi) if multi[1] else 0.0,
    }
    per_voice = {
        "onsets_per_bar": (c["onsets"], c["bar_units"]),
        "silence": (c["silent"], c["steps"]),
        "empty_bars": (c["empty_bars"], c["bars"]),
        "pitch_classes_per_bar": (c["bar_pitch_classes"], c["bars"]),
        "in_range": (c["in_range"], c["onsets"]),
        "in_key": (c["in_key"], c["onsets"]),
    }
    for name, (num, den) in per_voice.items():
        den_v = np.broadcast_to(den, num.shape)
        m[f"{name}_lower"] = _ratio(num[sel].sum(), den_v[sel].sum()) if sel else math.nan
    for name, (num, den) in per_voice.items():
        den_v = np.broadcast_to(den, num.shape)
        for k, voice in enumerate(VOICE_NAMES):
            m[f"{name}/{voice}"] = _ratio(num[k], den_v[k])
    for k, pair in enumerate(PAIR_NAMES):
        par = c["fifths"][k] + c["octaves"][k]
        m[f"parallel_per_100/{pair}"] = 100 * _ratio(par, c["motions"][k])
    m["n_windows"] = float(c["windows"])
    m["n_steps"] = float(c["steps"])
    m["n_notes"] = float(c["onsets"].sum())
    m["n_motions"] = float(c["motions"].sum())
    m["n_chord_steps"] = float(c["chord_steps"])
    return m


def _sum_counts(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: sum(p[k] for p in parts) for k in parts[0]}


# ------------------------------------------------------------------ public API


def multi_pitch_counts(roll, threshold: float = 0.0) -> tuple[int, int]:
    """(steps where some voice has more than one pitch on, steps) of a raw pianoroll.

    `roll` is (steps, pitches, voices) or a batch (N, steps, pitches, voices), in
    {-1, +1} or scores/probabilities; a cell is on when it exceeds `threshold` (0 for
    {-1, +1} and tanh/logit outputs, use 0.5 for sigmoid probabilities). A list of
    rolls of different lengths is pooled.
    """
    if isinstance(roll, (list, tuple)):
        parts = [multi_pitch_counts(x, threshold) for x in roll]
        return sum(a for a, _ in parts), sum(b for _, b in parts)
    r = np.asarray(roll)
    if r.ndim == 3:
        r = r[None]
    if r.ndim != 4:
        raise ValueError(f"expected a (steps, pitches, voices) roll or a batch, got {r.shape}")
    many = ((r > threshold).sum(axis=2) > 1).any(axis=-1)  # (N, steps)
    return int(many.sum()), int(many.size)


def multi_pitch_rate(roll, threshold: float = 0.0, per_voice: bool = False):
    """Share of steps where a voice sounds more than one pitch (see `multi_pitch_counts`).

    With per_voice=True, an array with the share of steps for each voice instead.
    """
    if not per_voice:
        return _ratio(*multi_pitch_counts(roll, threshold))
    r = np.asarray(roll)
    r = r[None] if r.ndim == 3 else r
    many = (r > threshold).sum(axis=2) > 1  # (N, steps, voices)
    return many.reshape(-1, many.shape[-1]).mean(axis=0)


def metrics_from_arrays(
    pitches,
    onsets=None,
    voices: Sequence[int | str] = LOWER_VOICES,
    rolls=None,
    roll_threshold: float = 0.0,
) -> dict[str, float]:
    """`batch_metrics` on arrays: pitches (N, T, 4) (-1 = silence), optional onsets.

    Without onsets, a note starts where the pitch changes or sounds after silence.
    """
    p, o = _normalise(pitches, onsets)
    multi = multi_pitch_counts(rolls, roll_threshold) if rolls is not None else (0, 0)
    sel = [voice_index(x) for x in voices]
    return _finish(_counts(p, o), sel, multi)


def batch_metrics(
    batch: Iterable[Voices],
    voices: Sequence[int | str] = LOWER_VOICES,
    rolls=None,
    roll_threshold: float = 0.0,
) -> dict[str, float]:
    """Metrics pooled over a batch of four-voice excerpts (see the module docstring).

    Counts are summed over all windows before dividing (ratio of sums), and the key is
    estimated per window. `voices` selects the voices of the `*_lower` keys. `rolls`
    (raw generator pianorolls, see `multi_pitch_counts`) feed `multi_pitch_rate`;
    without them it is 0, as a `Voices` holds one pitch per voice and step.
    Windows may differ in length (they are grouped by length).
    """
    batch = list(batch)
    if not batch:
        raise ValueError("batch_metrics needs at least one window")
    groups: dict[int, list[Voices]] = {}
    for w in batch:
        if w.n_voices != len(VOICE_NAMES):
            raise ValueError(f"metrics need four voices (SATB), got {w.n_voices}")
        groups.setdefault(w.steps, []).append(w)
    parts = [
        _counts(*_normalise(np.stack([w.pitches for w in g]), np.stack([w.onsets for w in g])))
        for g in groups.values()
    ]
    multi = multi_pitch_counts(rolls, roll_threshold) if rolls is not None else (0, 0)
    sel = [voice_index(x) for x in voices]
    return _finish(_sum_counts(parts), sel, multi)


def window_metrics(
    v: Voices, voices: Sequence[int | str] = LOWER_VOICES, roll=None
) -> dict[str, float]:
    """Metrics of one excerpt (its key estimated from the whole excerpt)."""
    return batch_metrics([v], voices, rolls=roll)


def estimate_key(v: Voices) -> tuple[int, str]:
    """Krumhansl-Schmuckler key of an excerpt: (tonic pitch class, 'major' | 'minor')."""
    p = v.pitches.astype(np.int32)
    s = p >= 0
    hist = np.bincount(p[s] % 12, minlength=12).astype(float)
    k = int((_zscore(hist) @ _KEY_PROFILES.T).argmax())
    return k % 12, "major" if k < 12 else "minor"


def key_name(tonic: int, mode: str) -> str:
    return f"{PITCH_CLASS_NAMES[tonic % 12]} {mode}"


def meets_targets(m: dict[str, float]) -> dict[str, bool]:
    """For each HEADLINE key present in m: whether its value lies within TARGETS."""
    return {
        k: bool(TARGETS[k][0] <= m[k] <= TARGETS[k][1])
        for k, _ in HEADLINE
        if k in m and not math.isnan(m[k])
    }


def headline_table(columns: dict[str, dict[str, float]], digits: int = 2) -> str:
    """Markdown table of the HEADLINE metrics with one column per named result."""
    head = ["metric", "target", *columns]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in HEADLINE:
        cells = []
        for m in columns.values():
            x = m.get(key, math.nan)
            cells.append("n/a" if math.isnan(x) else f"{x:.{digits + (abs(x) < 0.1)}f}")
        rows.append("| " + " | ".join([label, target_text(key), *cells]) + " |")
    return "\n".join(rows)


# ------------------------------------------------------------------ baselines


def reference(windows: Iterable[Voices], voices: Sequence[int | str] = LOWER_VOICES) -> dict:
    """The figures of real chorales (e.g. the test split's windows): batch_metrics on Bach."""
    return batch_metrics(windows, voices)


def random_baseline(
    n: int, rng: np.random.Generator, steps: int = 32, hold: float = 0.0
) -> list[Voices]:
    """n excerpts of random notes: each voice a uniform random pitch in its SATB range.

    Every 16th step draws a new pitch (with probability 1 - hold; otherwise the last
    pitch is held); equal consecutive pitches merge into one note, which gives about
    15.3 onsets per bar for hold=0.
    """
    low = _RANGE_LOW[None, None, :]
    high = _RANGE_HIGH[None, None, :]
    p = rng.integers(low, high + 1, size=(n, steps, len(VOICE_NAMES)))
    if hold > 0:
        redraw = rng.random(p.shape) >= hold
        redraw[:, 0] = True
        idx = np.where(redraw, np.arange(steps)[None, :, None], 0)
        idx = np.maximum.accumulate(idx, axis=1)
        p = np.take_along_axis(p, idx, axis=1)
    return [Voices.from_pitches(x) for x in p]


def shuffled_lower_voices_baseline(
    windows: Sequence[Voices], rng: np.random.Generator, groups: Sequence | None = None
) -> list[Voices]:
    """Each window's soprano with the alto, tenor and bass of another window.

    The partner is a random permutation without fixed points; with `groups` (e.g. the
    chorale name of each window) partners come from a different group whenever the
    shuffle allows. Pairs of different length are cut to the shorter one.
    """
    n = len(windows)
    if n < 2:
        raise ValueError("need at least two windows to shuffle")
    g = np.arange(n) if groups is None else np.asarray(groups)
    perm = rng.permutation(n)
    for _ in range(20):
        clash = np.nonzero(g[perm] == g)[0]
        if not len(clash):
            break
        for i in clash:
            j = int(rng.integers(n))
            # Swap partners when it helps i and does not hurt j.
            if g[perm[j]] != g[i] and g[perm[i]] != g[j]:
                perm[i], perm[j] = perm[j], perm[i]
    out = []
    for i, k in enumerate(perm):
        a, b = windows[i], windows[k]
        t = min(a.steps, b.steps)
        out.append(
            Voices(
                np.hstack([a.pitches[:t, :1], b.pitches[:t, 1:]]),
                np.hstack([a.onsets[:t, :1], b.onsets[:t, 1:]]),
            )
        )
    return out
