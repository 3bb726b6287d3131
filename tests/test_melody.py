"""Melody input from MIDI files, typed notes and built-in tunes, with real pretty_midi/mido."""

from __future__ import annotations

import io

import mido
import numpy as np
import pretty_midi
import pytest

from bachgan.melody import (
    BUILTIN_TUNES,
    LIMITS,
    MAX_BARS,
    MelodyError,
    builtin_tune,
    melody_from_midi,
    melody_from_text,
    melody_to_text,
    midi_tracks,
    notation_help,
)
from bachgan.voices import SATB_RANGES, Voices

Q = 0.5  # a quarter note in seconds at 120 BPM


def midi_file(*tracks, tempo=120.0, resolution=480) -> bytes:
    """tracks: (name, program, notes as (pitch, start_s, end_s), is_drum)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo, resolution=resolution)
    for name, program, notes, *drum in tracks:
        inst = pretty_midi.Instrument(program, is_drum=bool(drum and drum[0]), name=name)
        inst.notes = [pretty_midi.Note(90, p, s, e) for p, s, e in notes]
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def quarters(pitches, start=0):
    return [(p, (start + i) * Q, (start + i + 1) * Q) for i, p in enumerate(pitches)]


SCALE = [72, 74, 76, 77, 79, 81, 79, 77]  # C5 D5 E5 F5 G5 A5 G5 F5


# ---------------------------------------------------------------- MIDI import


def test_takes_the_highest_part_and_reports_it():
    data = midi_file(
        ("Piano", 0, quarters([48, 50, 52])),
        ("Flute", 73, quarters(SCALE)),
        ("Drums", 0, quarters([36] * 20), True),
    )
    melody, report = melody_from_midi(data)
    assert [n[2] for n in melody.notes()] == SCALE
    assert melody.steps == 32 and melody.n_voices == 1
    assert any("track 2 'Flute'" in c and "highest part" in c for c in report.changes)
    assert report.tempo == 120
    assert midi_tracks(data)[2] == "track 3 'Drums' (drums), 20 notes"
    alone, _ = melody_from_midi(data, track=0)
    assert [n[2] for n in alone.notes()] == [60, 62, 64]  # moved up into the soprano range


def test_a_pickup_bar_marked_by_its_own_time_signature_keeps_its_place():
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(73, name="Flute")
    inst.notes = [pretty_midi.Note(90, p, s, e) for p, s, e in quarters([67, *SCALE])]
    pm.instruments.append(inst)
    pm.time_signature_changes = [  # a one-beat pickup, then 4/4 from the first full bar
        pretty_midi.TimeSignature(1, 4, 0.0),
        pretty_midi.TimeSignature(4, 4, Q),
    ]
    buf = io.BytesIO()
    pm.write(buf)
    melody, report = melody_from_midi(buf.getvalue(), fit_range=False)
    assert melody.notes()[:2] == [(12, 16, 67), (16, 20, 72)]  # G4 on beat 4, C5 on bar 2
    assert "pickup (1 beat)" in str(report) and "1/4" not in str(report)
    unmarked, _ = melody_from_midi(
        midi_file(("Flute", 73, quarters([67, *SCALE]))), fit_range=False
    )
    assert unmarked.notes()[0] == (0, 4, 67)  # without a mark, nothing moves


def meter_file(notes, *meters) -> bytes:
    """A flute track of (pitch, start_s, end_s) notes, with time signatures (num, den, time_s)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(73, name="Flute")
    inst.notes = [pretty_midi.Note(90, p, s, e) for p, s, e in notes]
    pm.instruments.append(inst)
    pm.time_signature_changes = [pretty_midi.TimeSignature(n, d, t) for n, d, t in meters]
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


@pytest.mark.parametrize("pickup", [(1, 4), (1, 2)])
def test_a_pickup_before_2_2_bars_keeps_its_place(pickup):
    """2/2 bars hold 16 sixteenths as 4/4 ones do (the corpus has 2/2 chorales)."""
    beats = 4 * pickup[0] // pickup[1]
    notes = [
        (67, 0, beats * Q),
        (72, beats * Q, (beats + 2) * Q),
        (74, (beats + 2) * Q, (beats + 4) * Q),
    ]
    data = meter_file(notes, (*pickup, 0.0), (2, 2, beats * Q))
    melody, report = melody_from_midi(data, fit_range=False)
    start = 16 - 4 * beats
    assert melody.notes() == [(start, 16, 67), (16, 24, 72), (24, 32, 74)]
    assert f"pickup ({beats} beat" in str(report) and "/" not in str(report)


def test_only_meters_with_bars_of_other_lengths_are_reported():
    for (num, den), said in [((2, 2), False), ((8, 8), False), ((4, 4), False), ((3, 4), True)]:
        _, report = melody_from_midi(meter_file(quarters(SCALE), (num, den, 0.0)))
        warning = f"the file is in {num}/{den}; BachGAN counts 4/4 bars"
        assert (warning in str(report)) == said, (num, den)


def test_the_tune_wins_over_a_busier_accompaniment():
    tune = SCALE * 2  # 16 notes, high
    bass = [36, 43, 48, 43] * 10  # 40 notes, low
    data = midi_file(("Bass line", 32, quarters(bass)), ("Flute", 73, quarters(tune)))
    assert [n[2] for n in melody_from_midi(data)[0].notes()][:16] == tune
    # a track named like a melody wins even when it is lower
    named = midi_file(("Melody", 0, quarters([60, 62, 64, 65])), ("Flute", 73, quarters(tune)))
    melody, report = melody_from_midi(named)
    assert [n[2] for n in melody.notes()] == [60, 62, 64, 65]
    assert any("named like a melody" in c for c in report.changes)
    # a few high notes (an ornament track) do not outweigh the tune
    sparse = midi_file(("Bells", 14, quarters([96, 98])), ("Flute", 73, quarters(tune)))
    assert [n[2] for n in melody_from_midi(sparse)[0].notes()][:16] == tune


def test_top_line_of_chords_and_repeated_notes():
    chords = [(p, 0, Q) for p in (60, 64, 67)] + [(p, Q, 2 * Q) for p in (60, 64, 67)]
    data = midi_file(("Piano", 0, chords + [(72, 2 * Q, 3 * Q), (65, 2 * Q, 4 * Q)]))
    melody, report = melody_from_midi(data)
    # G4 twice (repeated, two onsets), C5, then the held F4 shows once C5 ends.
    assert melody.notes() == [(0, 4, 67), (4, 8, 67), (8, 12, 72), (12, 16, 65)]
    assert any("top line" in c and "5 notes hidden" in c for c in report.changes)


def test_tempo_changes_are_honoured():
    """Two beats at 120 BPM, then 60 BPM: notes every beat must land every 4 steps."""
    mf = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    pitches = [72, 74, 76, 77, 79, 77, 76, 74]
    for i, p in enumerate(pitches):
        if i == 2:
            track.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
        track.append(mido.Message("note_on", note=p, velocity=90, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=480))
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    melody, report = melody_from_midi(buf.getvalue())
    assert melody.notes() == [(4 * i, 4 * i + 4, p) for i, p in enumerate(pitches)]
    assert report.tempo == 120
    assert not any("quantized" in c for c in report.changes)


def mido_file(*tracks, ticks_per_beat=480) -> bytes:
    """tracks: lists of mido messages (times are deltas in ticks)."""
    mf = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    mf.tracks.extend(mido.MidiTrack(t) for t in tracks)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def note(pitch, ticks, wait=0, channel=0):
    """A note of `ticks` after `wait` ticks of silence, as note_on and note_off messages."""
    return [
        mido.Message("note_on", note=pitch, velocity=90, time=wait, channel=channel),
        mido.Message("note_off", note=pitch, time=ticks, channel=channel),
    ]


def test_zero_length_notes_are_skipped_and_reported():
    """pretty_midi drops a note whose note-off comes at its note-on's tick; the report says so,
    counting only the melody's track."""
    data = mido_file(note(60, 0) + note(62, 480, wait=480))
    melody, report = melody_from_midi(data, fit_range=False)
    assert melody.notes() == [(4, 8, 62)]  # D4 on beat 2
    assert "skipped 1 zero-length note (" in str(report)

    tune = note(72, 0) * 3 + note(74, 480) + note(76, 0, channel=1)  # channel 1: no instrument
    bass = [mido.Message("program_change", program=32)] + note(40, 0) + note(36, 1920)
    data = mido_file(tune, bass)
    melody, report = melody_from_midi(data)
    assert melody.notes()[0] == (0, 4, 74)
    assert "skipped 3 zero-length notes" in str(report)  # not channel 1's, nor the bass's
    assert "skipped 1 zero-length note " in str(melody_from_midi(data, track=1)[1])

    # a repeated note whose note-on comes before the earlier one's note-off is not zero-length
    repeated = note(72, 480)[:1] + note(72, 0, wait=480)[:1] + note(72, 0)[1:] + note(72, 480)[1:]
    melody, report = melody_from_midi(mido_file(repeated), fit_range=False)
    assert melody.notes() == [(0, 4, 72), (4, 8, 72)] and "skipped" not in str(report)

    with pytest.raises(MelodyError, match="no notes that sound: its 2 notes end where they start"):
        melody_from_midi(mido_file(note(60, 0) + note(62, 0, wait=480)))


def test_quantizes_to_sixteenths_and_reports():
    jitter = [(72, 0.01, Q - 0.02), (74, Q + 0.015, 2 * Q), (76, 2 * Q, 4 * Q)]
    melody, report = melody_from_midi(midi_file(("Flute", 73, jitter)))
    assert melody.notes() == [(0, 4, 72), (4, 8, 74), (8, 16, 76)]
    assert "quantized 2 notes to the 16th-note grid" in report.changes


def test_leading_silence_dropped_in_whole_bars():
    start = 2 * 4 + 1  # bar 3, beat 2 (in quarters)
    melody, report = melody_from_midi(midi_file(("Flute", 73, quarters(SCALE[:3], start))))
    assert melody.notes()[0] == (4, 8, 72)  # keeps its place in the bar
    assert "dropped 2 bars of leading silence" in report.changes
    assert melody.steps == 16


def test_moves_into_alto_range_by_octaves():
    high = [81, 83, 84, 83, 81]  # A5 B5 C6: one octave down fits, as does two
    melody, report = melody_from_midi(midi_file(("Flute", 73, quarters(high))), voice="alto")
    lo, hi = SATB_RANGES["alto"]
    assert [n[2] for n in melody.notes()] == [p - 12 for p in high]
    assert all(lo <= n[2] <= hi for n in melody.notes())
    assert any("moved down one octave into the alto range" in c for c in report.changes)
    same, report2 = melody_from_midi(midi_file(("Flute", 73, quarters(high))), fit_range=False)
    assert [n[2] for n in same.notes()] == high and not report2.changes


def test_no_change_reported_for_clean_soprano_melody():
    _, report = melody_from_midi(midi_file(("Voice", 52, quarters(SCALE))))
    assert report.changes == [] and str(report) == "imported as is"


def tempo_file(bpm: float) -> bytes:
    mf = mido.MidiFile(ticks_per_beat=480)
    mf.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)),
                mido.Message("note_on", note=72, velocity=90),
                mido.Message("note_off", note=72, time=480),
            ]
        )
    )
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def many_notes_file() -> bytes:
    chords = [(p, i * Q / 4, (i + 1) * Q / 4) for i in range(1001) for p in range(50, 70)]
    return midi_file(("Piano", 0, chords))


GOOD = midi_file(("Flute", 73, quarters(SCALE)))

ERRORS = {
    "not midi": (b"RIFF....WAVEfmt ", "not a MIDI file"),
    "truncated": (GOOD[: len(GOOD) // 2], "damaged"),
    "corrupt header": (b"MThd\x00\x00\x00\x06\x00\x01\xff\xff", "damaged"),
    "empty track": (midi_file(("Flute", 73, [])), "no notes"),
    "no tracks": (midi_file(), "no notes"),
    "drums only": (midi_file(("Kit", 0, quarters([36, 38] * 4), True)), "only drum"),
    "too long": (midi_file(("Flute", 73, quarters([72] * 4 * (MAX_BARS + 1)))), "too long"),
    "too large": (b"MThd" + bytes(LIMITS["max_upload_bytes"]), "too large"),
    "absurd tempo": (tempo_file(1000), "tempo"),
    "too many notes": (many_notes_file(), "too many notes"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_bad_files_raise_melody_error(case):
    data, words = ERRORS[case]
    with pytest.raises(MelodyError, match=words):
        melody_from_midi(data)


def test_too_long_message_names_the_limit():
    with pytest.raises(MelodyError, match=f"at most {MAX_BARS} bars"):
        melody_from_midi(ERRORS["too long"][0])


def test_bad_track_choice():
    data = midi_file(("Flute", 73, quarters(SCALE)), ("Kit", 0, quarters([36]), True))
    with pytest.raises(MelodyError, match="no track 5"):
        melody_from_midi(data, track=4)
    with pytest.raises(MelodyError, match="Track 2 has drums"):
        melody_from_midi(data, track=1)


def test_enormous_tick_count_is_refused_quickly():
    mf = mido.MidiFile(ticks_per_beat=96)
    mf.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_on", note=72, velocity=90),
                mido.Message("note_off", note=72, time=0x0FFFFFFF),  # largest delta time
            ]
        )
    )
    buf = io.BytesIO()
    mf.save(file=buf)
    with pytest.raises(MelodyError, match="too long"):  # tests/test_fuzz.py guards hangs
        melody_from_midi(buf.getvalue())


@pytest.mark.parametrize("ticks_per_beat", [96, 960, 9600])
def test_64_bars_import_at_any_time_resolution(ticks_per_beat):
    bars = [m for i in range(MAX_BARS) for m in note(60 + i % 12, 4 * ticks_per_beat)]
    melody, _ = melody_from_midi(mido_file(bars, ticks_per_beat=ticks_per_beat))
    assert melody.steps == MAX_BARS * 16 and len(melody.notes()) == MAX_BARS


def test_a_long_file_at_the_finest_time_resolution_is_refused_with_advice():
    """pretty_midi keeps a float per tick: 64 bars fit at any resolution, more need a coarser
    one (refused before pretty_midi builds its arrays)."""
    bars = [m for i in range(70) for m in note(72, 4 * 0x7FFF)]
    with pytest.raises(MelodyError, match="too long for its fine time resolution.*960"):
        melody_from_midi(mido_file(bars, ticks_per_beat=0x7FFF))


def test_mutated_files_import_or_raise_melody_error():
    """Fuzz regression: damaged versions of a good file never raise anything else."""
    good = midi_file(("Flute", 73, quarters(SCALE)), ("Bass", 32, quarters([40, 45] * 4)))
    rng = np.random.default_rng(1234)
    outcomes = []
    for i in range(50):
        data = bytearray(good)
        if i % 3 == 0:
            data = data[: rng.integers(4, len(data))]
        for _ in range(rng.integers(1, 6)):
            data[rng.integers(4, len(data))] = rng.integers(0, 256)
        if i % 5 == 0:
            at = rng.integers(14, len(data))
            data[at:at] = rng.integers(0, 256, rng.integers(1, 8)).astype(np.uint8).tobytes()
        try:
            melody, _ = melody_from_midi(bytes(data))
            assert isinstance(melody, Voices) and melody.steps <= MAX_BARS * 16
            outcomes.append("ok")
        except MelodyError:
            outcomes.append("error")
    assert "error" in outcomes  # the mutations did bite


# ---------------------------------------------------------------- text notation


def test_text_durations_rests_and_carry_over():
    melody, report = melody_from_text("C5q D5e E5e F5q. G5s G5s | A5h rq B4")
    assert melody.notes() == [
        (0, 4, 72),
        (4, 6, 74),
        (6, 8, 76),
        (8, 14, 77),
        (14, 15, 79),
        (15, 16, 79),  # repeated note: its own onset
        (16, 24, 81),
        (28, 32, 71),  # B4 reuses the quarter of the rest before it
    ]
    assert melody.steps == 32 and report.changes == []


def test_text_slash_durations_ties_and_accidentals():
    melody, _ = melody_from_text("F#4/3 Bb4/5 c5/8~ | C5/4 Ebb5/12")
    assert melody.notes() == [(0, 3, 66), (3, 8, 70), (8, 20, 72), (20, 32, 74)]


def test_text_pickup_is_placed_at_end_of_first_bar():
    melody, report = melody_from_text("G4q | C5h E5h | G5w")
    assert melody.notes()[0] == (12, 16, 67)
    assert melody.steps == 48
    assert "put the pickup (1 beat) at the end of a silent first bar" in report.changes


def test_text_rounds_up_to_whole_bars():
    melody, _ = melody_from_text("C5q D5q")
    assert melody.steps == 16 and melody.pitches[8:, 0].tolist() == [-1] * 8


@pytest.mark.parametrize(
    "text, words",
    [
        ("C4q D4q H4q", "'H4q' .item 3 of what you typed.: 'H' is not a note name"),
        ("C4q Eq", "'Eq' .item 2 of what you typed.: add an octave number"),
        ("C4x", "'C4x' .item 1 of what you typed.: 'x' is not a duration"),
        ("C4s.", "dotted sixteenth"),
        ("C4/0", "'/0' is not a duration"),
        ("C4h~ D4h", "'C4h~' .item 1 of what you typed.: a tie"),
        ("C4w~", "leads nowhere"),
        ("C9q G#9q", "'G#9q' .item 2 of what you typed.: this note is outside the MIDI range"),
        ("C4w | D4h E4q | F4w", "bar 2 .items 3-4: 'D4h E4q'. holds 3 beats"),
        ("C4w C4q | D4w", "bar 1 .* holds 5 beats"),
        ("C4w | D4w E4q", "bar 2 .* holds 5 beats"),
        ("rq rh | r/4", "No notes"),
        ("", "No notes"),
        ("C4/1024 D4w", "too long"),
        ("C4q " * 5000, "too long"),
        ("C4w | | D4w", "bar 2 is empty"),
    ],
)
def test_text_errors_point_at_the_problem(text, words):
    with pytest.raises(MelodyError, match=words):
        melody_from_text(text)


@pytest.mark.parametrize("bars", [MAX_BARS + 1, MAX_BARS + 6, 200])
def test_too_long_text_says_how_long(bars):
    with pytest.raises(MelodyError, match=rf"\({bars} bars\)"):
        melody_from_text("C4q D4 E4 F4 | " * bars)


def test_text_may_start_with_a_bar_line():
    assert melody_from_text("| C4w | D4w |")[0].steps == 32
    # a leading bar line opens bar 1: errors count bars as written
    with pytest.raises(MelodyError, match="bar 1 .* holds 5 beats"):
        melody_from_text("| C4h. C4h | C4w")
    with pytest.raises(MelodyError, match="bar 2 .* holds 5 beats"):
        melody_from_text("| C4w | C4h. C4h")


def test_text_drops_whole_bars_of_leading_silence_as_midi_does():
    melody, report = melody_from_text("rw rw C4q D4 E4 F4", fit_range=False)
    assert melody.steps == 16 and melody.notes()[0] == (0, 4, 60)
    assert "dropped 2 bars of leading silence" in str(report)
    pickup, _ = melody_from_text("rw | rq C4q D4 E4 | F4w", fit_range=False)
    assert pickup.notes()[0] == (4, 8, 60)  # the rest within the bar stays: a pickup's place


def test_a_track_that_does_not_exist_is_named_as_the_user_counts():
    data = midi_file(("Flute", 73, quarters(SCALE)))
    with pytest.raises(MelodyError, match="no track 3; this file has 1 track, numbered from 1"):
        melody_from_midi(data, track=2)


def test_text_round_trip():
    rng = np.random.default_rng(7)
    steps, p, o = 64, [], []
    while len(p) < steps:
        n = int(rng.choice([1, 2, 3, 4, 5, 6, 8, 12]))
        pitch = int(rng.choice([-1, 60, 66, 70, 72, 79]))
        p += [pitch] * n
        o += [True] + [False] * (n - 1)
    melody = Voices(np.array(p[:steps]), np.array(o[:steps]))
    text = melody_to_text(melody)
    assert melody_from_text(text, fit_range=False)[0] == melody
    assert text.count("|") == 3  # four bars


def test_melody_to_text_ties_across_bar_lines():
    melody = Voices.from_pitches([72] * 20 + [-1] * 12)
    assert melody_to_text(melody) == "C5w~ | C5q rh."


def test_builtin_tunes_parse_in_whole_bars():
    assert {"Twinkle, Twinkle, Little Star", "Ode to Joy (Beethoven)", "Old Hundredth"} <= set(
        BUILTIN_TUNES
    )
    assert "Ein feste Burg ist unser Gott" in BUILTIN_TUNES and "Frère Jacques" in BUILTIN_TUNES
    lo, hi = SATB_RANGES["soprano"]
    for name, text in BUILTIN_TUNES.items():
        melody, report = melody_from_text(text)  # bar lines in the text are checked here
        assert "|" in text and melody.steps % 16 == 0, name
        assert 4 <= melody.steps // 16 <= 10, name
        assert all(lo <= n[2] <= hi for n in melody.notes()), name
        assert melody_from_text(melody_to_text(melody))[0] == melody, name


def test_builtin_tunes_start_right():
    ode = [n[2] for n in builtin_tune("Ode to Joy (Beethoven)").notes()]
    assert ode[:8] == [66, 66, 67, 69, 69, 67, 66, 64]  # F# F# G A A G F# E
    burg = builtin_tune("ein feste burg ist unser gott").notes()
    assert burg[0] == (12, 16, 74)  # pickup D5 on the fourth beat
    assert builtin_tune("Old Hundredth", voice="tenor").notes()[0][2] == 55  # G3: down an octave
    with pytest.raises(MelodyError, match="Unknown tune"):
        builtin_tune("Stairway")


def test_limits_and_help_for_the_ui():
    assert LIMITS["max_bars"] == MAX_BARS == 64
    assert LIMITS["max_upload_bytes"] == 1_000_000
    assert LIMITS["min_tempo_bpm"] < LIMITS["max_tempo_bpm"]
    help_text = notation_help()
    assert "C4q" in help_text and "|" in help_text
    melody_from_text(help_text.split("Example (Ode to Joy): `")[1].split("`")[0])
    with pytest.raises(MelodyError, match="Unknown voice|voice must be"):
        melody_from_text("C4q", voice="mezzo")


def test_typed_fermatas_mark_phrase_ends():
    """`^` after a note marks a fermata: the report carries the phrase ends, step by step,
    through a pickup; a melody without one has none (they are then guessed)."""
    melody, report = melody_from_text("G4q | C5q D5 E5 F5 | G5h^ E5h | C5h^~ C5q rq")
    ends = report.phrase_ends
    assert ends is not None and ends.shape == (melody.steps,)
    # The pickup fills its bar: bar 2 (steps 16-31) holds C D E F, bar 3 G^ (steps 32-39).
    assert ends.tolist() == [False] * 32 + [True] * 8 + [False] * 8 + [True] * 8 + [False] * 8
    assert melody.pitches[32, 0] == 79 and melody.pitches[48, 0] == 72
    assert melody.notes(0)[-1] == (48, 60, 72)  # the tie still holds C5 for 3 beats
    assert melody_from_text("C4q D4 E4 F4")[1].phrase_ends is None
    with pytest.raises(MelodyError, match="fermata"):
        melody_from_text("C4q r^ E4 F4")
