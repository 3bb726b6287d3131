"""Per-piece features of a whole four-voice chorale, for the whole-piece evaluation.

The 2-bar window metrics (`bachgan.metrics`) cannot see what makes a whole piece sound
like Bach: its key, its phrase endings, the shape of each line over many bars. This
module counts those things for one piece, given the piece's key and its phrase ends
(the chorale's fermatas), as histograms of counts that pool over pieces by adding:

- per voice: scale degrees (pitch class above the tonic, per note), directed melodic
  intervals between successive notes (-12..+12 semitones, clipped; a repeated pitch is
  the 0 bin), note durations in sixteenths, and register (MIDI pitch, per note);
- per adjacent voice pair (S-A, A-T, T-B): spacing in semitones on every 8th note;
- per sonority, sampled on every 8th note so that long chords weigh more than passing
  16ths: chord quality (`QUALITIES`);
- per phrase end (the start of each run of the fermata mask): the cadence (`CADENCES`),
  read from the chord roots and the given key, and whether it closes V-I in any key
  (Bach's phrases often end in a related key): 'local_authentic' counts those, 'closed'
  the phrase ends that are either (or a half cadence); whether the piece ends on the tonic;
- parallel 5ths/8ves and voice-pair motions, by `bachgan.metrics`' definition;
- the key of all four voices by music21's analysis (`analyze_key`).

Everything is counted the same way for Bach and for any harmonization, so only the
comparison (`bachgan.whole_eval`) decides what is "far".
"""

from __future__ import annotations

import functools

import numpy as np

from bachgan import metrics
from bachgan.context import m21_key_name, parse_key  # noqa: F401 (part of this module's API)
from bachgan.voices import STEPS_PER_BAR, Voices

MODES = ("major", "minor")

INTERVAL_LIMIT = 12  # melodic intervals are clipped to +-12 semitones
DURATION_BINS = (1, 2, 3, 4, 6, 8, 12, 16)  # a duration falls into the first bin >= it
DURATION_LABELS = ("1", "2", "3", "4", "5-6", "7-8", "9-12", "13+")
REGISTER = (28, 91)  # MIDI pitches, clipped: the mid preset's range
SPACING = (-6, 30)  # semitones between adjacent voices, clipped (negative: crossed)
PAIRS = ((0, 1), (1, 2), (2, 3))
PAIR_NAMES = ("soprano-alto", "alto-tenor", "tenor-bass")

QUALITIES = (
    "major",
    "minor",
    "diminished",
    "augmented",
    "dominant 7th",
    "other 7th",
    "incomplete",
    "non-chord",
)
CADENCES = ("authentic", "half", "plagal", "deceptive", "other")
CADENCE_LOOKBACK = STEPS_PER_BAR  # the chord before a phrase end lies at most a bar earlier

# Chord shapes (intervals above the root) in the order a root is looked for: triads
# before sevenths, so that a complete triad is never read as a seventh chord.
TRIADS = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8)}
SEVENTHS = {
    "dominant 7th": (0, 4, 7, 10),
    "minor 7th": (0, 3, 7, 10),
    "half-diminished 7th": (0, 3, 6, 10),
    "major 7th": (0, 4, 7, 11),
    "diminished 7th": (0, 3, 6, 9),
}


# ---------------------------------------------------------------- keys


def _ranked_keys(voices: Voices) -> list[tuple[int, str]]:
    """music21's key analysis (its default, Aarden-Essen profiles on the duration-weighted
    pitch classes): all 24 keys, best first. The same analysis gave the corpus its keys;
    a flat stream of notes is enough for it, no parts or measures."""
    from music21 import note, stream

    s = stream.Stream()
    for i in range(voices.n_voices):
        for start, end, pitch in voices.notes(i):
            s.insert(start / 4, note.Note(pitch, quarterLength=(end - start) / 4))
    if not s.notes:
        raise ValueError("no notes to analyze")
    best = s.analyze("key")
    ranked = [best, *best.alternateInterpretations]
    ranked.sort(key=lambda k: -k.correlationCoefficient)
    return [(int(k.tonic.pitchClass), str(k.mode)) for k in ranked]


def analyze_key(voices: Voices) -> tuple[int, str]:
    """music21's key of all voices together: (tonic pitch class, mode)."""
    return _ranked_keys(voices)[0]


def melody_key(melody: Voices) -> tuple[int, str]:
    """The key of a lone tune: music21's best-ranked key whose tonic is the tune's last
    note. A melody alone says little (Ein feste Burg's few bars rank G major above D
    major), while hymn and folk tunes end on their tonic."""
    notes = melody.notes(0)
    if not notes:
        raise ValueError("no notes to analyze")
    last = notes[-1][2] % 12
    ranked = _ranked_keys(melody.voice(0))
    return next((k for k in ranked if k[0] == last), ranked[0])


# ---------------------------------------------------------------- chords


def _mask(pcs) -> int:
    return sum(1 << (p % 12) for p in set(pcs))


def _pcs(mask: int) -> list[int]:
    return [p for p in range(12) if mask >> p & 1]


def _shape(root: int, shape) -> int:
    return _mask(root + d for d in shape)


@functools.cache
def chord_root(mask: int, bass_pc: int) -> tuple[int | None, str]:
    """Root and shape of a sonority (a 12-bit pitch-class mask), the bass's root first.

    Complete triads, then complete sevenths; three pitch classes that are a seventh chord
    missing its fifth (or third) keep that seventh's name; one or two pitch classes
    ('incomplete') take the bass as root when the other note is a third, fifth, octave or
    seventh above it, else the upper note when the bass is its third or fifth. Anything
    else is (None, 'non-chord')."""
    pcs = _pcs(mask)
    if not pcs:
        return None, "non-chord"
    roots = [bass_pc] + [p for p in pcs if p != bass_pc]
    for shapes in (TRIADS, SEVENTHS):
        for name, shape in shapes.items():
            for r in roots:
                if mask == _shape(r, shape):
                    return r, name
    if len(pcs) == 3:
        for name, shape in SEVENTHS.items():
            for r in roots:
                # root and seventh present, the rest inside the chord
                if mask & ~_shape(r, shape) == 0 and mask >> ((r + shape[3]) % 12) & 1:
                    if r in pcs:
                        return r, name
    if len(pcs) <= 2:
        other = [p for p in pcs if p != bass_pc]
        if not other or (other[0] - bass_pc) % 12 in (3, 4, 7, 10):
            return bass_pc, "incomplete"
        if (bass_pc - other[0]) % 12 in (3, 4, 7):
            return other[0], "incomplete"
    return None, "non-chord"


def chord_quality(mask: int, bass_pc: int, sounding: int) -> str:
    """One of `QUALITIES`: fewer than three voices or pitch classes is 'incomplete'."""
    if sounding < 3 or len(_pcs(mask)) < 3:
        return "incomplete"
    _, name = chord_root(mask, bass_pc)
    if name in TRIADS or name in ("dominant 7th", "non-chord"):
        return name
    return "other 7th"


def sonorities(voices: Voices) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step: pitch-class mask, lowest sounding pitch (-1 if none), voices sounding."""
    p = voices.pitches.astype(np.int32)
    s = p >= 0
    bits = np.where(s, 1 << np.where(s, p % 12, 0), 0)
    mask = np.bitwise_or.reduce(bits, axis=1)
    lowest = np.where(s, p, 1000).min(axis=1)
    return mask, np.where(lowest < 1000, lowest, -1), s.sum(axis=1)


# ---------------------------------------------------------------- cadences


def phrase_ends(fermatas) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a fermata mask: one per phrase end."""
    f = np.asarray(fermatas, bool).astype(np.int8)
    edges = np.diff(np.concatenate([[0], f, [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _root_at(mask, lowest, t) -> int | None:
    if lowest[t] < 0:
        return None
    return chord_root(int(mask[t]), int(lowest[t]) % 12)[0]


def cadence_chords(voices: Voices, start: int, stop: int, son=None) -> tuple:
    """The steps of (chord before, chord at) the phrase end that starts at `start`.

    The chord at the end is the first sonority with a root in the fermata run (a
    suspension at its start is skipped); the chord before is the last sonority within a
    bar before the run whose root differs from it, so a repeated or re-voiced final chord
    or a passing sonority without a root does not hide the progression. Either is None
    where there is no such chord. `son` is `sonorities(voices)`, when already computed."""
    mask, lowest, _ = son or sonorities(voices)
    end = next((t for t in range(start, stop) if _root_at(mask, lowest, t) is not None), None)
    if end is None:
        return None, None
    final = _root_at(mask, lowest, end)
    for t in range(start - 1, max(start - CADENCE_LOOKBACK, 0) - 1, -1):
        root = _root_at(mask, lowest, t)
        if root is not None and root != final:
            return t, end
    return None, end


def _has(mask, t: int, pc: int) -> bool:
    return bool(int(mask[t]) >> (pc % 12) & 1)


def classify_cadence(voices: Voices, start: int, stop: int, tonic: int, mode: str, son=None):
    """One of `CADENCES` for the phrase end at fermata run [start, stop), in the given key.

    authentic: V(7) -> I/i with the leading tone (tonic - 1) sounding in the V chord (so
    V-i in minor needs the raised 7th); half: the phrase ends on a chord rooted on the
    5th degree; plagal: IV/iv -> I/i; deceptive: V -> vi (major) or VI (minor)."""
    mask, lowest, _ = son = son or sonorities(voices)
    before, at = cadence_chords(voices, start, stop, son)
    if at is None:
        return "other"
    final = (_root_at(mask, lowest, at) - tonic) % 12
    if final == 7:
        return "half"
    if before is None:
        return "other"
    prev = (_root_at(mask, lowest, before) - tonic) % 12
    if prev == 7 and final == 0 and _has(mask, before, tonic + 11):
        return "authentic"
    if prev == 5 and final == 0:
        return "plagal"
    if prev == 7 and final == (9 if mode == "major" else 8):
        return "deceptive"
    return "other"


def closes_on_own_dominant(voices: Voices, start: int, stop: int, son=None) -> bool:
    """The phrase end's chord is approached by its own dominant (root a fifth above, with
    the leading tone of the arrival sounding): an authentic cadence in whatever key the
    phrase ends, as most of Bach's phrases that modulate close."""
    mask, lowest, _ = son = son or sonorities(voices)
    before, at = cadence_chords(voices, start, stop, son)
    if before is None or at is None:
        return False
    final = _root_at(mask, lowest, at)
    prev = _root_at(mask, lowest, before)
    return (prev - final) % 12 == 7 and _has(mask, before, final + 11)


def ends_on_tonic(voices: Voices, tonic: int) -> bool:
    """The last sonority is the tonic triad (either third, or none) over the tonic in the
    bass voice: a piece that ends on I/i, not on a chord with a stray note."""
    mask, _, count = sonorities(voices)
    sounding = np.flatnonzero(count > 0)
    if not len(sounding):
        return False
    t = sounding[-1]
    bass = int(voices.pitches[t, -1])
    triad = _mask(tonic + d for d in (0, 3, 4, 7))
    return bass >= 0 and bass % 12 == tonic and int(mask[t]) & ~triad == 0


# ---------------------------------------------------------------- per voice


def _moves(notes) -> list[int]:
    """Directed intervals between successive notes that follow without a rest."""
    return [b[2] - a[2] for a, b in zip(notes, notes[1:]) if a[1] == b[0]]


def voice_counts(voices: Voices, i: int, tonic: int) -> dict[str, np.ndarray]:
    """Scale degrees, melodic intervals, durations and register of voice i, as counts."""
    notes = voices.notes(i)
    pitches = np.array([n[2] for n in notes], np.int64)
    lengths = np.array([n[1] - n[0] for n in notes], np.int64)
    moves = np.clip(np.array(_moves(notes), np.int64), -INTERVAL_LIMIT, INTERVAL_LIMIT)
    lo, hi = REGISTER
    return {
        "scale_degrees": np.bincount((pitches - tonic) % 12, minlength=12),
        "intervals": np.bincount(moves + INTERVAL_LIMIT, minlength=2 * INTERVAL_LIMIT + 1),
        "durations": np.bincount(
            np.minimum(np.searchsorted(DURATION_BINS, lengths), len(DURATION_BINS) - 1),
            minlength=len(DURATION_BINS),
        ),
        "register": np.bincount(np.clip(pitches, lo, hi) - lo, minlength=hi - lo + 1),
    }


def spacing_counts(voices: Voices) -> np.ndarray:
    """(3, bins): semitones between S-A, A-T, T-B on every 8th where both sound."""
    p = voices.pitches[:: STEPS_PER_BAR // 8].astype(np.int64)
    lo, hi = SPACING
    out = np.zeros((len(PAIRS), hi - lo + 1), np.int64)
    for k, (a, b) in enumerate(PAIRS):
        both = (p[:, a] >= 0) & (p[:, b] >= 0)
        gap = np.clip(p[both, a] - p[both, b], lo, hi) - lo
        out[k] = np.bincount(gap, minlength=hi - lo + 1)
    return out


def quality_counts(voices: Voices) -> np.ndarray:
    """Chord qualities (`QUALITIES`) of the sonorities on every 8th where a voice sounds."""
    mask, lowest, count = sonorities(voices)
    out = np.zeros(len(QUALITIES), np.int64)
    for t in range(0, voices.steps, STEPS_PER_BAR // 8):
        if count[t]:
            q = chord_quality(int(mask[t]), int(lowest[t]) % 12, int(count[t]))
            out[QUALITIES.index(q)] += 1
    return out


def parallel_counts(voices: Voices) -> np.ndarray:
    """(parallel fifths, parallel octaves, voice-pair motions) of the whole piece, by the
    definition of `bachgan.metrics` (consecutive 16ths, all six voice pairs)."""
    m = metrics.batch_metrics([voices], voices=(1, 2, 3))
    motions = m["n_motions"]
    fifths = round(m["parallel_fifths_per_100"] * motions / 100) if motions else 0
    octaves = round(m["parallel_octaves_per_100"] * motions / 100) if motions else 0
    return np.array([fifths, octaves, int(motions)], np.int64)


# ---------------------------------------------------------------- a piece


def piece_stats(voices: Voices, tonic: int, mode: str, fermatas=None, key=True) -> dict:
    """Every feature of one four-voice piece in the given key, as numpy count arrays.

    `fermatas` is the piece's phrase-end mask (bool per step; None: no phrase ends).
    Per-voice features are stacked (4, bins), voice 0 = soprano. With key=False the
    music21 key analysis (about 20 ms) is skipped and 'key' is (-1, -1)."""
    if voices.n_voices != 4:
        raise ValueError(f"piece_stats needs four voices, got {voices.n_voices}")
    per_voice = [voice_counts(voices, i, tonic) for i in range(4)]
    out = {name: np.stack([c[name] for c in per_voice]) for name in per_voice[0]}
    cadences = np.zeros(len(CADENCES), np.int64)
    local = closed = 0
    son = sonorities(voices)
    for start, stop in phrase_ends(np.zeros(0) if fermatas is None else fermatas):
        if start < voices.steps:
            kind = classify_cadence(voices, start, stop, tonic, mode, son)
            cadences[CADENCES.index(kind)] += 1
            in_any_key = closes_on_own_dominant(voices, start, stop, son)
            local += in_any_key
            closed += in_any_key or kind in ("authentic", "half")
    found = analyze_key(voices) if key else (-1, None)
    out.update(
        spacing=spacing_counts(voices),
        qualities=quality_counts(voices),
        cadences=cadences,
        local_authentic=np.array(local),
        closed=np.array(closed),
        ends_on_tonic=np.array(int(ends_on_tonic(voices, tonic))),
        parallels=parallel_counts(voices),
        given_key=np.array([tonic, MODES.index(mode)]),
        key=np.array([found[0], MODES.index(found[1]) if found[1] else -1]),
    )
    return out
