"""Write the nasty-input regression corpus next to this file, with expected.json.

    .venv/bin/python tests/data/nasty/make_corpus.py

Every file is one hostile or broken input for the melody importers: damaged MIDI headers and
chunks, absurd tempos and time bases, huge delta times, floods of events, pathological text
melodies (Unicode digits, 5,000-digit numbers, control characters). `expected.json` maps a file
name to "ok" or to a phrase the MelodyError message must contain; `tests/test_fuzz.py` checks
each file against it. Files that would be large are stored gzipped (`.mid.gz`), so the corpus
stays small while the importer still sees the full hostile bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import mido

HERE = Path(__file__).resolve().parent

NOTE = [mido.Message("note_on", note=72, velocity=90), mido.Message("note_off", note=72, time=96)]


def smf(*tracks, tpb=96, type=1) -> bytes:
    mf = mido.MidiFile(type=type, ticks_per_beat=tpb)
    mf.tracks.extend(mido.MidiTrack(t) for t in tracks)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def header(fmt=0, ntracks=1, tpb=96, length=6) -> bytes:
    return b"MThd" + struct.pack(">LhhH", length, fmt, ntracks, tpb)


def raw_track(body: bytes, length: int | None = None) -> bytes:
    return b"MTrk" + struct.pack(">L", len(body) if length is None else length) + body


def tempo(us_per_beat: int) -> list:
    return [mido.MetaMessage("set_tempo", tempo=us_per_beat), *NOTE]


def scale(n, start=60, step=24):
    out = []
    for i in range(n):
        out += [
            mido.Message("note_on", note=start + i % 12, velocity=80),
            mido.Message("note_off", note=start + i % 12, time=step),
        ]
    return out


def bars(n: int) -> list:
    """n whole-note bars at 96 ticks per beat."""
    return [m for _ in range(n) for m in (NOTE[0], NOTE[1].copy(time=4 * 96))]


GOOD_BODY = b"\x00\x90\x48\x50\x60\x80\x48\x00\x00\xff\x2f\x00"  # C5 quarter, end of track

MIDI: dict[str, tuple[bytes, str]] = {
    # -- not MIDI at all, or headers that lie
    "empty.mid": (b"", "not a MIDI file"),
    "riff_wrapped.mid": (
        b"RIFF\x20\x00\x00\x00RMIDdata" + header() + raw_track(GOOD_BODY),
        "not a MIDI",
    ),
    "magic_only.mid": (b"MThd", "damaged"),
    "header_length_zero.mid": (header(length=0) + raw_track(GOOD_BODY), "damaged"),
    "zero_tracks.mid": (header(fmt=1, ntracks=0), "damaged"),
    "claims_65535_tracks.mid": (header(fmt=1, ntracks=-1) + raw_track(GOOD_BODY), "damaged"),
    "track_length_4gb.mid": (header() + raw_track(GOOD_BODY, 0xFFFFFFFF), "damaged"),
    "track_length_short.mid": (header() + raw_track(GOOD_BODY, 5), "damaged"),
    "no_mtrk.mid": (header() + b"XTrk" + GOOD_BODY, "damaged"),
    "smpte_time_base.mid": (header(tpb=0xE728) + raw_track(GOOD_BODY), "SMPTE"),
    "ticks_per_beat_zero.mid": (header(tpb=0) + raw_track(GOOD_BODY), "SMPTE"),
    # -- broken events
    "running_status_first.mid": (header() + raw_track(b"\x00\x48\x50" + GOOD_BODY), "damaged"),
    "undefined_status.mid": (header() + raw_track(b"\x00\xf4" + GOOD_BODY), "damaged"),
    "data_byte_over_127.mid": (header() + raw_track(b"\x00\x90\xc8\x50" + GOOD_BODY), "damaged"),
    "sysex_length_huge.mid": (header() + raw_track(b"\x00\xf0\x8f\xff\xff\x7f\x01"), "damaged"),
    "meta_length_huge.mid": (header() + raw_track(b"\x00\xff\x01\x8f\xff\xff\x7f"), "damaged"),
    "varint_never_ends.mid": (header() + raw_track(b"\xff" * 64), "damaged"),
    "tempo_zero.mid": (smf(tempo(0)), "damaged"),
    "time_signature_0_4.mid": (
        smf([mido.MetaMessage("time_signature", numerator=0, denominator=4), *NOTE]),
        "damaged",
    ),
    "key_signature_garbage.mid": (
        header() + raw_track(b"\x00\xff\x59\x02\x7f\x07" + GOOD_BODY),
        "damaged",
    ),
    # -- limits
    "tempo_19bpm.mid": (smf(tempo(mido.bpm2tempo(19.9))), "tempo"),
    "tempo_401bpm.mid": (smf(tempo(mido.bpm2tempo(401))), "tempo"),
    "tempo_slowest_possible.mid": (smf(tempo(0xFFFFFF)), "tempo"),
    "tempo_20bpm.mid": (smf(tempo(mido.bpm2tempo(20))), "ok"),
    "tempo_400bpm.mid": (smf(tempo(mido.bpm2tempo(400))), "ok"),
    "delta_time_max.mid": (smf([NOTE[0], NOTE[1].copy(time=0x0FFFFFFF)]), "too long"),
    "silence_then_note_far_away.mid": (
        smf([*NOTE, NOTE[0].copy(time=0x0FFFFFF), NOTE[1]]),
        "too long",
    ),
    "bars_64.mid": (smf(bars(64)), "ok"),
    "bars_65.mid": (smf(bars(65)), "too long"),
    "ticks_per_beat_max_short.mid": (smf(NOTE, tpb=0x7FFF), "ok"),
    # -- odd but fine
    "note_on_never_off.mid": (
        smf([NOTE[0], mido.MetaMessage("end_of_track", time=96)]),
        "no notes",
    ),
    "note_off_before_on.mid": (smf([mido.Message("note_off", note=72), *NOTE]), "ok"),
    "zero_length_notes.mid": (smf([NOTE[0], NOTE[1].copy(time=0)] * 8 + NOTE), "ok"),
    "velocity_zero_only.mid": (smf([NOTE[0].copy(velocity=0), NOTE[1]]), "no notes"),
    "drums_only.mid": (smf([m.copy(channel=9) for m in scale(8)]), "only drum"),
    "pitch_0_and_127.mid": (smf(scale(1, start=0) + scale(1, start=127)), "ok"),
    "chord_of_128_notes.mid": (
        smf(
            [mido.Message("note_on", note=p, velocity=80) for p in range(128)]
            + [mido.Message("note_off", note=p, time=96 if p == 0 else 0) for p in range(128)]
        ),
        "ok",
    ),
    "format_2.mid": (smf(NOTE, scale(4), type=2), "ok"),
    "format_0_many_channels.mid": (
        smf([m.copy(channel=i // 2 % 9) for i, m in enumerate(scale(16))], type=0),
        "ok",
    ),
    "1000_tracks.mid": (smf(*([NOTE] * 1000)), "ok"),
    "no_end_of_track.mid": (header() + raw_track(GOOD_BODY[:-4]), "ok"),
    "garbage_after_last_track.mid": (header() + raw_track(GOOD_BODY) + b"\x00\xff" * 50, "ok"),
    "tempo_change_every_tick.mid": (
        smf(
            [
                mido.MetaMessage("set_tempo", tempo=400_000 + 1000 * (i % 50), time=1)
                for i in range(2000)
            ]
            + scale(16)
        ),
        "ok",
    ),
    "ten_bars_of_silence_first.mid": (smf([NOTE[0].copy(time=40 * 96), NOTE[1]]), "ok"),
    "note_held_64_bars.mid": (smf([NOTE[0], NOTE[1].copy(time=64 * 4 * 96)]), "ok"),
    # -- floods (gzipped): each is a full, valid file that is expensive to parse
    "20001_notes.mid.gz": (
        smf(
            [
                m
                for i in range(20_001)
                for m in (
                    mido.Message("note_on", note=40 + i % 40, velocity=80),
                    mido.Message("note_off", note=40 + i % 40, time=1 if i % 20 == 19 else 0),
                )
            ]
        ),
        "too many notes",
    ),
    "140k_tempo_changes.mid.gz": (
        smf(
            [*NOTE, *[mido.MetaMessage("set_tempo", tempo=500_000 + i % 2) for i in range(140_000)]]
        ),
        "too much MIDI data",
    ),
    "330k_pitch_bends.mid.gz": (
        smf([*NOTE, *[mido.Message("pitchwheel", pitch=i % 8000) for i in range(330_000)]]),
        "too much MIDI data",
    ),
    "one_900kb_sysex.mid.gz": (
        smf([mido.Message("sysex", data=[1] * 900_000), *NOTE]),
        "too much MIDI data",
    ),
    "32000_empty_tracks.mid.gz": (smf(NOTE, *([[]] * 32_000)), "ok"),
    "too_large.mid.gz": (smf(NOTE) + bytes(1_000_001), "too large"),
}

TEXT: dict[str, tuple[str, str]] = {
    "empty.txt": ("", "No notes"),
    "only_bar_lines.txt": ("| | |", "No notes found"),
    "only_rests.txt": ("r r r rw", "No notes"),
    "superscript_digit.txt": ("C4/\u00b2", "not a duration"),
    "arabic_indic_octave.txt": ("C\u0664q D4q", "octave number"),
    "fullwidth_digits.txt": ("C\uff14q", "octave number"),
    "octave_5000_digits.txt": ("C" + "9" * 5000 + "q", "outside the MIDI range"),
    "duration_5000_digits.txt": ("C4/" + "9" * 5000, "not a duration"),
    "negative_octave.txt": ("C-2q", "outside the MIDI range"),
    "lowest_and_highest.txt": ("C-1q G9q", "ok"),
    "above_g9.txt": ("G#9q", "outside the MIDI range"),
    "flat_below_c_minus_1.txt": ("Cb-1q", "outside the MIDI range"),
    "three_accidentals.txt": ("C###4q", "octave number"),
    "dotted_sixteenth.txt": ("C4s.", "dotted sixteenth"),
    "slash_zero.txt": ("C4/0", "not a duration"),
    "slash_1025.txt": ("C4/1025", "not a duration"),
    "slash_1024.txt": ("C4/1024", "ok"),
    "tie_at_end.txt": ("C4q D4q~", "leads nowhere"),
    "tie_to_other_note.txt": ("C4q~ D4q", "same note"),
    "tie_to_rest.txt": ("C4q~ rq", "same note"),
    "overfull_bar.txt": ("C4q | C4w C4q | C4w", "bar 2"),
    "nul_and_controls.txt": ("C4q\x00 D4q\x07\x1b[31m", "not a duration"),
    "zero_width_space.txt": ("C4q\u200b D4q", "not a duration"),
    "right_to_left_mark.txt": ("\u200fC4q D4q", "not a note name"),
    "emoji.txt": ("C4q \U0001f3b5 D4q", "not a note name"),
    "crlf_tabs_commas.txt": ("C4q,\tD4q\r\nE4q\u3000F4q\r\n", "ok"),
    "bars_64.txt": ("C4w " * 64, "ok"),
    "bars_65.txt": ("C4w " * 65, "too long"),
    "chars_20000.txt": ("C4w" + " " * 19_997, "ok"),
    "chars_20001.txt": ("C4w" + " " * 19_998, "too long"),
    "many_short_tokens.txt": ("C4s " * 1024, "ok"),
    "pickup_only.txt": ("C4e |", "ok"),
    "long_token.txt": ("C4" + "q" * 10_000, "not a duration"),
}

# Bytes a text upload may carry that are not UTF-8 (the CLI decodes with errors="replace").
RAW_TEXT = {"invalid_utf8.txt": (b"C4q \xff\xfe D4q \xc3\x28", "not a note name")}


def main() -> None:
    expected = {}
    for name, (data, outcome) in MIDI.items():
        (HERE / name).write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        expected[name] = outcome
    for name, (text, outcome) in TEXT.items():
        (HERE / name).write_bytes(text.encode("utf-8"))
        expected[name] = outcome
    for name, (data, outcome) in RAW_TEXT.items():
        (HERE / name).write_bytes(data)
        expected[name] = outcome
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(expected)} files to {HERE}")


if __name__ == "__main__":
    main()
