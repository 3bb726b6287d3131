"""Fuzzing the melody importers: every input either imports or raises MelodyError, quickly.

- 1,200 MIDI files: byte-level mutations, structure-level mutations (extreme field values,
  duplicated or dropped events, extra tracks), truncations, splices and random bytes;
- 1,200 text melodies: random token grammar, mutated built-in tunes and random Unicode;
- the regression corpus in tests/data/nasty (see make_corpus.py there) with expected outcomes.

Each case runs in-process under a 5 s alarm that only detects hangs; the measured maximum is
printed (run with -s) rather than asserted, so a busy machine cannot make the suite flaky.
BACHGAN_FUZZ_CASES and BACHGAN_FUZZ_SEED scale and vary the run for a deeper local search.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from bachgan.melody import (
    BUILTIN_TUNES,
    MAX_BARS,
    MelodyError,
    melody_from_midi,
    melody_from_text,
    midi_tracks,
)
from bachgan.voices import STEPS_PER_BAR, VOICE_NAMES, Voices

CASES = int(os.environ.get("BACHGAN_FUZZ_CASES", "1200"))
SEED = int(os.environ.get("BACHGAN_FUZZ_SEED", "20240611"))
HANG_SECONDS = 5.0  # a hang detector, not a speed test: the target is well under 1 s
NASTY = Path(__file__).resolve().parent / "data" / "nasty"


class Hang(Exception):
    pass


@contextmanager
def hang_alarm(seconds: float = HANG_SECONDS):
    """Raise Hang in the main thread if the block runs longer than `seconds`."""

    def ring(signum, frame):
        raise Hang(f"no result after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Tally:
    """Outcomes and timings of one fuzz campaign; `problems` lists anything not allowed."""

    def __init__(self, name: str):
        self.name = name
        self.ok = self.errors = 0
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.problems: list[str] = []

    def run(self, label: str, fn, *args):
        t, c = time.perf_counter(), time.process_time()
        try:
            with hang_alarm():
                result = fn(*args)
        except MelodyError as err:
            self.errors += 1
            assert str(err).strip(), f"{label}: MelodyError without a message"
            result = None
        except Exception as err:  # noqa: BLE001 - anything else is exactly what we hunt
            self.problems.append(f"{label}: {type(err).__name__}: {err}"[:300])
            result = None
        else:
            self.ok += 1
        self.wall.append(time.perf_counter() - t)
        self.cpu.append(time.process_time() - c)
        return result

    def summary(self) -> str:
        n = self.ok + self.errors + len(self.problems)
        return (
            f"{self.name}: {n} cases, {self.ok} imported, {self.errors} MelodyError, "
            f"{len(self.problems)} other; per case max {max(self.wall):.3f} s wall / "
            f"{max(self.cpu):.3f} s CPU, p99 {np.percentile(self.wall, 99):.3f} s, "
            f"total {sum(self.wall):.1f} s"
        )


def check_melody(melody: Voices, label: str) -> None:
    """What every caller may rely on when an import succeeds."""
    assert isinstance(melody, Voices), label
    assert melody.n_voices == 1, label
    assert melody.steps % STEPS_PER_BAR == 0, label
    assert STEPS_PER_BAR <= melody.steps <= MAX_BARS * STEPS_PER_BAR, label
    sounding = melody.pitches[melody.pitches >= 0]
    assert sounding.size and sounding.max() <= 127, label


# ---------------------------------------------------------------- MIDI


def seed_files() -> list[bytes]:
    """Small valid files that exercise many features: tracks, drums, tempo and meter changes,
    pitch bends, controllers, sysex, running status, chords, pickups."""
    out = []
    pm = pretty_midi.PrettyMIDI(initial_tempo=96, resolution=480)
    for program, base, drum in ((73, 72, False), (32, 40, False), (0, 36, True)):
        inst = pretty_midi.Instrument(program, is_drum=drum, name=f"p{program}")
        inst.notes = [
            pretty_midi.Note(90, base + (i * 5) % 12, i * 0.3, i * 0.3 + 0.35) for i in range(24)
        ]
        inst.pitch_bends = [pretty_midi.PitchBend(100 * i, i * 0.2) for i in range(5)]
        inst.control_changes = [pretty_midi.ControlChange(7, 100, 0.1)]
        pm.instruments.append(inst)
    pm.time_signature_changes = [
        pretty_midi.TimeSignature(3, 4, 0),
        pretty_midi.TimeSignature(4, 4, 2.0),
    ]
    pm.key_signature_changes = [pretty_midi.KeySignature(3, 0)]
    buf = io.BytesIO()
    pm.write(buf)
    out.append(buf.getvalue())

    track = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=500_000),
            mido.MetaMessage("track_name", name="Melody"),
            mido.Message("sysex", data=[1, 2, 3]),
        ]
    )
    for i in range(16):
        track.append(mido.Message("note_on", note=60 + i % 7, velocity=80, time=24 if i else 72))
        track.append(mido.Message("note_on", note=60 + i % 7, velocity=0, time=48))
        if i == 8:
            track.append(mido.MetaMessage("set_tempo", tempo=400_000))
    for _ in range(4):  # chords, released one by one
        track += [mido.Message("note_on", note=p, velocity=70) for p in (60, 64, 67, 72)]
        track += [mido.Message("note_off", note=p, time=96 if p == 60 else 0) for p in (60, 64, 67)]
        track.append(mido.Message("note_off", note=72))
    mf = mido.MidiFile(type=0, ticks_per_beat=96, tracks=[track])
    buf = io.BytesIO()
    mf.save(file=buf)
    out.append(buf.getvalue())
    return out


EXTREMES = {
    "note": (0, 127),
    "velocity": (0, 127),
    "channel": (0, 15),
    "time": (0, 0x0FFFFFFF),
    "tempo": (0, 0xFFFFFF),
    "numerator": (0, 255),
    "pitch": (-8192, 8191),
    "value": (0, 127),
    "program": (0, 127),
}


def structural_mutant(rng: random.Random, seed: bytes) -> bytes | None:
    """Parse, change events and fields (often to extremes), write again; None if unwritable."""
    src = mido.MidiFile(file=io.BytesIO(seed))
    tracks = [mido.MidiTrack(list(t)) for t in src.tracks]
    mf = mido.MidiFile(type=src.type, ticks_per_beat=src.ticks_per_beat, tracks=tracks)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        track = rng.choice(mf.tracks) if mf.tracks else None
        if op == 0:
            mf.ticks_per_beat = rng.choice([1, 2, 3, 7, 96, 960, 0x7FFF])
        elif op == 1 and track:
            i = rng.randrange(len(track))
            names = [k for k in EXTREMES if hasattr(track[i], k)]
            if names:
                key = rng.choice(names)
                lo, hi = EXTREMES[key]
                value = rng.choice(
                    [lo, hi, rng.randint(lo, hi), rng.randint(lo, min(hi, lo + 200))]
                )
                try:
                    track[i] = track[i].copy(**{key: value})
                except (ValueError, TypeError):
                    pass
        elif op == 2 and track and len(track) > 1:
            del track[rng.randrange(len(track) - 1)]
        elif op == 3 and track:
            i = rng.randrange(len(track))
            track[i:i] = track[i : i + rng.randint(1, 20)] * rng.randint(1, 50)
        elif op == 4:
            mf.tracks.append(mido.MidiTrack(list(rng.choice(mf.tracks)) if mf.tracks else []))
        elif op == 5 and len(mf.tracks) > 1:
            del mf.tracks[rng.randrange(len(mf.tracks))]
        elif op == 6 and track:
            extra = [
                mido.MetaMessage("set_tempo", tempo=rng.choice([1, 150_000, 3_000_000, 0xFFFFFF])),
                mido.MetaMessage("time_signature", numerator=rng.choice([1, 3, 7, 255])),
                mido.MetaMessage("key_signature", key=rng.choice(["C", "F#m", "Cb"])),
                mido.Message(
                    "note_on",
                    note=rng.randrange(128),
                    velocity=rng.randrange(128),
                    channel=rng.choice([0, 9]),
                    time=rng.choice([0, 1, 5000, 100_000]),
                ),
                mido.Message("note_off", note=rng.randrange(128)),
                mido.Message("pitchwheel", pitch=8191),
            ]
            track.insert(rng.randrange(len(track)), rng.choice(extra))
    buf = io.BytesIO()
    try:
        mf.save(file=buf)
    except Exception:  # noqa: BLE001 - mido refuses to write some mutants; skip those
        return None
    return buf.getvalue()


def byte_mutant(rng: random.Random, data: bytes) -> bytes:
    d = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        at = rng.randrange(len(d) + 1)
        if op == 0 and at < len(d):
            d[at] = rng.choice([rng.randrange(256), 0x00, 0x7F, 0x80, 0xFF, 0x90, 0xF0])
        elif op == 1:
            d[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:
            del d[at : at + rng.randint(1, 16)]
        elif op == 3:
            d[at:at] = d[at : at + rng.randint(1, 64)] * rng.randint(1, 4)
        elif op == 4 and at + 4 <= len(d):  # a chunk length or delta time gone wild
            d[at : at + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x8f\xff\xff\x7f"]
            )
    return bytes(d)


def midi_cases(rng: random.Random, n: int):
    seeds = seed_files()
    for i in range(n):
        seed = rng.choice(seeds)
        kind = i % 10
        if kind < 3:
            yield "bytes", byte_mutant(rng, seed)
        elif kind < 6:
            yield "structure", structural_mutant(rng, seed) or byte_mutant(rng, seed)
        elif kind < 8:
            yield "truncated", seed[: rng.randrange(len(seed))]
        elif kind == 8:
            other = rng.choice(seeds)
            yield "spliced", seed[: rng.randrange(len(seed))] + other[rng.randrange(len(other)) :]
        elif rng.random() < 0.5:
            yield "random+header", b"MThd" + rng.randbytes(rng.randint(0, 400))
        else:
            yield "random", rng.randbytes(rng.randint(0, 400))


def import_midi_every_way(rng: random.Random, data: bytes, label: str):
    melody, _ = melody_from_midi(data, voice=rng.choice(VOICE_NAMES))
    check_melody(melody, label)
    tracks = midi_tracks(data)
    pick = rng.randint(-1, len(tracks))
    if not 0 <= pick < len(tracks):
        with pytest.raises(MelodyError, match="track"):
            melody_from_midi(data, track=pick)
        return melody
    try:  # a track of its own may hold no notes, or too many
        chosen, _ = melody_from_midi(data, track=pick, fit_range=rng.random() < 0.5)
        check_melody(chosen, label + f" track={pick}")
    except MelodyError:
        pass
    return melody


def test_fuzz_midi_import(record_property):
    rng = random.Random(SEED)
    tally = Tally("MIDI fuzz")
    kinds: dict[str, int] = {}
    for i, (kind, data) in enumerate(midi_cases(rng, CASES)):
        kinds[kind] = kinds.get(kind, 0) + 1
        tally.run(f"case {i} ({kind}, {data[:24]!r})", import_midi_every_way, rng, data, kind)
    print("\n" + tally.summary(), kinds)
    record_property("midi_fuzz", tally.summary())
    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.ok + tally.errors >= 1000
    # The campaign reaches deep: many files import, many are refused.
    assert tally.ok >= CASES // 10 and tally.errors >= CASES // 10, tally.summary()


# ---------------------------------------------------------------- text

NOTE_NAMES = list("CDEFGABcdefgab") + ["r", "R", "H", "X", "", "#", "b"]
ACCIDENTALS = ["", "", "", "#", "b", "##", "bb", "#b", "###"]
OCTAVES = ["4", "5", "3", "-1", "9", "10", "-2", "", "0", "٤", "４", "²", "99999", "-", "4.5"]
DURATIONS = ["", "", "q", "h", "w", "e", "s", "q.", "h.", "s.", "w.", "/3", "/0", "/16", "/1024"]
DURATIONS += ["/1025", "/", "/x", "/-1", "qq", "x", ".", "/²", "/" + "9" * 50]
ODD = ["|", "|", ",", "~", "_", "\t", "\n", "\r\n", "\x00", "\u200b", "\u200f", "🎵", "é"]


def random_token(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return rng.choice(ODD)
    token = rng.choice(NOTE_NAMES) + rng.choice(ACCIDENTALS) + rng.choice(OCTAVES)
    token += rng.choice(DURATIONS)
    if rng.random() < 0.08:
        token += rng.choice(["~", "_", "~~"])
    return token


VALID_STEPS = {"s": 1, "e": 2, "e.": 3, "q": 4, "q.": 6, "h": 8, "h.": 12, "w": 16, "/5": 5}


def plausible_melody(rng: random.Random) -> str:
    """Mostly well-formed: real notes and rests, ties, bar lines where bars end (in half of
    the melodies); then a few tokens swapped for random ones."""
    tokens, steps, pitch, tied = [], 0, "C4", False
    barred = rng.random() < 0.5
    for _ in range(rng.randint(1, 80)):
        left = STEPS_PER_BAR - steps % STEPS_PER_BAR
        dur = rng.choice([d for d, n in VALID_STEPS.items() if n <= left or not barred])
        if tied:
            tokens.append(pitch + dur)  # a tie leads to the same note
        elif rng.random() < 0.1:
            tokens.append("r" + dur)
        else:
            pitch = rng.choice("CDEFGAB") + rng.choice(["", "", "#", "b"]) + str(rng.randint(2, 6))
            tokens.append(pitch + dur)
        tied = not tokens[-1].startswith("r") and rng.random() < 0.05
        tokens[-1] += "~" if tied else ""
        steps += VALID_STEPS[dur]
        if barred and steps % STEPS_PER_BAR == 0:
            tokens.append("|")
    if tied:
        tokens.append(pitch + "q")
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        tokens[rng.randrange(len(tokens))] = random_token(rng)
    return " ".join(tokens)


def text_cases(rng: random.Random, n: int):
    tunes = list(BUILTIN_TUNES.values())
    alphabet = "CDEFGABrqhwes/#b.~|0123456789- \n" + "٤４²é\x00\u200b🎵"
    for i in range(n):
        kind = i % 5
        if kind < 2:
            yield "plausible", plausible_melody(rng)
        elif kind == 2:
            sep = rng.choice([" ", " ", "  ", ",", " | "])
            yield "token soup", sep.join(random_token(rng) for _ in range(rng.randint(0, 60)))
        elif kind == 3:
            text = list(rng.choice(tunes))
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(len(text) + 1)
                op = rng.randrange(3)
                if op == 0 and at < len(text):
                    del text[at]
                elif op == 1:
                    text.insert(at, rng.choice(alphabet))
                elif at < len(text):
                    text[at] = rng.choice(alphabet)
            yield "mutated tune", "".join(text) * rng.choice([1, 1, 1, 3, 20])
        else:
            yield "random", "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))


def parse_text(text: str, voice: str) -> None:
    melody, _ = melody_from_text(text, voice)
    check_melody(melody, repr(text[:40]))


def test_fuzz_text_import(record_property):
    rng = random.Random(SEED + 1)
    tally = Tally("text fuzz")
    for i, (kind, text) in enumerate(text_cases(rng, CASES)):
        tally.run(f"case {i} ({kind}, {text[:40]!r})", parse_text, text, rng.choice(VOICE_NAMES))
    print("\n" + tally.summary())
    record_property("text_fuzz", tally.summary())
    assert not tally.problems, "\n".join(tally.problems[:20])
    assert tally.ok + tally.errors >= 1000
    assert tally.ok >= CASES // 10 and tally.errors >= CASES // 10, tally.summary()


# ---------------------------------------------------------------- the nasty corpus

EXPECTED = json.loads((NASTY / "expected.json").read_text())


def read_nasty(name: str):
    data = (NASTY / name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    if ".mid" in name:
        return lambda: melody_from_midi(data)
    return lambda: melody_from_text(data.decode("utf-8", errors="replace"))  # as the CLI does


def test_nasty_corpus_is_complete():
    on_disk = {p.name for p in NASTY.iterdir()} - {"expected.json", "make_corpus.py"}
    assert on_disk == set(EXPECTED), "run tests/data/nasty/make_corpus.py to regenerate"
    assert len(EXPECTED) >= 50


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nasty_corpus(name):
    expected = EXPECTED[name]
    with hang_alarm():
        if expected == "ok":
            melody, _ = read_nasty(name)()
            check_melody(melody, name)
        else:
            with pytest.raises(MelodyError, match=re.escape(expected)):
                read_nasty(name)()
