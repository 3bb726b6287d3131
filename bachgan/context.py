"""A melody's context: key, mode, meter and phrase ends, and the planes the model sees.

A harmonization depends on more than the notes of a 2-bar window: the piece's key and
mode (a minor chorale needs the raised leading tone at its cadences), where the phrases
end (the chorales' fermatas, where Bach writes cadences) and where the bar lines and beats
fall (3/4 as well as 4/4). Presets with `context=True` give the generator and the critic
these as CHANNELS extra planes of the condition, beside the melody's pianoroll:

0. scale: pitch rows in the key's scale (major, or harmonic minor with its raised 7th);
1. tonic: pitch rows of the tonic's pitch class;
2. minor: 1 everywhere in a minor key;
3. phrase end: steps under a fermata;
4. downbeat: the first step of each bar;
5. beat: every quarter note.

For the chorales these come from the corpus (music21's key of the whole chorale, its
fermatas, its meter); for a user's melody from `estimate`, which reads them off the melody.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bachgan import metrics
from bachgan.voices import STEPS_PER_BAR, STEPS_PER_BEAT, Voices

CHANNELS = 6
MODES = ("major", "minor")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 11)}
_SCALE_TABLE = np.zeros((2, 12), np.float32)
for _m, _steps in enumerate(SCALES.values()):
    _SCALE_TABLE[_m, list(_steps)] = 1.0
_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
# How much a voice's last note counts in `estimate_key`. A melody (soprano) gets a bonus for
# the key whose tonic it ends on: on the valid chorales that finds the mode 94% and the key
# 83%, where weighing Bach's table of soprano endings finds 89% and 80%. The other voices
# weigh their table (alto, tenor, bass on valid: key 77%, 83%, 86%; the tonic bonus 17%,
# 26%, 83%). Both weights were chosen on the training chorales.
FINAL_TONIC_BONUS = 0.2
FINAL_NOTE_WEIGHT = 0.1


@dataclass(frozen=True, eq=False)
class Context:
    """Key (tonic pitch class 0-11, mode), bar length in 16ths, and phrase ends: bool
    (steps,), True under a fermata (None: no phrase ends known)."""

    tonic: int
    mode: str
    bar_steps: int = STEPS_PER_BAR
    phrase_ends: np.ndarray | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be major or minor, got {self.mode!r}")
        object.__setattr__(self, "tonic", int(self.tonic) % 12)

    @property
    def key(self) -> tuple[int, str]:
        return self.tonic, self.mode

    def transpose(self, semitones: int) -> Context:
        return Context(self.tonic + semitones, self.mode, self.bar_steps, self.phrase_ends)


TONIC_NAMES = ("C", "C♯", "D", "E♭", "E", "F", "F♯", "G", "A♭", "A", "B♭", "B")


def key_text(tonic: int, mode: str) -> str:
    """A key as musicians write it: (3, 'major') -> 'E♭ major'."""
    return f"{TONIC_NAMES[tonic % 12]} {mode}"


def with_key(ctx: Context, tonic: int, mode: str) -> Context:
    """The same context in another key (one a person chose)."""
    return Context(tonic, mode, ctx.bar_steps, ctx.phrase_ends)


def parse_key(name: str) -> tuple[int, str]:
    """music21's key names -> (tonic pitch class, mode): 'f# minor' -> (6, 'minor'),
    'E- major' -> (3, 'major') ('-' is a flat, '#' a sharp)."""
    parts = name.strip().split()
    if len(parts) != 2 or parts[1].lower() not in MODES or not parts[0]:
        raise ValueError(f"not a major or minor key: {name!r}")
    letter, accidentals = parts[0][0].lower(), parts[0][1:]
    if letter not in _LETTERS or set(accidentals) - {"#", "-"}:
        raise ValueError(f"not a key name: {name!r}")
    shift = accidentals.count("#") - accidentals.count("-")
    return (_LETTERS[letter] + shift) % 12, parts[1].lower()


M21_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")


def m21_key_name(tonic: int, mode: str) -> str:
    """(7, 'minor') -> 'g minor', as music21 names keys (and `parse_key` reads)."""
    name = M21_NAMES[tonic % 12]
    return f"{name.lower() if mode == 'minor' else name} {mode}"


def estimate_key(melody: Voices, voice: int = 0) -> tuple[int, str]:
    """The key of one voice alone: Krumhansl-Kessler profiles against its notes' pitch
    classes (counted once per note), plus, for a melody (voice 0), FINAL_TONIC_BONUS for the
    key whose tonic its last note is; for another voice, FINAL_NOTE_WEIGHT times the
    log-probability (over the likeliest's) of its last note's degree in that key for that
    voice in Bach's chorales (`bachgan.style`: a bass ends on the tonic, an alto on the
    fifth, a tenor on the third). On the chorales it finds music21's key of Bach's whole
    harmonization more often than the profiles alone (see tests/test_context.py)."""
    from bachgan import style  # style -> piece_stats -> context: imported when first used

    p, on = melody.pitches[:, 0].astype(np.int32), melody.onsets[:, 0]
    notes = p[on & (p >= 0)]
    if not notes.size:
        return 0, "major"
    hist = np.bincount(notes % 12, minlength=12).astype(float)
    if not hist.std():
        return int(notes[-1] % 12), "major"
    # Pearson correlation with each of the 24 rotated profiles at once (rows: major, minor).
    profiles = np.stack(
        [np.roll(prof, t) for prof in (metrics.KK_MAJOR, metrics.KK_MINOR) for t in range(12)]
    )
    z = lambda x: (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)  # noqa: E731
    r = z(profiles) @ z(hist) / 12
    keys = np.arange(24)
    if voice == 0:
        r += FINAL_TONIC_BONUS * (keys % 12 == notes[-1] % 12)
    else:
        ending = style.load().ending[voice]  # (mode, degree)
        ending = np.log(ending / ending.max(-1, keepdims=True))
        r += FINAL_NOTE_WEIGHT * ending[keys // 12, (notes[-1] - keys) % 12]
    best = int(r.argmax())
    return best % 12, MODES[best // 12]


def guess_phrase_ends(melody: Voices) -> np.ndarray:
    """Phrase ends of a melody without fermatas: its last note, every note followed by a
    rest, and every note on a beat at least twice as long as the melody's usual note."""
    notes = melody.notes(0)
    ends = np.zeros(melody.steps, bool)
    if not notes:
        return ends
    usual = float(np.median([b - a for a, b, _ in notes]))
    for i, (a, b, _) in enumerate(notes):
        last = i == len(notes) - 1
        rest_after = not last and notes[i + 1][0] > b
        long = (b - a) >= 2 * usual and a % STEPS_PER_BEAT == 0
        if last or rest_after or long:
            ends[a:b] = True
    return ends


def estimate(
    melody: Voices, bar_steps: int = STEPS_PER_BAR, phrase_ends=None, voice: int = 0
) -> Context:
    """The context of a user's melody (sung by `voice`): its estimated key, and the given
    phrase ends (else guessed from long notes and rests)."""
    tonic, mode = estimate_key(melody, voice)
    ends = guess_phrase_ends(melody) if phrase_ends is None else np.asarray(phrase_ends, bool)
    return Context(tonic, mode, bar_steps, ends)


def of_chorale(chorale) -> Context:
    """A corpus chorale's context: music21's key of the whole chorale (the melody's estimate
    where the source has none), its meter and its fermatas."""
    try:
        tonic, mode = parse_key(chorale.key)
    except ValueError:
        tonic, mode = estimate_key(chorale.voices.voice(0))
    return Context(tonic, mode, chorale.bar_steps, chorale.fermatas)


# ---------------------------------------------------------------- planes


def time_planes(ctx: Context, steps: int, start: int = 0) -> np.ndarray:
    """(steps, 3) float32: phrase end, downbeat, beat, for steps start .. start + steps."""
    t = np.arange(start, start + steps)
    ends = np.zeros(steps, np.float32)
    if ctx.phrase_ends is not None:
        known = ctx.phrase_ends[start : start + steps]
        ends[: len(known)] = known
    return np.stack([ends, (t % ctx.bar_steps == 0), (t % STEPS_PER_BEAT == 0)], 1).astype(
        np.float32
    )


def key_planes(tonic: int, minor: bool, low: int, n_pitches: int) -> np.ndarray:
    """(n_pitches, 3) float32: scale, tonic, minor, per pitch row."""
    rel = (np.arange(low, low + n_pitches) - tonic) % 12
    return np.stack(
        [_SCALE_TABLE[int(minor)][rel], rel == 0, np.full(n_pitches, float(minor))], 1
    ).astype(np.float32)


def planes(ctx: Context, steps: int, low: int, n_pitches: int) -> np.ndarray:
    """The context planes of a whole melody: (steps, n_pitches, CHANNELS) float32."""
    k = key_planes(ctx.tonic, ctx.mode == "minor", low, n_pitches)
    t = time_planes(ctx, steps)
    return np.concatenate(
        [
            np.broadcast_to(k[None], (steps, n_pitches, 3)),
            np.broadcast_to(t[:, None], (steps, n_pitches, 3)),
        ],
        -1,
    )


def window_table(chorales, hop: int, length: int) -> dict[str, np.ndarray]:
    """Every `length`-step window (start a multiple of `hop`) of the chorales, with what the
    training pipeline needs to build its context planes after transposition: pitches (N, T, 4)
    int16, time planes (N, T, 3) float32, tonic (N,) int32, minor (N,) int32."""
    out = {"pitches": [], "time": [], "tonic": [], "minor": []}
    for ch in chorales:
        ctx = of_chorale(ch)
        for s in range(0, ch.voices.steps - length + 1, hop):
            out["pitches"].append(ch.voices.pitches[s : s + length])
            out["time"].append(time_planes(ctx, length, s))
            out["tonic"].append(ctx.tonic)
            out["minor"].append(int(ctx.mode == "minor"))
    if not out["pitches"]:
        return {
            "pitches": np.zeros((0, length, 4), np.int16),
            "time": np.zeros((0, length, 3), np.float32),
            "tonic": np.zeros(0, np.int32),
            "minor": np.zeros(0, np.int32),
        }
    return {
        "pitches": np.stack(out["pitches"]).astype(np.int16),
        "time": np.stack(out["time"]),
        "tonic": np.array(out["tonic"], np.int32),
        "minor": np.array(out["minor"], np.int32),
    }


def window_context(table: dict[str, np.ndarray], i: int) -> Context:
    """Window i of a `window_table` of bar-aligned 4/4 windows as a Context of its own."""
    mode = "minor" if table["minor"][i] else "major"
    return Context(int(table["tonic"][i]), mode, STEPS_PER_BAR, table["time"][i][:, 0] > 0)


def scale_mask(ctx: Context) -> np.ndarray:
    """Bool (12,): the pitch classes the decoder counts as in key. Minor admits the natural
    and raised 6th and 7th (Bach's minor uses all four)."""
    steps = metrics.MAJOR_SCALE if ctx.mode == "major" else metrics.MINOR_SCALE
    mask = np.zeros(12, bool)
    mask[[(ctx.tonic + s) % 12 for s in steps]] = True
    return mask
