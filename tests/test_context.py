"""The melody's context (key, phrase ends, meter): reading it, its planes, the training
pipeline's planes after transposition, and the clean-up's cadence terms."""

from __future__ import annotations

import numpy as np
import pytest

from bachgan import cleanup, context, whole_ablation
from bachgan.context import Context
from bachgan.data import BAR_STEPS, make_dataset
from bachgan.presets import get_preset
from bachgan.voices import Voices

LOW, P = 28, 64


def test_music21_key_names_parse():
    assert context.parse_key("f# minor") == (6, "minor")
    assert context.parse_key("E- major") == (3, "major")
    assert context.parse_key("B- minor") == (10, "minor")
    with pytest.raises(ValueError):
        context.parse_key("H dorian")


def test_melody_key_finds_bachs_key_on_the_valid_chorales(corpus):
    """Measured on the 35 valid chorales of every meter, any voice alone (mode / key):
    soprano 0.94 / 0.83, alto 0.80 / 0.77, tenor 0.83 / 0.83, bass 0.89 / 0.86. The
    profiles alone: soprano 0.89 / 0.69, alto 0.86 / 0.54, tenor 0.69 / 0.46."""
    chorales = corpus.chorales("valid", BAR_STEPS)
    true = [context.parse_key(ch.key) for ch in chorales]
    for voice, (mode, key) in enumerate([(0.9, 0.8), (0.77, 0.74), (0.8, 0.8), (0.85, 0.83)]):
        found = [context.estimate_key(ch.voices.voice(voice), voice) for ch in chorales]
        assert np.mean([f[1] == t[1] for f, t in zip(found, true)]) >= mode, voice
        assert np.mean([f == t for f, t in zip(found, true)]) >= key, voice


def test_a_melody_in_g_minor_is_read_as_g_minor():
    # G A Bb C D Eb F# G, ending on G: the harmonic minor scale up.
    notes = [67, 69, 70, 72, 74, 75, 78, 79, 74, 70, 67]
    melody = Voices.from_pitches(np.repeat(notes, 4))
    assert context.estimate_key(melody) == (7, "minor")


def test_phrase_ends_are_guessed_from_long_notes_rests_and_the_end():
    pitches = [60] * 4 + [62] * 4 + [64] * 8 + [-1] * 4 + [65] * 4 + [67] * 4 + [60] * 4
    ends = context.guess_phrase_ends(Voices.from_pitches(np.array(pitches)))
    assert ends[8:16].all()  # the half note before the rest
    assert ends[28:32].all()  # the last note
    assert not ends[:8].any() and not ends[20:28].any()


def test_planes_mark_the_harmonic_minor_scale_the_tonic_and_the_bar_lines():
    ends = np.zeros(24, bool)
    ends[20:24] = True
    planes = context.planes(Context(9, "minor", 12, ends), 24, LOW, P)  # A minor in 3/4
    assert planes.shape == (24, P, context.CHANNELS)
    row = lambda pitch: pitch - LOW  # noqa: E731
    scale, tonic, minor, end, downbeat, beat = np.moveaxis(planes, -1, 0)
    assert scale[0, row(68)] == 1 and scale[0, row(67)] == 0  # G# in, G out
    assert tonic[0, row(57)] == tonic[0, row(69)] == 1 and tonic[0, row(60)] == 0
    assert (minor == 1).all()
    assert end[:, 0].tolist() == ends.tolist()
    assert np.nonzero(downbeat[:, 0])[0].tolist() == [0, 12]
    assert np.nonzero(beat[:, 0])[0].tolist() == [0, 4, 8, 12, 16, 20]


def test_the_pipeline_transposes_the_key_planes_with_the_window():
    """One C major window, transposed up 3 semitones: the tonic plane marks E-flat."""
    pitches = np.full((1, 32, 4), -1, np.int16)
    pitches[0, :, 0], pitches[0, :, 1], pitches[0, :, 2], pitches[0, :, 3] = 72, 67, 64, 48
    table = {
        "pitches": pitches,
        "time": context.time_planes(Context(0, "major"), 32)[None],
        "tonic": np.array([0], np.int32),
        "minor": np.array([0], np.int32),
    }
    p = get_preset("tiny", context=True, transpose=(3, 3), batch_size=1, critic_steps=1)
    roll, cond, voice = next(iter(make_dataset(pitches, p, context=table)))
    cond = cond.numpy()[0]
    assert cond.shape == (32, P, p.condition_channels)
    tonic_rows = np.nonzero(cond[0, :, 2])[0] + LOW
    assert set(tonic_rows % 12) == {3}
    melody_row = np.nonzero(cond[0, :, 0] > 0)[0][0] + LOW
    assert melody_row == [75, 70, 67, 51][int(voice[0])]
    assert np.nonzero(cond[:, 0, 5])[0].tolist() == [0, 16]  # downbeats


def _roll(steps, wishes):
    roll = np.full((steps, P, 4), -1.0, np.float32)
    for v, pitches in wishes.items():
        for t, p in enumerate(pitches):
            for q, s in p:
                roll[t, q - LOW, v] = s
    return roll


def test_the_last_chord_is_the_tonic_triad_when_the_generator_offers_it():
    """The generator slightly prefers ending on a G major chord; in C major the clean-up
    ends on C (its second choice) when it knows the key."""
    melody = Voices.from_pitches(np.array([74] * 8 + [67] * 8))  # D then G: could end on V
    wish = {
        1: [[(67, 1.0)]] * 8 + [[(64, 0.9), (62, 1.0)]] * 8,
        2: [[(59, 1.0)]] * 8 + [[(60, 0.9), (59, 1.0)]] * 8,
        3: [[(55, 1.0)]] * 8 + [[(48, 0.9), (55, 1.0)]] * 8,
    }
    roll = _roll(16, wish)
    plain = cleanup.voice_lead(roll, melody, 0, LOW, context=None)
    assert plain.pitches[-1, 3] % 12 == 7
    ends = np.zeros(16, bool)
    ends[8:] = True
    known = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(0, "major", 16, ends))
    assert known.pitches[-1, 3] == 48 and known.pitches[-1, 1] == 64


def test_a_minor_dominant_takes_the_raised_leading_tone():
    """A minor, E in the bass: the generator leans to G natural in the alto; the clean-up
    sings G# when it knows the key is A minor."""
    melody = Voices.from_pitches(np.array([71] * 8 + [69] * 8))  # B then A
    wish = {
        1: [[(67, 1.0), (68, 0.8)]] * 8 + [[(64, 1.0)]] * 8,
        2: [[(64, 1.0)]] * 8 + [[(60, 1.0)]] * 8,
        3: [[(52, 1.0)]] * 8 + [[(45, 1.0)]] * 8,
    }
    roll = _roll(16, wish)
    known = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(9, "minor", 16, None))
    assert known.pitches[0, 1] == 68
    major = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(0, "major", 16, None))
    assert major.pitches[0, 1] == 67


def test_a_phrase_end_is_approached_by_its_own_dominant_when_the_generator_offers_it():
    """At a fermata on C, the generator slightly prefers IV (F in the bass) before it; the
    clean-up takes its second choice, G with the leading tone B, when it knows the phrase
    ends there: an authentic cadence."""
    melody = Voices.from_pitches(np.array([74] * 4 + [72] * 12))  # D, then C under a fermata
    wish = {
        1: [[(69, 1.0), (71, 0.9)]] * 4 + [[(67, 1.0)]] * 12,
        2: [[(65, 1.0), (67, 0.9)]] * 4 + [[(64, 1.0)]] * 12,
        3: [[(53, 1.0), (55, 0.9)]] * 4 + [[(48, 1.0)]] * 12,
    }
    roll = _roll(16, wish)
    ends = np.zeros(16, bool)
    ends[4:] = True
    # With the hand-set costs only the phrase end decides (Bach's tables like V there anyway).
    with whole_ablation.constants({"USE_STYLE": False}):
        plain = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(0, "major", 16, None))
        assert plain.pitches[3, 3] == 53
        known = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(0, "major", 16, ends))
        assert known.pitches[3, 3] == 55 and 71 in known.pitches[3]
    known = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(0, "major", 16, ends))
    assert known.pitches[3, 3] == 55 and 71 in known.pitches[3]


def test_the_context_training_windows_hold_no_held_out_chorale(corpus):
    """`chorale` trains on every meter's training chorales: its window table has the 4/4
    windows and the triple-meter ones, and none of a valid or test chorale."""
    from bachgan.data import BAR_STEPS, stack_windows
    from bachgan.voices import STEPS_PER_BAR, WINDOW_STEPS

    table = context.window_table(corpus.chorales("train", BAR_STEPS), STEPS_PER_BAR, WINDOW_STEPS)
    duple = stack_windows(corpus.windows("train"))
    assert len(table["pitches"]) > len(duple)
    assert {w.tobytes() for w in duple} <= {w.tobytes() for w in table["pitches"]}
    held = [c for s in ("valid", "test") for c in corpus.chorales(s, BAR_STEPS)]
    held_windows = context.window_table(held, STEPS_PER_BAR, WINDOW_STEPS)["pitches"]
    # Some 2-bar passages recur note for note in other settings of a tune: only windows that
    # no training chorale has are the held-out chorales' own.
    own = {w.tobytes() for w in held_windows} - {w.tobytes() for w in duple}
    assert len(own) > 0.9 * len(held_windows)
    assert not own & {w.tobytes() for w in table["pitches"]}


def test_the_bass_is_offered_the_tonic_under_the_last_note():
    """The generator's four best bass pitches under the last melody note hold no C; in C
    major a clean-up weighing four candidates still ends on C in the bass (its own score for
    C is kept)."""
    melody = Voices.from_pitches(np.array([74] * 8 + [72] * 8))  # D then C
    roll = np.full((16, P, 4), -1.0, np.float32)
    roll[:8, 67 - LOW, 1], roll[:8, 59 - LOW, 2], roll[:8, 55 - LOW, 3] = 1.0, 1.0, 1.0
    roll[8:, 64 - LOW, 1], roll[8:, 55 - LOW, 2] = 1.0, 1.0
    for q, s in ((52, 1.0), (45, 0.9), (57, 0.8), (40, 0.7)):  # E, A, A, E: no C
        roll[8:, q - LOW, 3] = s
    roll[8:, 48 - LOW, 3] = 0.5  # C3, fifth best
    ends = np.zeros(16, bool)
    ends[8:] = True
    with whole_ablation.constants({"CANDIDATES": 4, "STYLE_REGISTER_WEIGHT": 0.0}):
        out = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(0, "major", 16, ends))
        assert out.pitches[-1, 3] == 48
        plain = cleanup.voice_lead(roll, melody, 0, LOW)
        assert plain.pitches[-1, 3] != 48  # no context: no offer


def test_a_phrase_end_on_the_tonic_is_offered_v_i_in_the_bass():
    """A fermata on C in C major, the generator's bass candidates holding neither G before it
    nor C under it: the clean-up is offered both and closes V-I."""
    melody = Voices.from_pitches(np.array([71] * 4 + [72] * 12))  # B, then C under a fermata
    roll = np.full((16, P, 4), -1.0, np.float32)
    roll[:4, 67 - LOW, 1], roll[:4, 62 - LOW, 2] = 1.0, 1.0
    roll[4:, 67 - LOW, 1], roll[4:, 64 - LOW, 2] = 1.0, 1.0
    for q, s in ((52, 0.6), (45, 0.5), (57, 0.4), (40, 0.3)):  # E, A, A, E: no G, no C
        roll[:, q - LOW, 3] = s
    roll[:, 43 - LOW, 3] = roll[:, 48 - LOW, 3] = 0.2  # G2 and C3: the generator's 5th choices
    ends = np.zeros(16, bool)
    ends[4:] = True
    out = cleanup.voice_lead(roll, melody, 0, LOW, context=Context(0, "major", 16, ends))
    assert out.pitches[3, 3] % 12 == 7 and out.pitches[4, 3] % 12 == 0
