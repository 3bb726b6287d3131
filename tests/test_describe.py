"""The musician's description of a result, on hand-made chorales whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from bachgan.describe import change_sentence, describe, pitch_name, place, range_sentence
from bachgan.voices import Voices

BEAT = 4  # sixteenths
C_MAJOR = {  # SATB chords (MIDI)
    "I": (72, 67, 64, 48),  # C5 G4 E4 C3
    "IV": (72, 69, 65, 53),  # C5 A4 F4 F3
    "V": (71, 67, 62, 55),  # B4 G4 D4 G3
    "vi": (72, 69, 64, 57),  # C5 A4 E4 A3
    "III#": (71, 68, 64, 52),  # B4 G#4 E4 E3: the dominant of A minor
    "vi_end": (69, 64, 60, 45),  # A4 E4 C4 A2
}


def chords(names: str) -> Voices:
    """Chords by name, a beat each, every chord restarting all four voices."""
    rows = [C_MAJOR[n] for n in names.split() for _ in range(BEAT)]
    onsets = np.zeros((len(rows), 4), bool)
    onsets[::BEAT] = True
    return Voices(np.array(rows, np.int16), onsets)


def fermata_on_last(v: Voices) -> np.ndarray:
    ends = np.zeros(v.steps, bool)
    ends[-BEAT:] = True
    return ends


@pytest.mark.parametrize(
    "names, words",
    [
        ("I IV V I", "full close, V to I (authentic cadence)"),
        ("I IV I V", "half close on the dominant, V (half cadence)"),
        ("I V IV I", "'Amen' close, IV to I (plagal cadence)"),
        ("I IV V vi", "surprise close, V to vi (deceptive cadence)"),
        ("I IV III# vi_end", "full close in another key"),
        ("I V I vi", "no cadence"),
    ],
)
def test_each_phrase_end_is_named_by_its_cadence(names, words):
    v = chords(names)
    text = describe(v, 0, (0, "major"), fermata_on_last(v))
    assert text[0] == "Key: C major."
    assert text[1].startswith("The phrase closes at bar 1, beat 4: "), text[1]
    assert words in text[1], text[1]


def test_two_phrases_are_told_apart_by_bar_and_beat():
    v = chords("I IV I V  I IV V I")
    ends = np.zeros(v.steps, bool)
    ends[3 * BEAT : 4 * BEAT] = ends[7 * BEAT :] = True
    sentence = describe(v, 0, (0, "major"), ends)[1]
    assert sentence.startswith("The 2 phrases close at bar 1, beat 4: a half close")
    assert "bar 2, beat 4: a full close, V to I (authentic cadence)." in sentence


def test_without_phrase_ends_it_says_so():
    v = chords("I IV V I")
    assert "no phrase ends" in describe(v, 0, (0, "major"), None)[1]


def test_notes_are_named_with_sharps_and_flats():
    assert [pitch_name(p) for p in (60, 66, 58, 71)] == ["C4", "F♯4", "B♭3", "B4"]


def test_places_count_bars_and_beats_from_one():
    assert place(0) == "bar 1" and place(16) == "bar 2" and place(20) == "bar 2, beat 2"
    assert place(12, bar_steps=12) == "bar 2"  # a 3/4 bar


def test_ranges_name_the_notes_and_the_given_voice():
    v = chords("I IV V I")
    text = range_sentence(v, given=0)
    assert text == (
        "Ranges: soprano B4 to C5 (your melody); alto G4 to A4; tenor D4 to F4; bass C3 to G3."
    )
    assert "(your melody)" in range_sentence(v, given=3).split(";")[-1]


def test_changes_name_the_voices_and_bars_that_differ():
    before = chords("I IV V I  I IV V I  I IV V I")
    p = before.pitches.copy()
    p[16:20, 1] = 65  # the alto, in bar 2
    p[0:4, 3] = 36  # the bass, in bar 1
    p[40:44, 3] = 43  # and in bar 3
    after = Voices(p, before.onsets)
    text = change_sentence(after, before, given=0)
    assert text == (
        "Against the previous variation, it changed the alto in bar 2 and the bass in "
        "bars 1 and 3; the tenor stayed the same."
    ), text
    assert change_sentence(before, before, 0) == "Against the previous variation: the same notes."
    assert change_sentence(before, None, 0) is None
    assert change_sentence(before, chords("I IV V I"), 0) is None  # another length
    assert describe(after, 0, (0, "major"), None, previous=before)[-1] == text


def test_neighbouring_bars_read_as_a_span():
    before = chords(" ".join(["I IV V I"] * 4))
    p = before.pitches.copy()
    p[16:64, 2] = 50
    assert "the tenor in bars 2-4" in change_sentence(Voices(p, before.onsets), before, 0)
