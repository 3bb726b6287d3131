"""Voices -> MIDI / MusicXML and back, with real pretty_midi and music21."""

from __future__ import annotations

import io

import mido
import numpy as np
import pretty_midi
import pytest
from music21 import clef, converter

from bachgan.melody import MelodyError
from bachgan.midi import (
    PROGRAMS,
    to_midi_bytes,
    to_musicxml,
    to_pretty_midi,
    to_score_svg,
    voices_from_midi_bytes,
)
from bachgan.voices import Voices

R = -1


def column(*notes):
    """(pitch, steps) pairs -> pitches and onsets of one voice (every pair starts a note)."""
    p = [x for pitch, n in notes for x in [pitch] * n]
    o = [x for _, n in notes for x in [True] + [False] * (n - 1)]
    return p, o


def chorale() -> Voices:
    """Two bars in D major with held notes, repeated notes, rests, odd lengths and a tie over
    the bar line."""
    parts = [
        column((74, 4), (74, 4), (73, 2), (71, 2), (69, 4), (74, 12), (73, 4)),  # repeated D5
        column((69, 4), (R, 4), (69, 5), (67, 3), (66, 16)),  # rest, 5-step note
        column((62, 8), (64, 4), (62, 4), (62, 4), (R, 2), (64, 2), (66, 8)),
        column((50, 20), (45, 4), (R, 4), (50, 4)),  # D3 tied over the bar line
    ]
    return Voices(np.array([p for p, _ in parts]).T, np.array([o for _, o in parts]).T)


def test_midi_round_trip_keeps_repeats_rests_and_holds():
    v = chorale()
    back = voices_from_midi_bytes(to_midi_bytes(v, tempo=72))
    assert back == v
    assert back.notes(0)[:2] == [(0, 4, 74), (4, 8, 74)]  # repeated, not merged
    assert back.notes(3)[0] == (0, 20, 50)  # held across the bar line: one note


@pytest.mark.parametrize("sounding", [[2], [0, 3], [1, 2, 3], []])
def test_silent_voices_read_back_as_silent_columns_in_place(sounding):
    """pretty_midi leaves out instruments without notes; the voices below must not move up."""
    v = chorale()
    silent = np.isin(np.arange(4), sounding, invert=True)
    v = Voices(np.where(silent, R, v.pitches), np.where(silent, False, v.onsets))
    assert voices_from_midi_bytes(to_midi_bytes(v), steps=v.steps) == v


def test_reading_voices_back_parses_the_file_once(monkeypatch):
    v = chorale()
    data = to_midi_bytes(v)
    made = []

    class Counted(mido.MidiFile):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(mido, "MidiFile", Counted)
    assert voices_from_midi_bytes(data, steps=v.steps) == v
    assert len(made) == 1


def test_voices_are_told_apart_by_track_name():
    v = chorale()
    two = Voices(v.pitches[:, :2], v.onsets[:, :2])
    data = to_midi_bytes(two, names=["Melody", "Counter"])
    assert voices_from_midi_bytes(data) == two
    only_counter = Voices(np.stack([np.full(32, R), two.pitches[:, 1]], 1), two.onsets * [0, 1])
    data = to_midi_bytes(only_counter, names=["M", "C"])
    assert voices_from_midi_bytes(data) == only_counter
    titled = mido.MidiFile(file=io.BytesIO(data))  # a tempo track named with the title
    titled.tracks[0].insert(0, mido.MetaMessage("track_name", name="Chorale"))
    buf = io.BytesIO()
    titled.save(file=buf)
    assert voices_from_midi_bytes(buf.getvalue()) == only_counter


def test_length_is_rounded_up_to_a_whole_bar_or_given():
    v = Voices.stack([Voices.from_pitches([72] * 4 + [R] * 16 + [67] * 4 + [R] * 24)] * 4)
    data = to_midi_bytes(v)
    assert voices_from_midi_bytes(data) == v.slice(0, 32)  # trailing silence up to the bar line
    assert voices_from_midi_bytes(data, steps=48) == v
    assert voices_from_midi_bytes(data, steps=22) == v.slice(0, 22)


def test_four_named_instruments_with_programs_and_tempo():
    pm = to_pretty_midi(chorale(), tempo=80)
    assert [i.name for i in pm.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert {i.program for i in pm.instruments} == {PROGRAMS["Choir Aahs"]}
    assert not any(i.is_drum for i in pm.instruments)
    assert pm.get_tempo_changes()[1].tolist() == pytest.approx([80.0])
    first = pm.instruments[0].notes[1]  # step 4 = one beat = 0.75 s at 80 BPM
    assert (first.start, first.end, first.pitch) == pytest.approx((0.75, 1.5, 74))
    assert len(pm.instruments[3].notes) == 3  # held notes are single MIDI notes

    organ = to_pretty_midi(chorale(), programs="Church Organ")
    assert {i.program for i in organ.instruments} == {19}
    mixed = to_pretty_midi(chorale(), programs={"soprano": 73, "bass": "String Ensemble"})
    assert [i.program for i in mixed.instruments] == [73, 52, 52, 48]
    listed = to_pretty_midi(chorale(), programs=[0, 1, 2, 3])
    assert [i.program for i in listed.instruments] == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        to_pretty_midi(chorale(), programs=[0, 1])
    with pytest.raises(ValueError):
        to_pretty_midi(chorale(), tempo=0)


def test_midi_bytes_are_a_standard_file_read_by_pretty_midi():
    data = to_midi_bytes(chorale(), tempo=100)
    assert data.startswith(b"MThd")
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert len(pm.instruments) == 4
    assert pm.time_signature_changes[0].numerator == 4


def test_other_voice_counts_get_names():
    two = chorale().slice(0, 32)
    two = Voices(two.pitches[:, :2], two.onsets[:, :2])
    assert [i.name for i in to_pretty_midi(two).instruments] == ["Soprano", "Alto"]
    named = to_pretty_midi(two, names=["Melody", "Counter"])
    assert [i.name for i in named.instruments] == ["Melody", "Counter"]


def test_voices_from_bad_bytes_raise_melody_error():
    with pytest.raises(MelodyError):
        voices_from_midi_bytes(b"not midi")


def parse_musicxml(data: bytes) -> tuple[list[str], list[list[tuple[int, int, int]]]]:
    """Part names and each part's notes as (start_step, end_step, midi), ties merged."""
    score = converter.parseData(data, format="musicxml")
    names, notes = [], []
    for part in score.parts:
        names.append(part.partName)
        flat = part.flatten().stripTies()
        notes.append(
            [
                (round(n.offset * 4), round((n.offset + n.quarterLength) * 4), n.pitch.midi)
                for n in flat.notes
            ]
        )
    return names, notes


def test_musicxml_reads_back_with_same_pitches_and_onsets():
    v = chorale()
    data = to_musicxml(v, tempo=80, title="Test chorale")
    assert data.lstrip().startswith(b"<?xml")
    names, notes = parse_musicxml(data)
    assert names == ["Soprano", "Alto", "Tenor", "Bass"]
    assert notes == [v.notes(i) for i in range(4)]

    score = converter.parseData(data, format="musicxml")
    assert score.metadata.bestTitle == "Test chorale"
    clefs = [p.recurse().getElementsByClass(clef.Clef).first() for p in score.parts]
    assert [type(c) for c in clefs] == [
        clef.TrebleClef,
        clef.TrebleClef,
        clef.Treble8vbClef,
        clef.BassClef,
    ]
    assert score.parts[0].recurse().getElementsByClass("KeySignature").first().sharps == 2
    meters = {
        p.recurse().getElementsByClass("TimeSignature").first().ratioString for p in score.parts
    }
    assert meters == {"4/4"}
    assert score.parts[0].recurse().getElementsByClass("MetronomeMark").first().number == 80
    assert len(score.parts[0].getElementsByClass("Measure")) == 2


def test_musicxml_spells_flats_in_flat_keys():
    melody = Voices.from_pitches([65, 70, 69, 70, 72, 70, 65, 70] * 4)  # F Bb A Bb C ...
    data = to_musicxml(Voices.stack([melody] * 4))
    names = {
        n.pitch.name for n in converter.parseData(data, format="musicxml").parts[0].recurse().notes
    }
    assert "B-" in names and "A#" not in names


@pytest.mark.parametrize(
    "text, odd, name",
    [
        ("G4q A4 B4 C5 | D5 F5 E5 D5 | C5 B4 A4 G4 | F#4 G4h.", 77, "F"),  # G major's F natural
        ("F4q G4 A4 Bb4 | C5 B4 C5 A4 | Bb4 A4 G4 E4 | F4w", 71, "B"),  # F major's B natural
        ("C4q D4 E4 F4 | G4 G#4 A4 G4 | F4 E4 D4 E4 | C4w", 68, "G#"),  # a black key: sharp
    ],
)
def test_musicxml_spells_notes_outside_the_key_plainly(text, odd, name):
    from bachgan.melody import melody_from_text

    melody = melody_from_text(text, fit_range=False)[0]
    data = to_musicxml(Voices.stack([melody] * 4))
    notes = converter.parseData(data, format="musicxml").parts[0].recurse().notes
    assert {n.pitch.name for n in notes if n.pitch.midi == odd} == {name}


def test_musicxml_writes_only_the_accidentals_a_reader_needs():
    """A note in the key needs no accidental; a note outside it needs one, once per bar
    (every note carried a natural sign: music21 spells MIDI numbers with explicit naturals)."""
    import xml.etree.ElementTree as ET

    from bachgan.melody import melody_from_text

    text = "G4q A4 B4 C5 | D5 F5 F5 D5 | C5 B4 A4 G4 | F#4 G4h."  # G major; bar 2: F natural x2
    melody = melody_from_text(text, fit_range=False)[0]
    soprano = ET.fromstring(to_musicxml(Voices.stack([melody] * 4))).find("part")
    written = [
        (bar, n.findtext("pitch/step"), n.findtext("accidental"))
        for bar, measure in enumerate(soprano.iter("measure"), 1)
        for n in measure.iter("note")
        if n.findtext("accidental")
    ]
    assert written == [(2, "F", "natural")]


def test_score_svg_works_in_any_thread():
    """Streamlit engraves in each session's own thread, where Verovio's default font path
    pointed at its build folder: the second engraving failed."""
    import threading

    from bachgan.melody import BUILTIN_TUNES, melody_from_text

    v = Voices.stack([melody_from_text(BUILTIN_TUNES["Old Hundredth"], "soprano")[0]] * 4)
    pages = []
    for _ in range(2):
        t = threading.Thread(target=lambda: pages.append(to_score_svg(v)))
        t.start()
        t.join()
    pages.append(to_score_svg(v))
    assert len(pages) == 3 and all('class="note"' in p[0] for p in pages)


def test_score_svg_engraves_every_note_on_four_staves():
    from bachgan.melody import BUILTIN_TUNES, melody_from_text

    melody = melody_from_text(BUILTIN_TUNES["Old Hundredth"], "soprano")[0]
    rng = np.random.default_rng(0)
    lower = [Voices.from_pitches(np.repeat(rng.integers(40, 70, 40), 4)) for _ in range(3)]
    v = Voices.stack([melody.slice(0, 160), *lower])  # 10 bars
    pages = to_score_svg(v, tempo=96)
    svg = "".join(pages)
    assert len(pages) == 1 and svg.lstrip().startswith("<svg") and "viewBox" in svg
    written = converter.parseData(to_musicxml(v, 96), format="musicxml")
    heads = sum(1 for n in written.recurse().notes)  # tied halves are two noteheads
    assert svg.count('class="note"') == heads
    assert svg.count('class="measure"') == 10 and svg.count('class="staff"') == 4 * 10
    assert svg.count('class="system"') >= 2  # 10 bars do not fit one line
