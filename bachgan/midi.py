"""Voices -> MIDI and MusicXML, and our own MIDI files back to Voices.

MIDI files have one instrument per voice, named Soprano, Alto, Tenor, Bass (the contract in
DESIGN.md), one tempo and 4/4. Held notes are single MIDI notes and repeated notes stay separate,
because both come from `Voices.notes()`. MusicXML goes through music21 so notation programs get
measures, ties, clefs and a key signature; `to_score_svg` engraves that MusicXML with Verovio,
so the app can show the chorale as sheet music.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence

import mido
import numpy as np
import pretty_midi

from bachgan.melody import MelodyError, note_steps, top_line
from bachgan.voices import STEPS_PER_BAR, STEPS_PER_BEAT, VOICE_NAMES, Voices

# A few General MIDI programs that suit chorales (program numbers count from 0).
PROGRAMS = {
    "Choir Aahs": 52,
    "Voice Oohs": 53,
    "Church Organ": 19,
    "String Ensemble": 48,
    "Acoustic Grand Piano": 0,
    "Flute": 73,
}
DEFAULT_PROGRAM = PROGRAMS["Choir Aahs"]


def voice_names(n_voices: int) -> list[str]:
    """Soprano..Bass for up to four voices, then 'Voice 5', ..."""
    return [VOICE_NAMES[i].title() if i < 4 else f"Voice {i + 1}" for i in range(n_voices)]


def _programs(programs, names: list[str]) -> list[int]:
    """Accept None, one program, a sequence, or a mapping by voice name; names from PROGRAMS."""

    def one(p) -> int:
        p = PROGRAMS[p] if isinstance(p, str) else int(p)
        if not 0 <= p <= 127:
            raise ValueError(f"General MIDI programs are 0-127, got {p}")
        return p

    if programs is None:
        return [DEFAULT_PROGRAM] * len(names)
    if isinstance(programs, (str, int, np.integer)):
        return [one(programs)] * len(names)
    if isinstance(programs, Mapping):
        lower = {str(k).lower(): v for k, v in programs.items()}
        return [one(lower.get(n.lower(), DEFAULT_PROGRAM)) for n in names]
    if isinstance(programs, Sequence) and len(programs) == len(names):
        return [one(p) for p in programs]
    raise ValueError(f"programs must be one program, {len(names)} programs, or a dict by voice")


def to_pretty_midi(
    voices: Voices,
    tempo: float = 80.0,
    programs: int | str | Sequence | Mapping | None = None,
    velocity: int = 80,
    names: Sequence[str] | None = None,
) -> pretty_midi.PrettyMIDI:
    """One instrument per voice at a steady tempo (BPM, quarter notes)."""
    if not 0 < tempo <= 1000:
        raise ValueError(f"tempo must be a positive number of BPM, got {tempo}")
    names = list(names) if names is not None else voice_names(voices.n_voices)
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=float(tempo))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    step = 60.0 / tempo / STEPS_PER_BEAT
    for i, (name, program) in enumerate(zip(names, _programs(programs, names))):
        inst = pretty_midi.Instrument(program=program, name=name)
        for s, e, p in voices.notes(i):
            inst.notes.append(pretty_midi.Note(int(velocity), p, s * step, e * step))
        pm.instruments.append(inst)
    return pm


def to_midi_bytes(voices: Voices, tempo: float = 80.0, **kwargs) -> bytes:
    """A standard MIDI file (type 1) as bytes; kwargs as for `to_pretty_midi`."""
    buf = io.BytesIO()
    to_pretty_midi(voices, tempo, **kwargs).write(buf)
    return buf.getvalue()


def duration_s(midi: bytes) -> float:
    """How long a MIDI file written by `to_midi_bytes` plays, in seconds (its last note's
    end). Not for uploads: it skips `read_midi`'s size checks."""
    return float(pretty_midi.PrettyMIDI(io.BytesIO(midi)).get_end_time())


def voices_from_midi_bytes(data: bytes, steps: int | None = None) -> Voices:
    """Read a file written by `to_midi_bytes` back into Voices, one voice per name of a track
    that plays (Soprano, Alto...; not a named tempo track) in the file's order, so a silent voice
    stays a silent column in its place (pretty_midi leaves out tracks without notes).
    Instruments sharing a name share a voice, its top line; unnamed ones come last.

    Notes snap to 16ths on the file's own tick grid; the length is `steps`, or the last note's
    end rounded up to a whole bar. Bytes that are no MIDI file raise `MelodyError`.

    Not for uploads: like `duration_s` it skips `read_midi`'s limits, so that the file is
    parsed once, by mido, whose tracks keep the names of silent voices too.
    """
    try:
        mf = mido.MidiFile(file=io.BytesIO(data))
        playing = [t.name for t in mf.tracks if t.name and any(not msg.is_meta for msg in t)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as read_midi: pretty_midi's remarks on odd files
            pm = pretty_midi.PrettyMIDI(mido_object=mf)
    except Exception as e:  # mido raises many kinds (EOFError, KeyError, OSError, ...)
        raise MelodyError(f"Not a MIDI file BachGAN can read ({str(e) or type(e).__name__})") from e
    names = list(dict.fromkeys(playing + [inst.name for inst in pm.instruments]))
    parts = [[] for _ in names]
    for inst in pm.instruments:
        parts[names.index(inst.name)] += note_steps(pm, inst)[0]
    end = max((e for notes in parts for _, e, _ in notes), default=0)
    steps = steps if steps is not None else max(1, -(-end // STEPS_PER_BAR)) * STEPS_PER_BAR
    columns = []
    for notes in parts:
        notes = [(s, min(e, steps), p) for s, e, p in notes if s < steps]
        pitches, onsets, _ = top_line(notes, steps)
        columns.append(Voices(pitches, onsets))
    return Voices.stack(columns) if columns else Voices.empty(steps, 0)


def to_musicxml(voices: Voices, tempo: float = 80.0, title: str = "BachGAN chorale") -> bytes:
    """A MusicXML score (bytes): one part per voice, 4/4, ties across bar lines, key signature."""
    from music21 import clef, key, metadata, meter, note, stream
    from music21 import tempo as m21tempo
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = stream.Score()
    score.metadata = metadata.Metadata(title=title, composer="BachGAN")
    names = voice_names(voices.n_voices)
    clefs = {"Soprano": clef.TrebleClef, "Alto": clef.TrebleClef, "Tenor": clef.Treble8vbClef}
    for i, name in enumerate(names):
        part = stream.Part(id=name)
        part.partName = name
        part.insert(0, clefs.get(name, clef.BassClef)())
        part.insert(0, meter.TimeSignature("4/4"))
        if i == 0:
            part.insert(0, m21tempo.MetronomeMark(number=tempo))
        t = 0
        for s, e, p in voices.notes(i) + [(voices.steps, voices.steps, None)]:
            if s > t:
                part.insert(t / STEPS_PER_BEAT, note.Rest(quarterLength=(s - t) / STEPS_PER_BEAT))
            if p is not None:
                n = note.Note(p, quarterLength=(e - s) / STEPS_PER_BEAT)
                part.insert(s / STEPS_PER_BEAT, n)
            t = max(t, e)
        score.insert(0, part)
    if any(voices.notes(i) for i in range(voices.n_voices)):
        k = score.analyze("key")
        _spell(score, k)
        for part in score.parts:
            part.insert(0, key.KeySignature(k.sharps))
    score.makeNotation(inPlace=True)
    return GeneralObjectExporter(score).parse()


# Verovio's page: 210 mm wide at 40% scale fits four or five bars of four staves per system.
_SCORE_OPTIONS = {
    "scale": 40,
    "pageWidth": 2100,
    "pageHeight": 60000,  # Verovio's largest page: one long page, cut where it ends
    "adjustPageHeight": True,
    "header": "none",
    "footer": "none",
    "svgViewBox": True,  # scales to the width it is shown at (a phone, a wide screen)
}


def to_score_svg(voices: Voices, tempo: float = 80.0) -> list[str]:
    """The `to_musicxml` score engraved as sheet music: one SVG string per page (one page
    unless the piece is very long). Bad input raises ValueError."""
    from importlib.resources import files

    import verovio

    verovio.enableLog(verovio.LOG_ERROR)
    # Verovio's default font path is per thread, and outside the importing thread it is the
    # wheel's build folder: Streamlit runs each session in its own thread, so set it here.
    tk = verovio.toolkit(False)
    if not tk.setResourcePath(str(files("verovio") / "data")):
        raise ValueError("Verovio's fonts could not be loaded")
    tk.setOptions(_SCORE_OPTIONS)
    if not tk.loadData(to_musicxml(voices, tempo).decode()):
        raise ValueError("Verovio could not read the MusicXML score")
    return [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]


_WHITE_KEYS = {0, 2, 4, 5, 7, 9, 11}  # pitch classes with a natural name


def _spell(score, k) -> None:
    """Spell pitches as the key does (its scale, plus the leading tone in minor); outside it,
    a natural where there is one (F natural in G major, not E#), else a sharp or a flat as
    the key signature leans."""
    names = {p.pitchClass: p.name for p in k.pitches}
    if k.mode == "minor":
        lead = k.tonic.transpose("-m2")
        names[lead.pitchClass] = lead.name
    flats = k.sharps < 0
    for n in score.recurse().notes:
        options = [n.pitch, *n.pitch.getAllCommonEnharmonics()]
        want = names.get(n.pitch.pitchClass)
        natural = n.pitch.pitchClass in _WHITE_KEYS
        for q in options:
            alter = q.accidental.alter if q.accidental else 0
            if want is not None:
                fits = q.name == want
            else:
                fits = alter == 0 if natural else abs(alter) == 1 and (alter < 0) == flats
            if fits:
                if alter == 0:  # an explicit natural is drawn; makeNotation adds needed ones
                    q.accidental = None
                n.pitch = q
                break
