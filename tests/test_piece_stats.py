"""Whole-piece features on hand-made chorales whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from bachgan import piece_stats as P
from bachgan.voices import Voices

BEAT = 4  # sixteenths

# SATB chords (MIDI), G minor and C major.
G_MINOR = {
    "i": (67, 62, 58, 43),  # G4 D4 Bb3 G2
    "iv": (67, 63, 60, 48),  # G4 Eb4 C4 C3
    "V": (66, 62, 57, 50),  # F#4 D4 A3 D3
    "v": (65, 62, 57, 50),  # F4 (no leading tone) D4 A3 D3
    "VI": (67, 63, 58, 51),  # G4 Eb4 Bb3 Eb3
}
C_MAJOR = {
    "I": (72, 67, 64, 48),  # C5 G4 E4 C3
    "IV": (72, 69, 65, 53),  # C5 A4 F4 F3
    "V": (71, 67, 62, 55),  # B4 G4 D4 G3
    "V7": (71, 65, 62, 55),  # B4 F4 D4 G3
    "vi": (72, 69, 64, 57),  # C5 A4 E4 A3
    "I6": (72, 67, 60, 52),  # C5 G4 C4 E3
}


def progression(table: dict, names: str, beats: int = 1) -> Voices:
    """Chords by name, each held `beats` beats; every chord restarts all four voices."""
    rows = [table[n] for n in names.split() for _ in range(beats * BEAT)]
    onsets = np.zeros((len(rows), 4), bool)
    onsets[:: beats * BEAT] = True
    return Voices(np.array(rows, np.int16), onsets)


def last_chord_fermata(v: Voices, beats: int = 1) -> np.ndarray:
    f = np.zeros(v.steps, bool)
    f[-beats * BEAT :] = True
    return f


def cadence(table, names, tonic, mode) -> str:
    v = progression(table, names)
    [(start, stop)] = P.phrase_ends(last_chord_fermata(v))
    return P.classify_cadence(v, start, stop, tonic, mode)


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "name, expected",
    [
        ("f# minor", (6, "minor")),
        ("E- major", (3, "major")),
        ("b- minor", (10, "minor")),
        ("b minor", (11, "minor")),
        ("C major", (0, "major")),
        ("A- major", (8, "major")),
    ],
)
def test_parse_key_reads_music21_names(name, expected):
    assert P.parse_key(name) == expected


@pytest.mark.parametrize("name", ["", "H major", "C dorian", "C"])
def test_parse_key_refuses_what_is_not_a_key(name):
    with pytest.raises(ValueError):
        P.parse_key(name)


def test_a_piece_in_g_minor_is_read_as_g_minor():
    v = progression(G_MINOR, "i iv V i VI iv V i")
    assert P.analyze_key(v) == (7, "minor")


def test_a_piece_in_c_major_is_read_as_c_major():
    v = progression(C_MAJOR, "I IV V I vi IV V7 I")
    assert P.analyze_key(v) == (0, "major")


# ---------------------------------------------------------------- chords


@pytest.mark.parametrize(
    "pcs, bass, root, name",
    [
        ((0, 4, 7), 0, 0, "major"),
        ((0, 4, 7), 4, 0, "major"),  # first inversion: root C, not the bass
        ((9, 0, 4), 9, 9, "minor"),
        ((11, 2, 5), 11, 11, "diminished"),
        ((7, 11, 2, 5), 7, 7, "dominant 7th"),
        ((7, 11, 5), 11, 7, "dominant 7th"),  # V7 without its fifth, in first inversion
        ((0, 7), 0, 0, "incomplete"),  # open fifth over C
        ((0, 4), 4, 0, "incomplete"),  # E in the bass under C: a C chord's third
        ((0, 2, 4), 0, None, "non-chord"),
    ],
)
def test_chord_root(pcs, bass, root, name):
    assert P.chord_root(P._mask(pcs), bass) == (root, name)


def test_chord_quality_counts_sonorities_on_eighths():
    v = progression(C_MAJOR, "I V7 vi")  # 3 beats = 6 eighths
    q = dict(zip(P.QUALITIES, P.quality_counts(v)))
    assert q == {**dict.fromkeys(P.QUALITIES, 0), "major": 2, "dominant 7th": 2, "minor": 2}


def test_fewer_than_three_voices_is_incomplete():
    p = np.array([[72, 64, -1, 48]] * 4, np.int16)  # C E over C, tenor silent
    v = Voices.from_pitches(p)
    q = dict(zip(P.QUALITIES, P.quality_counts(v)))
    assert q["incomplete"] == 2 and sum(q.values()) == 2


# ---------------------------------------------------------------- cadences


def test_v_i_with_the_raised_leading_tone_is_authentic():
    assert cadence(G_MINOR, "i iv V i", 7, "minor") == "authentic"


def test_v_i_with_the_natural_seventh_is_not_authentic():
    assert cadence(G_MINOR, "i iv v i", 7, "minor") == "other"


def test_iv_i_is_plagal():
    assert cadence(C_MAJOR, "I V IV I", 0, "major") == "plagal"


def test_ending_on_v_is_half():
    assert cadence(C_MAJOR, "I vi IV V", 0, "major") == "half"


def test_v_vi_is_deceptive_in_major_and_v_VI_in_minor():
    assert cadence(C_MAJOR, "I IV V vi", 0, "major") == "deceptive"
    assert cadence(G_MINOR, "i iv V VI", 7, "minor") == "deceptive"


def test_a_repeated_final_chord_does_not_hide_the_dominant():
    # V7 I I: the chord before the fermata chord is V7, not the repeated I.
    v = progression(C_MAJOR, "IV V7 I I")
    f = np.zeros(v.steps, bool)
    f[-BEAT:] = True
    [(start, stop)] = P.phrase_ends(f)
    assert P.classify_cadence(v, start, stop, 0, "major") == "authentic"


def test_a_cadence_to_the_relative_major_closes_on_its_own_dominant():
    # In G minor, F major (F A C) -> Bb major (Bb D F): V-I of Bb, "other" in G minor.
    table = {"VII": (65, 60, 57, 53), "III": (65, 62, 58, 46), "i": G_MINOR["i"]}
    v = progression(table, "i VII III")
    [(start, stop)] = P.phrase_ends(last_chord_fermata(v))
    assert P.classify_cadence(v, start, stop, 7, "minor") == "other"
    assert P.closes_on_own_dominant(v, start, stop)
    s = P.piece_stats(v, 7, "minor", last_chord_fermata(v), key=False)
    assert s["cadences"][P.CADENCES.index("other")] == 1 and s["closed"] == 1
    v2 = progression(C_MAJOR, "I IV I")
    [(start, stop)] = P.phrase_ends(last_chord_fermata(v2))
    assert not P.closes_on_own_dominant(v2, start, stop)


def test_phrase_ends_are_the_starts_of_fermata_runs():
    f = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1], bool)
    assert P.phrase_ends(f) == [(1, 3), (5, 6), (7, 9)]
    assert P.phrase_ends(np.zeros(5, bool)) == []


def test_ends_on_tonic():
    assert P.ends_on_tonic(progression(C_MAJOR, "IV V7 I"), 0)
    assert not P.ends_on_tonic(progression(C_MAJOR, "IV V7 I6"), 0)  # bass on E
    assert not P.ends_on_tonic(progression(C_MAJOR, "I IV V"), 0)
    # A stray B in the alto on the last eighth: not the tonic triad.
    v = progression(C_MAJOR, "IV V7 I")
    p = v.pitches.copy()
    p[-2:, 1] = 71
    assert not P.ends_on_tonic(Voices(p, v.onsets), 0)
    # G minor ending on G major (a Picardy third) is on the tonic.
    picardy = {"I": (67, 62, 59, 43), **G_MINOR}
    assert P.ends_on_tonic(progression(picardy, "iv V I"), 7)


# ---------------------------------------------------------------- voices


def test_a_repeated_bass_note_counts_as_a_repeat():
    v = progression(C_MAJOR, "I I6 IV IV")  # bass C E F F: F struck again
    counts = P.voice_counts(v, 3, 0)["intervals"]
    assert counts[P.INTERVAL_LIMIT] == 1  # one repeat (the 0 bin)
    assert counts[P.INTERVAL_LIMIT + 4] == 1 and counts[P.INTERVAL_LIMIT + 1] == 1
    assert counts.sum() == 3
    held = Voices.from_pitches(progression(C_MAJOR, "I I6 IV IV").pitches)  # F held
    assert P.voice_counts(held, 3, 0)["intervals"][P.INTERVAL_LIMIT] == 0


def test_intervals_are_clipped_and_skip_rests():
    p = np.array([[60] * 2 + [84] * 2 + [-1] * 2 + [48] * 2], np.int16).T
    v = Voices.from_pitches(np.repeat(p, 4, axis=1))
    counts = P.voice_counts(v, 0, 0)["intervals"]
    assert counts[-1] == 1 and counts.sum() == 1  # +24 clipped to +12; the rest ends a line


def test_scale_degrees_durations_and_register():
    p = np.array([62] * 4 + [66] * 5 + [67] * 20, np.int16)  # D (4), F# (5), G (20)
    v = Voices.from_pitches(np.repeat(p[:, None], 4, axis=1))
    c = P.voice_counts(v, 0, tonic=7)  # G
    assert np.flatnonzero(c["scale_degrees"]).tolist() == [0, 7, 11]
    labels = dict(zip(P.DURATION_LABELS, c["durations"]))
    assert labels["4"] == 1 and labels["5-6"] == 1 and labels["13+"] == 1
    assert c["register"][62 - P.REGISTER[0]] == 1 and c["register"].sum() == 3


def test_spacing_counts_semitones_between_adjacent_voices():
    v = progression(C_MAJOR, "I")  # C5 G4 E4 C3: 5, 3, 16 semitones, 2 eighths
    s = P.spacing_counts(v)
    lo = P.SPACING[0]
    assert s[0, 5 - lo] == 2 and s[1, 3 - lo] == 2 and s[2, 16 - lo] == 2
    assert s.sum() == 6


# ---------------------------------------------------------------- parallels


def test_a_parallel_fifth_counts_and_contrary_motion_does_not():
    # C/F -> D/G in soprano and bass: a parallel fifth (then contrary motion back).
    p = np.array([[60, -1, -1, 53]] * 4 + [[62, -1, -1, 55]] * 4 + [[67, -1, -1, 48]] * 4)
    fifths, octaves, motions = P.parallel_counts(Voices.from_pitches(p))
    assert (fifths, octaves, motions) == (1, 0, 2)
    contrary = np.array([[67, -1, -1, 60]] * 4 + [[74, -1, -1, 55]] * 4)  # 5th -> 12th
    assert P.parallel_counts(Voices.from_pitches(contrary))[0] == 0


# ---------------------------------------------------------------- a whole piece


def test_piece_stats_of_a_hand_made_chorale():
    v = progression(G_MINOR, "i iv V i VI iv V i", beats=2)
    f = np.zeros(v.steps, bool)
    f[6 * BEAT : 8 * BEAT] = True  # after "i iv V": authentic
    f[-2 * BEAT :] = True  # the end: authentic
    s = P.piece_stats(v, 7, "minor", f)
    assert s["cadences"].tolist() == [2, 0, 0, 0, 0]
    assert s["local_authentic"] == 2 and s["closed"] == 2
    assert s["ends_on_tonic"] == 1
    assert s["key"].tolist() == [7, 1] and s["given_key"].tolist() == [7, 1]
    assert s["scale_degrees"].shape == (4, 12) and s["intervals"].shape == (4, 25)
    assert s["qualities"].sum() == v.steps // 2


def test_piece_stats_without_key_analysis_or_fermatas():
    v = progression(C_MAJOR, "I IV V I")
    s = P.piece_stats(v, 0, "major", None, key=False)
    assert s["key"].tolist() == [-1, -1] and s["cadences"].sum() == 0


def test_bach_training_chorales_close_most_phrases(corpus):
    """A few of Bach's chorales: most phrase ends read as cadences in some key, and the
    measure is not blind (some are 'other' relative to the home key)."""
    total = np.zeros(len(P.CADENCES), np.int64)
    local = 0
    for ch in corpus.chorales("train")[:20]:
        tonic, mode = P.parse_key(ch.key)
        s = P.piece_stats(ch.voices, tonic, mode, ch.fermatas, key=False)
        total += s["cadences"]
        local += int(s["local_authentic"])
    shares = dict(zip(P.CADENCES, total / total.sum()))
    assert shares["authentic"] + shares["half"] > 0.4
    assert shares["other"] > 0.05
    assert local / total.sum() > 0.5
