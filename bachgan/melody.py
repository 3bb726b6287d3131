"""Melody input: a MIDI file, typed notes or a built-in tune -> a one-voice `Voices`.

Every problem with the input raises `MelodyError`, whose message tells a person what was wrong
and what to do. The limits in `LIMITS` are enforced here, so every caller is protected, not only
the UI. Each importer also returns an `ImportReport` listing what it changed, so nothing is
altered silently.

Conventions shared by all importers:
- Time is counted in 16th-note steps in 4/4 bars (16 steps per bar).
- Leading silence is dropped in whole bars, so a pickup keeps its place in the bar.
- The melody is padded with silence to a whole number of bars; callers pad or crop further.
- The melody is moved by whole octaves to sit best in the chosen voice's range (`SATB_RANGES`).

Text notation (see `notation_help()`): notes separated by spaces, e.g.
``C4q D4e E4e F4q. G4s G4s | A4h G4h`` - a note name A-G, optional # or b, an octave number
(C4 = middle C), then a duration: w h q e s (whole, half, quarter, eighth, sixteenth), a dot for
dotted (q.), or /N for N sixteenths (C4/3). Without a duration the previous one is reused (the
first defaults to a quarter). ``r`` is a rest (``rq``, ``r/2``), ``|`` an optional bar line that
is checked, and a trailing ``~`` ties a note to the next one of the same pitch.
"""

from __future__ import annotations

import io
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import mido
import numpy as np
import pretty_midi

from bachgan.voices import (
    SATB_RANGES,
    SILENT,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    VOICE_NAMES,
    Voices,
    note_name,
    voice_index,
)

MAX_UPLOAD_BYTES = 1_000_000
MAX_BARS = 64  # longest melody we harmonize
MAX_NOTES = 20_000  # notes in the whole file
MIN_TEMPO, MAX_TEMPO = 20.0, 400.0  # BPM
MAX_TEXT_CHARS = 20_000
# Files whose events reach further than this are refused (leading silence, which is dropped,
# counts): this stops absurd delta times whatever the file's time resolution.
MAX_FILE_BEATS = 4 * MAX_BARS * 4
# pretty_midi allocates one float per tick: enough for 64 bars at the finest resolution MIDI
# allows (32,767 ticks a beat; about 200 MB while pretty_midi builds its arrays), no more.
MAX_TICKS = MAX_BARS * 4 * 0x8000
# MIDI messages of every kind (notes, controllers, tempo, text...). mido parses a file byte by
# byte in Python, about 1 us a byte, so a 1 MB file of dense controller data would take seconds;
# a read budget stops such a file early, keeping every import well under a second.
MAX_EVENTS = 50_000
_MAX_READS = 6 * MAX_EVENTS  # a note takes 4 reads, a tempo change 7

LIMITS = {
    "max_upload_bytes": MAX_UPLOAD_BYTES,
    "max_bars": MAX_BARS,
    "max_notes": MAX_NOTES,
    "min_tempo_bpm": MIN_TEMPO,
    "max_tempo_bpm": MAX_TEMPO,
    "max_text_chars": MAX_TEXT_CHARS,
    "max_midi_events": MAX_EVENTS,
}

_OCTAVES = {1: "one octave", 2: "two octaves", 3: "three octaves"}


class MelodyError(ValueError):
    """Bad melody input; the message is meant for the person who gave it."""


@dataclass
class ImportReport:
    """What an importer changed, in words a musician understands."""

    changes: list[str] = field(default_factory=list)
    tempo: float | None = None  # BPM found in a MIDI file, for the UI to offer
    # Phrase ends the input marks (typed fermatas, ^): bool per step of the melody; None
    # where it marks none (they are then guessed from long notes and rests).
    phrase_ends: np.ndarray | None = None

    def __str__(self) -> str:
        return "; ".join(self.changes) if self.changes else "imported as is"


# ---------------------------------------------------------------- MIDI files


def read_midi(data: bytes) -> pretty_midi.PrettyMIDI:
    """Parse MIDI bytes, checking size and length before pretty_midi builds its arrays."""
    return _read_midi(data)[0]


def _read_midi(data: bytes) -> tuple[pretty_midi.PrettyMIDI, list[int], int]:
    """`read_midi`, with the zero-length notes pretty_midi leaves out: how many each of
    `pm.instruments` had, and how many the file has in all."""
    data = bytes(data)
    if len(data) > MAX_UPLOAD_BYTES:
        raise MelodyError(
            f"The file is too large ({len(data) / 1e6:.1f} MB); the limit is "
            f"{MAX_UPLOAD_BYTES / 1e6:g} MB. Upload a MIDI file with just the melody."
        )
    if not data.startswith(b"MThd"):
        raise MelodyError(
            "This is not a MIDI file (it does not start with 'MThd'). "
            "Upload a .mid file, for example exported from MuseScore."
        )
    too_many_events = MelodyError(
        f"The file holds too much MIDI data (more than {MAX_EVENTS:,} events, for example "
        "controller or pitch-bend data). Upload a file with just the melody."
    )
    try:
        mf = mido.MidiFile(file=_ReadBudget(data, _MAX_READS))
        if sum(len(track) for track in mf.tracks) > MAX_EVENTS:
            raise too_many_events
        tpb = mf.ticks_per_beat
        ticks = max((sum(msg.time for msg in track) for track in mf.tracks), default=0)
        notes = sum(
            msg.type == "note_on" and msg.velocity > 0 for track in mf.tracks for msg in track
        )
        zero_length, instruments = _zero_length_notes(mf)
    except _ReadBudget.Exhausted:
        raise too_many_events from None
    except MelodyError:
        raise
    except Exception as e:  # mido raises many kinds (EOFError, KeyError, struct.error, ...)
        raise _damaged(e) from e
    if not 0 < tpb < 0x8000:
        raise MelodyError(
            "This MIDI file counts time in SMPTE frames, which BachGAN cannot read. "
            "Export it again with a normal (ticks per quarter note) time base."
        )
    if ticks > MAX_FILE_BEATS * tpb:
        raise MelodyError(
            f"The file is too long (about {ticks / tpb / 4:.0f} bars). BachGAN reads melodies "
            f"of at most {MAX_BARS} bars; shorten it and try again."
        )
    if ticks > MAX_TICKS:
        raise MelodyError(
            f"The file is too long for its fine time resolution ({tpb:,} ticks per beat, "
            f"about {ticks / tpb / 4:.0f} bars). Export it again at 480 or 960 ticks per beat, "
            "or shorten it."
        )
    if notes > MAX_NOTES:
        raise MelodyError(
            f"The file has too many notes ({notes:,}; at most {MAX_NOTES:,}). "
            "Upload a file with just the melody."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(mido_object=mf)
        _, tempi = pm.get_tempo_changes()
    except Exception as e:
        raise _damaged(e) from e
    bad = [t for t in tempi if not MIN_TEMPO <= t <= MAX_TEMPO]
    if bad:
        bpm = f"{bad[0]:.1f}".removesuffix(".0")  # 19.9 BPM must not read as 20
        raise MelodyError(
            f"The file has a tempo of {bpm} BPM, outside "
            f"{MIN_TEMPO:.0f}-{MAX_TEMPO:.0f} BPM, so it is probably damaged. "
            "Fix the tempo in your notation program and export again."
        )
    return pm, [zero_length[key] for key in instruments], sum(zero_length.values())


def _zero_length_notes(mf: mido.MidiFile) -> tuple[Counter, list[tuple[int, int, int]]]:
    """Notes whose note-off comes at the tick of their note-on, which pretty_midi leaves out
    without a word, per instrument (program, channel, track); and the instruments in the order
    of `pm.instruments`. Follows pretty_midi's bookkeeping: an instrument is made by its first
    note that ends after it starts, and a note-off ends every open note of its pitch that
    started before it (ones that start at the same tick stay open if there were such)."""
    zero, instruments = Counter(), {}
    for t, track in enumerate(mf.tracks):
        program, sounding, tick = [0] * 16, defaultdict(list), 0
        for msg in track:
            tick += msg.time
            if msg.type == "program_change":
                program[msg.channel] = msg.program
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.channel, msg.note].append(tick)
            elif msg.type in ("note_on", "note_off") and (msg.channel, msg.note) in sounding:
                starts = sounding.pop((msg.channel, msg.note))
                key = (program[msg.channel], msg.channel, t)
                if all(s == tick for s in starts):
                    zero[key] += len(starts)
                else:
                    instruments.setdefault(key, None)
                    if tick in starts:
                        sounding[msg.channel, msg.note] = [tick] * starts.count(tick)
    return zero, list(instruments)


class _ReadBudget(io.BytesIO):
    """In-memory file that refuses more than `reads` read calls (mido reads byte by byte)."""

    class Exhausted(Exception):
        pass

    def __init__(self, data: bytes, reads: int):
        super().__init__(data)
        self.left = reads

    def read(self, size=-1):
        self.left -= 1
        if self.left < 0:
            raise self.Exhausted
        return super().read(size)


def _damaged(e: Exception) -> MelodyError:
    reason = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
    return MelodyError(
        f"The MIDI file is damaged and cannot be read ({reason}). "
        "Export it again from your notation program."
    )


def midi_tracks(data: bytes) -> list[str]:
    """Labels of the file's tracks, position i for `melody_from_midi(track=i)`."""
    pm = read_midi(data)
    return [_track_label(pm, i) for i in range(len(pm.instruments))]


def _track_label(pm: pretty_midi.PrettyMIDI, i: int) -> str:
    inst = pm.instruments[i]
    name = inst.name.strip() or pretty_midi.program_to_instrument_name(inst.program)
    kind = " (drums)" if inst.is_drum else ""
    return f"track {i + 1} '{name}'{kind}, {len(inst.notes)} notes"


def note_steps(
    pm: pretty_midi.PrettyMIDI, inst: pretty_midi.Instrument
) -> tuple[list[tuple[int, int, int]], int]:
    """Notes as (start, end, pitch) in 16th steps on the file's own tick grid, and how many moved.

    Ticks count quarter notes (`pm.resolution` per beat) whatever the tempo, so tempo changes are
    honoured exactly; a note that shrinks to nothing keeps one step.
    """
    step_ticks = pm.resolution / STEPS_PER_BEAT
    out, moved = [], 0
    for n in inst.notes:
        a, b = pm.time_to_tick(n.start) / step_ticks, pm.time_to_tick(n.end) / step_ticks
        s, e = round(a), round(b)
        moved += abs(a - s) > 1e-6 or abs(b - e) > 1e-6
        out.append((s, max(e, s + 1), n.pitch))
    return out, moved


def top_line(notes, steps: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Highest sounding pitch per step, with onsets; also how many notes were hidden.

    Notes are laid down from low to high so higher ones overwrite; a note of the same pitch that
    starts again keeps its own onset (repeated notes stay separate).
    """
    pitches = np.full(steps, SILENT, np.int16)
    onsets = np.zeros(steps, bool)
    for s, e, p in sorted(notes, key=lambda n: (n[2], n[0])):
        pitches[s:e] = p
        onsets[s:e] = False
        onsets[s] = True
    hidden = sum(not (pitches[s:e] == p).all() for s, e, p in notes)
    return pitches, onsets, hidden


MELODY_NAMES = ("melody", "soprano", "sopran", "vocal", "voice", "lead", "tune", "cantus")


def melody_track(pm: pretty_midi.PrettyMIDI, pitched: list[int]) -> tuple[int, str]:
    """The track most likely to hold the tune, and why: one named like a melody, else the
    highest-sounding (median pitch) of the tracks with at least a third as many notes as the
    busiest. Accompaniment usually has more notes than the tune, and lies lower."""
    named = [i for i in pitched if any(w in pm.instruments[i].name.lower() for w in MELODY_NAMES)]
    if named:
        return max(named, key=lambda i: len(pm.instruments[i].notes)), "named like a melody"
    busiest = max(len(pm.instruments[i].notes) for i in pitched)
    busy = [i for i in pitched if 3 * len(pm.instruments[i].notes) >= busiest]
    median = lambda i: float(np.median([n.pitch for n in pm.instruments[i].notes]))  # noqa: E731
    return max(busy, key=median), "the highest part"


def melody_from_midi(
    data: bytes, voice: str | int = "soprano", track: int | None = None, fit_range: bool = True
) -> tuple[Voices, ImportReport]:
    """Take the melody of a MIDI file: one track (`melody_track`'s guess unless `track` is
    given, counting from 0 as in `midi_tracks`), its top line, on a 16th grid."""
    pm, zero_length, all_zero_length = _read_midi(data)
    report = ImportReport()
    pitched = [i for i, inst in enumerate(pm.instruments) if inst.notes and not inst.is_drum]
    if track is None:
        if not pitched:
            if any(inst.notes for inst in pm.instruments):
                raise MelodyError(
                    "This file has only drum tracks; a melody needs pitched notes. "
                    "Upload a file with a melody instrument."
                )
            if all_zero_length:
                raise MelodyError(
                    f"This MIDI file has no notes that sound: its {_n(all_zero_length, 'note')} "
                    "end where they start (zero length). Export it again from your notation "
                    "program."
                )
            raise MelodyError("This MIDI file has no notes. Upload a file that contains a melody.")
        track, why = melody_track(pm, pitched)
        if len(pitched) > 1:
            report.changes.append(f"took {_track_label(pm, track)} ({why})")
    elif not 0 <= track < len(pm.instruments):
        raise MelodyError(
            f"There is no track {track + 1}; this file has {_n(len(pm.instruments), 'track')}, "
            "numbered from 1. Choose one of them."
        )
    elif track not in pitched:
        what = "drums" if pm.instruments[track].is_drum else "no notes"
        raise MelodyError(f"Track {track + 1} has {what}; choose a track with a melody.")

    notes, moved = note_steps(pm, pm.instruments[track])
    if pickup := _marked_pickup(pm):  # it ends where bar 2 begins
        notes = [(s + STEPS_PER_BAR - pickup, e + STEPS_PER_BAR - pickup, p) for s, e, p in notes]
        _placed_pickup(pickup, report)
    drop = _silent_bars(min(s for s, _, _ in notes), report)
    notes = [(s - drop, e - drop, p) for s, e, p in notes]
    steps = _whole_bars(max(e for _, e, _ in notes))
    pitches, onsets, hidden = top_line(notes, steps)

    if zero_length[track]:
        report.changes.append(
            f"skipped {_n(zero_length[track], 'zero-length note')} (no sound: each ends where "
            "it starts)"
        )
    if moved:
        report.changes.append(f"quantized {_n(moved, 'note')} to the 16th-note grid")
    if hidden:
        report.changes.append(
            f"kept the top line where notes overlap ({_n(hidden, 'note')} hidden)"
        )
    ts = pm.time_signature_changes[1:] if pickup else pm.time_signature_changes
    if ts and not _fits_bar(ts[0]):
        report.changes.append(
            f"the file is in {ts[0].numerator}/{ts[0].denominator}; BachGAN counts 4/4 bars"
        )
    report.tempo = round(float(pm.get_tempo_changes()[1][0]), 1)
    melody = Voices(pitches, onsets)
    return (_fit(melody, voice, report) if fit_range else melody), report


def _placed_pickup(steps: int, report: ImportReport) -> None:
    report.changes.append(f"put the pickup ({_beats(steps)}) at the end of a silent first bar")


def _silent_bars(first: int, report: ImportReport) -> int:
    """Steps of whole silent bars before the first note (`first`), which both importers drop
    (a pickup keeps its place in the bar); says so in the report."""
    drop = first - first % STEPS_PER_BAR
    if drop:
        report.changes.append(f"dropped {_n(drop // STEPS_PER_BAR, 'bar')} of leading silence")
    return drop


def _fits_bar(ts: pretty_midi.TimeSignature) -> bool:
    """Whether a meter's bar holds 16 sixteenths, as BachGAN's bars do (4/4, 2/2, 8/8)."""
    return ts.numerator * 16 == ts.denominator * STEPS_PER_BAR


def _marked_pickup(pm: pretty_midi.PrettyMIDI) -> int:
    """Steps of a pickup bar the file marks with a time signature of its own (say 1/4, then
    4/4 or 2/2 from bar 2, as notation programs may export an anacrusis); 0 if none is
    marked."""
    ts = pm.time_signature_changes
    if len(ts) < 2 or ts[0].time > 0 or not _fits_bar(ts[1]):
        return 0
    steps = round(pm.time_to_tick(ts[1].time) / (pm.resolution / STEPS_PER_BEAT))
    return steps if 0 < steps < STEPS_PER_BAR else 0


def _whole_bars(steps: int) -> int:
    bars = -(-steps // STEPS_PER_BAR)
    if bars > MAX_BARS:
        raise MelodyError(
            f"The melody is too long ({bars} bars); BachGAN harmonizes at most {MAX_BARS} bars. "
            "Shorten it, for example to one verse, and try again."
        )
    return max(bars, 1) * STEPS_PER_BAR


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _fit(melody: Voices, voice: str | int, report: ImportReport) -> Voices:
    """Move by octaves so most of the melody lies in the voice's range (no move if it fits)."""
    try:
        voice = VOICE_NAMES[voice_index(voice)]
    except ValueError as e:
        raise MelodyError(str(e)) from None
    lo, hi = SATB_RANGES[voice]
    notes = np.array([n[2] for n in melody.notes()])

    def outside(k: int) -> int:
        return int(((notes + 12 * k < lo) | (notes + 12 * k > hi)).sum())

    ks = [k for k in range(-5, 6) if notes.min() + 12 * k >= 0 and notes.max() + 12 * k <= 127]
    k = min(ks, key=lambda k: (outside(k), abs(k)))
    where = f"the {voice} range ({note_name(lo)}-{note_name(hi)})"
    if k:
        way = "up" if k > 0 else "down"
        report.changes.append(
            f"moved {way} {_OCTAVES.get(abs(k), f'{abs(k)} octaves')} into {where}"
        )
    if outside(k):
        report.changes.append(f"{_n(outside(k), 'note')} still lie outside {where}")
    return melody.transpose(12 * k) if k else melody


# ---------------------------------------------------------------- text notation

_LETTERS = {"w": 16, "h": 8, "q": 4, "e": 2, "s": 1}
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAMES = {v: k for k, v in _LETTERS.items()} | {12: "h.", 6: "q.", 3: "e."}


def notation_help() -> str:
    """The text notation, as markdown for the UI."""
    return """\
**Typing a melody** - notes separated by spaces, in 4/4:

| you type | means |
|---|---|
| `C4` | the note C in octave 4 (middle C); `F#4`, `Bb3` for sharps and flats |
| `C4q` | a quarter note; `w` whole, `h` half, `q` quarter, `e` eighth, `s` sixteenth |
| `C4q.` | a dotted quarter (a dot adds half) |
| `C4/3` | a note 3 sixteenths long (any whole number of sixteenths) |
| `C4` | without a duration a note lasts as long as the previous one (first: a quarter) |
| `rq`, `r/2` | a rest |
| `\\|` | a bar line (optional); bars are checked to hold 16 sixteenths, the first may be a pickup |
| `C4h~ \\| C4q` | `~` (or `_`) ties a note to the next one of the same pitch |
| `G4h^` | `^` marks a fermata: a phrase ends on this note, and BachGAN closes it with a cadence |

Example (Ode to Joy): `F#4q F#4 G4 A4 | A4 G4 F#4 E4 | D4 D4 E4 F#4 | F#4q. E4e E4h`
"""


def _token_error(i: int, tok: str, what: str) -> MelodyError:
    return MelodyError(f"'{tok}' (item {i} of what you typed): {what}")


def _parse_token(i: int, tok: str) -> tuple[int | None, int | None, bool, bool]:
    """One note or rest -> (pitch or None for a rest, steps or None, tied to the next,
    under a fermata)."""
    head, pos = tok[0], 1
    if head in "rR":
        pitch = None
    elif head.upper() in _PITCH_CLASS:
        pitch = _PITCH_CLASS[head.upper()]
        while pos < len(tok) and tok[pos] in "#b" and pos < 3:
            pitch += 1 if tok[pos] == "#" else -1
            pos += 1
        octave = re.match(r"-?[0-9]+", tok[pos:])  # ASCII digits: int() takes any Unicode ones
        if not octave:
            raise _token_error(
                i,
                tok,
                f"add an octave number after the note name, e.g. {head.upper()}4 (C4 is middle C)",
            )
        pos += octave.end()
        digits = octave.group()
        pitch = pitch + 12 * (int(digits) + 1) if len(digits) <= 4 else -1  # int(): <4,300 digits
        if not 0 <= pitch <= 127:
            raise _token_error(i, tok, "this note is outside the MIDI range C-1 to G9")
    else:
        raise _token_error(i, tok, f"'{head}' is not a note name (use A-G, or r for a rest)")
    rest = tok[pos:]
    marks = rest[len(rest.rstrip("~_^")) :]
    tie, fermata = ("~" in marks or "_" in marks), "^" in marks
    if fermata and pitch is None:
        raise _token_error(i, tok, "a fermata (^) goes on a note, not on a rest")
    rest = rest.rstrip("~_^")
    if not rest:
        return pitch, None, tie, fermata
    if re.fullmatch(r"/[0-9]{1,5}", rest) and 0 < int(rest[1:]) <= MAX_BARS * STEPS_PER_BAR:
        return pitch, int(rest[1:]), tie, fermata
    if rest[0] in _LETTERS and rest[1:] in ("", "."):
        steps = _LETTERS[rest[0]] * (1.5 if rest[1:] else 1)
        if steps != int(steps):
            raise _token_error(i, tok, "a dotted sixteenth is shorter than the 16th-note grid")
        return pitch, int(steps), tie, fermata
    raise _token_error(
        i,
        tok,
        f"'{rest}' is not a duration (use w h q e s, a dot for dotted like q., "
        "or /N for N sixteenths like /3)",
    )


def melody_from_text(
    text: str, voice: str | int = "soprano", fit_range: bool = True
) -> tuple[Voices, ImportReport]:
    """Parse the text notation (see `notation_help`) into a melody."""
    if len(text) > MAX_TEXT_CHARS:
        raise MelodyError(
            f"The text is too long ({len(text):,} characters; at most {MAX_TEXT_CHARS:,})."
        )
    tokens = text.replace("|", " | ").replace(",", " ").split()
    report = ImportReport()
    pitches: list[int] = []
    onsets: list[bool] = []
    fermatas: list[bool] = []
    bar_starts: list[int] = [0]  # step where each bar written between bar lines begins
    bar_token = 1  # token that begins the current bar
    steps, tie_from = 4, None  # duration carried over; (token, pitch) a tie waits on
    length, cap = 0, (MAX_BARS + 1) * STEPS_PER_BAR  # past the cap steps are only counted,
    for i, tok in enumerate(tokens, 1):  # so "too long" can say by how much
        if tok == "|" and length == 0 and len(bar_starts) == 1:
            bar_token = i + 1  # a bar line before any note opens the first bar: not a bar
            continue
        if tok == "|":
            _check_bar(len(bar_starts), length - bar_starts[-1], tokens, bar_token, i)
            bar_starts.append(length)
            bar_token = i + 1
            continue
        pitch, dur, tie, fermata = _parse_token(i, tok)
        steps = dur or steps
        if tie_from and tie_from[1] != pitch:
            raise _token_error(
                *tie_from[0], f"a tie (~) must lead to the same note, but the next is '{tok}'"
            )
        length += steps
        if length <= cap:
            pitches += [SILENT if pitch is None else pitch] * steps
            onsets += [tie_from is None and pitch is not None] + [False] * (steps - 1)
            fermatas += [fermata] * steps
        tie_from = ((i, tok), pitch) if tie and pitch is not None else None
    if tie_from:
        raise _token_error(*tie_from[0], "a tie (~) at the end leads nowhere; remove it")
    if len(bar_starts) > 1 and length - bar_starts[-1] > STEPS_PER_BAR:
        _check_bar(len(bar_starts), length - bar_starts[-1], tokens, bar_token, len(tokens) + 1)
    if length > cap:
        _whole_bars(length)  # raises, with the melody's length
    if not any(p >= 0 for p in pitches):
        raise MelodyError("No notes found. Type notes like: C4q D4q E4h (see the notation help).")

    pickup = bar_starts[1] if len(bar_starts) > 1 else STEPS_PER_BAR
    if 0 < pickup < STEPS_PER_BAR:
        pad = STEPS_PER_BAR - pickup
        pitches, onsets = [SILENT] * pad + pitches, [False] * pad + onsets
        fermatas = [False] * pad + fermatas
        _placed_pickup(pickup, report)
    drop = _silent_bars(next(i for i, p in enumerate(pitches) if p >= 0), report)
    pitches, onsets, fermatas = pitches[drop:], onsets[drop:], fermatas[drop:]
    total = _whole_bars(len(pitches))
    melody = Voices(pitches, onsets).pad_to(total)
    if any(fermatas):
        report.phrase_ends = np.zeros(melody.steps, bool)
        report.phrase_ends[: len(fermatas)] = fermatas
    return (_fit(melody, voice, report) if fit_range else melody), report


def _check_bar(bar: int, length: int, tokens: list[str], first: int, stop: int) -> None:
    """Bars between bar lines hold 16 steps; the first (a pickup) may hold fewer.

    `first` and `stop` are 1-based token positions: the bar is tokens first .. stop-1."""
    if length == STEPS_PER_BAR or (bar == 1 and length < STEPS_PER_BAR):
        return  # a full bar, or a pickup
    if length == 0:
        raise MelodyError(f"bar {bar} is empty: two bar lines (|) with no notes between them")
    raise MelodyError(
        f"bar {bar} (items {first}-{stop - 1}: '{' '.join(tokens[first - 1 : stop - 1])}') "
        f"holds {_beats(length)}, but a 4/4 bar holds 4 beats; check the note lengths"
    )


def _beats(steps: int) -> str:
    b = steps / STEPS_PER_BEAT
    return f"{b:g} beat" + ("" if b == 1 else "s")


def melody_to_text(melody: Voices, voice: int = 0) -> str:
    """Write one voice in the text notation, with bar lines and ties; parses back identically
    when the melody is a whole number of bars long."""
    events = []  # (start, end, pitch or None)
    t = 0
    for s, e, p in melody.notes(voice):
        if s > t:
            events.append((t, s, None))
        events.append((s, e, p))
        t = e
    if melody.steps > t:
        events.append((t, melody.steps, None))
    bars: list[list[str]] = [[] for _ in range(melody.bars)]
    for s, e, p in events:
        while s < e:  # split at bar lines, tying the pieces of a note
            cut = min(e, (s // STEPS_PER_BAR + 1) * STEPS_PER_BAR)
            name = "r" if p is None else note_name(p)
            dur = _NAMES.get(cut - s, f"/{cut - s}")
            tie = "~" if p is not None and cut < e else ""
            bars[s // STEPS_PER_BAR].append(name + dur + tie)
            s = cut
    lines = [" | ".join(" ".join(b) for b in bars[i : i + 4]) for i in range(0, len(bars), 4)]
    return " |\n".join(lines)


# ---------------------------------------------------------------- built-in tunes

BUILTIN_TUNES: dict[str, str] = {
    "Twinkle, Twinkle, Little Star": "F4q F4 C5 C5 | D5 D5 C5h | Bb4q Bb4 A4 A4 | G4 G4 F4h",
    "Ode to Joy (Beethoven)": (
        "F#4q F#4 G4 A4 | A4 G4 F#4 E4 | D4 D4 E4 F#4 | F#4q. E4e E4h |\n"
        "F#4q F#4 G4 A4 | A4 G4 F#4 E4 | D4 D4 E4 F#4 | E4q. D4e D4h"
    ),
    "Old Hundredth": (
        "G4h G4q F#4 | E4 D4 G4 A4 | B4h B4h | B4q B4 A4 G4 | C5 B4 A4h |\n"
        "G4h A4q B4 | A4 G4 E4 F#4 | G4h D5h | B4q G4 A4 C5 | B4 A4 G4h"
    ),
    "Ein feste Burg ist unser Gott": (
        "D5q | D5 D5 A4e B4 C#5q | D5e C#5 B4q A4 D5 | C#5 B4 A4 B4 | G4e F#4 E4q D4h"
    ),
    "Frère Jacques": (
        "F4q G4 A4 F4 | F4 G4 A4 F4 | A4 Bb4 C5h | A4q Bb4 C5h |\n"
        "C5e D5 C5 Bb4 A4q F4 | C5e D5 C5 Bb4 A4q F4 | F4 C4 F4h | F4q C4 F4h"
    ),
}


def builtin_tune(name: str, voice: str | int = "soprano") -> Voices:
    """One of `BUILTIN_TUNES` (name matched ignoring case), fitted to the voice's range."""
    match = {k.lower(): k for k in BUILTIN_TUNES}.get(name.strip().lower())
    if match is None:
        raise MelodyError(f"Unknown tune {name!r}; choose one of: {', '.join(BUILTIN_TUNES)}.")
    return melody_from_text(BUILTIN_TUNES[match], voice)[0]
