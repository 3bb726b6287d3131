"""A harmonization in a musician's words: its key, how its phrases close, its voices'
ranges, and what changed from the previous variation.

The app shows these sentences under a result instead of statistics tables, for people who
read music but not metrics. Cadences are read by `bachgan.piece_stats` (the same reading
the whole-piece evaluation uses), at the phrase ends the harmony was written for. Each
sentence names the musical term (authentic, half, plagal, deceptive cadence) beside the
plain one, so it can be looked up. No Streamlit here: the tests call it directly.
"""

from __future__ import annotations

import numpy as np

from bachgan import piece_stats
from bachgan.context import key_text
from bachgan.voices import STEPS_PER_BAR, STEPS_PER_BEAT, VOICE_NAMES, Voices, note_name

# How each cadence (piece_stats.CADENCES) is said; "other" is told apart further below.
CADENCE_WORDS = {
    "authentic": "a full close, V to I (authentic cadence)",
    "half": "a half close on the dominant, V (half cadence)",
    "plagal": "an 'Amen' close, IV to I (plagal cadence)",
    "deceptive": "a surprise close, V to vi (deceptive cadence)",
}
ELSEWHERE = "a full close in another key (authentic cadence in a related key)"
OPEN = "no cadence"

# The statistics tables' metrics (bachgan.metrics.HEADLINE) in plain words; the technical
# definition stays beside them in the app.
METRIC_WORDS = {
    "chord_tone_rate": "notes that belong to the chord",
    "parallel_per_100": "parallel fifths and octaves (per 100 moves)",
    "voice_crossing": "voices crossing each other",
    "in_key_rate": "notes in the key",
    "onsets_per_bar_lower": "new notes per bar in each lower voice",
    "silence_lower": "rests in the lower voices",
    "multi_pitch_rate": "a voice singing two notes at once",
}


def pitch_name(pitch: int) -> str:
    """A note as musicians write it: 'F♯4', 'B♭3' (`note_name` writes F#4, Bb3)."""
    name = note_name(pitch)
    return name[0] + name[1:].replace("#", "♯").replace("b", "♭")


def place(step: int, bar_steps: int = STEPS_PER_BAR) -> str:
    """Where a step falls: 'bar 3' on a downbeat, else 'bar 3, beat 2'."""
    bar, beat = divmod(step, bar_steps)
    beat //= STEPS_PER_BEAT
    return f"bar {bar + 1}" if beat == 0 else f"bar {bar + 1}, beat {beat + 1}"


def and_list(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def cadences(voices: Voices, tonic: int, mode: str, phrase_ends) -> list[tuple[int, str]]:
    """(step, words) per phrase end: how the harmony closes there, in the given key."""
    if phrase_ends is None:
        return []
    son = piece_stats.sonorities(voices)
    out = []
    for start, stop in piece_stats.phrase_ends(np.asarray(phrase_ends, bool)[: voices.steps]):
        kind = piece_stats.classify_cadence(voices, start, stop, tonic, mode, son)
        if kind in CADENCE_WORDS:
            words = CADENCE_WORDS[kind]
        elif piece_stats.closes_on_own_dominant(voices, start, stop, son):
            words = ELSEWHERE
        else:
            words = OPEN
        out.append((start, words))
    return out


def cadence_sentence(
    voices: Voices, tonic: int, mode: str, phrase_ends, bar_steps: int = STEPS_PER_BAR
) -> str:
    found = cadences(voices, tonic, mode, phrase_ends)
    if not found:
        return "Phrases: no phrase ends were marked or found in the melody."
    parts = [f"{place(step, bar_steps)}: {words}" for step, words in found]
    n = len(found)
    head = "The phrase closes" if n == 1 else f"The {n} phrases close"
    return f"{head} at " + "; ".join(parts) + "."


def range_sentence(voices: Voices, given: int) -> str:
    """Each voice's lowest and highest note, by name (middle C is C4)."""
    parts = []
    for i, name in enumerate(VOICE_NAMES[: voices.n_voices]):
        sounding = voices.pitches[:, i][voices.pitches[:, i] >= 0]
        if not sounding.size:
            parts.append(f"{name} silent")
            continue
        lo, hi = int(sounding.min()), int(sounding.max())
        span = pitch_name(lo) if lo == hi else f"{pitch_name(lo)} to {pitch_name(hi)}"
        parts.append(f"{name} {span}" + (" (your melody)" if i == given else ""))
    return "Ranges: " + "; ".join(parts) + "."


def _bars(steps: np.ndarray, bar_steps: int) -> str:
    """Changed steps as bars: 'bar 2', 'bars 1-3', 'bars 1, 3 and 5-6'."""
    bars = sorted({int(s) // bar_steps + 1 for s in steps})
    runs, start = [], bars[0]
    for a, b in zip(bars, bars[1:] + [None]):
        if b != a + 1:
            runs.append(str(start) if start == a else f"{start}-{a}")
            start = b
    word = "bar" if len(bars) == 1 else "bars"
    return f"{word} {and_list(runs)}"


def change_sentence(
    voices: Voices, previous: Voices | None, given: int, bar_steps: int = STEPS_PER_BAR
) -> str | None:
    """What differs from the previous variation of the same melody, voice by voice and bar
    by bar; None when there is nothing to compare (no previous one, or another length)."""
    if previous is None or previous.pitches.shape != voices.pitches.shape:
        return None
    diff = (voices.pitches != previous.pitches) | (voices.onsets != previous.onsets)
    parts, same = [], []
    for i, name in enumerate(VOICE_NAMES[: voices.n_voices]):
        if i == given:
            continue
        steps = np.flatnonzero(diff[:, i])
        if steps.size:
            parts.append(f"the {name} in {_bars(steps, bar_steps)}")
        else:
            same.append(name)
    if not parts:
        return "Against the previous variation: the same notes."
    text = "Against the previous variation, it changed " + and_list(parts)
    if same:
        text += f"; the {and_list(same)} stayed the same"
    return text + "."


def describe(
    voices: Voices,
    given: int,
    key: tuple[int, str] | None,
    phrase_ends=None,
    previous: Voices | None = None,
    bar_steps: int = STEPS_PER_BAR,
) -> list[str]:
    """Plain sentences about a four-voice harmonization: key, cadences at the phrase ends
    (bool per step, as `bachgan.context.Context.phrase_ends`), ranges, and the changes
    from `previous` (the variation shown before, of the same melody) when there is one."""
    out = []
    if key is not None:
        tonic, mode = key
        out.append(f"Key: {key_text(tonic, mode)}.")
        out.append(cadence_sentence(voices, tonic, mode, phrase_ends, bar_steps))
    out.append(range_sentence(voices, given))
    change = change_sentence(voices, previous, given, bar_steps)
    if change:
        out.append(change)
    return out
