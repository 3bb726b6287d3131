"""MIDI -> WAV with the real FluidSynth, and the sine-wave fallback."""

from __future__ import annotations

import io
import tempfile
import wave

import numpy as np
import pretty_midi
import pytest

from bachgan import audio
from bachgan.midi import to_midi_bytes, to_pretty_midi
from bachgan.voices import Voices

TEMPO = 80.0
STEP_S = 60 / TEMPO / 4


def two_bars() -> Voices:
    melody = Voices.from_pitches([74] * 8 + [76] * 8 + [78] * 12 + [-1] * 4)
    return Voices.stack(
        [melody, melody.transpose(-5), melody.transpose(-12), melody.transpose(-24)]
    )


def samples(a: audio.Audio) -> np.ndarray:
    with wave.open(io.BytesIO(a.wav)) as w:
        assert w.getsampwidth() == 2 and w.getframerate() == a.sample_rate
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


needs_fluidsynth = pytest.mark.skipif(
    not audio.fluidsynth_available(),
    reason="FluidSynth or a General MIDI soundfont is not installed "
    "(apt-get install fluidsynth fluid-soundfont-gm)",
)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile at an empty folder so leftovers would show."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@needs_fluidsynth
def test_fluidsynth_renders_music_of_the_right_length(private_tmp):
    v = two_bars()
    a = audio.render_wav(to_pretty_midi(v, TEMPO))
    assert not a.is_fallback and a.synthesizer.startswith("fluidsynth")
    music_end = 28 * STEP_S  # the last note ends at step 28
    assert music_end <= a.duration <= music_end + 3.0  # plus the release tail
    x = samples(a)
    assert np.abs(x).max() > 3000  # clearly audible
    assert list(private_tmp.iterdir()) == []


@needs_fluidsynth
def test_fluidsynth_accepts_midi_bytes_and_sample_rate():
    a = audio.render_wav(to_midi_bytes(two_bars(), tempo=TEMPO), sample_rate=22050)
    assert a.sample_rate == 22050 and not a.is_fallback
    assert np.abs(samples(a)).max() > 3000


def test_missing_soundfont_falls_back_to_sine_waves(monkeypatch, tmp_path, private_tmp):
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(tmp_path / "missing.sf2"))
    assert not audio.fluidsynth_available()
    a = audio.render_wav(to_pretty_midi(two_bars(), TEMPO), sample_rate=16000)
    assert a.is_fallback and a.synthesizer.startswith("fallback: sine waves (no soundfont")
    assert a.duration == pytest.approx(28 * STEP_S, abs=0.2)
    assert np.abs(samples(a)).max() > 3000
    assert list(private_tmp.iterdir()) == []


def test_missing_fluidsynth_binary_falls_back(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth here
    a = audio.render_wav(to_midi_bytes(two_bars(), tempo=TEMPO), sample_rate=16000)
    assert a.is_fallback and "FluidSynth not found" in a.synthesizer
    assert np.abs(samples(a)).max() > 3000


@needs_fluidsynth
def test_broken_soundfont_falls_back_and_says_why(monkeypatch, tmp_path, private_tmp):
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"not a soundfont" * 100)
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(broken))
    a = audio.render_wav(to_midi_bytes(two_bars(), tempo=TEMPO), sample_rate=16000)
    assert a.is_fallback and "FluidSynth failed" in a.synthesizer and "RIFF" in a.synthesizer
    assert list(private_tmp.iterdir()) == []


def test_split_instruments_shares_out_tracks_with_the_same_timing():
    midi = to_midi_bytes(two_bars(), tempo=TEMPO)
    parts = audio.split_instruments(midi, 2)
    assert len(parts) == 2
    whole = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    pieces = [pretty_midi.PrettyMIDI(io.BytesIO(p)) for p in parts]
    assert sorted(len(p.instruments) for p in pieces) == [2, 2]
    notes = lambda pm: sorted(
        (i.program, n.pitch, round(n.start, 4), round(n.end, 4))
        for i in pm.instruments
        for n in i.notes
    )
    assert sorted(x for p in pieces for x in notes(p)) == notes(whole)
    assert audio.split_instruments(midi, 1) == [midi]
    assert audio.split_instruments(b"not midi", 2) == [b"not midi"]


@needs_fluidsynth
def test_parallel_render_equals_one_render_up_to_dither(monkeypatch):
    midi = to_midi_bytes(two_bars(), tempo=TEMPO)
    rendered = {}
    for cores in (1, 2):
        monkeypatch.setattr(audio, "usable_cores", lambda n=cores: n)
        rendered[cores] = samples(audio.render_wav(midi)).astype(float)
    one, two = rendered[1], rendered[2]
    n = min(len(one), len(two))
    assert abs(len(one) - len(two)) < 0.05 * len(one)
    difference = np.sqrt(np.mean((one[:n] - two[:n]) ** 2))
    assert difference < 0.01 * np.sqrt(np.mean(one**2)), "mixing the halves is the whole"


@needs_fluidsynth
def test_mono_preview_is_the_stereo_render_mixed_down():
    midi = to_midi_bytes(two_bars(), tempo=TEMPO)
    stereo = audio.render_wav(midi, sample_rate=audio.PREVIEW_RATE)
    mono = audio.render_wav(midi, sample_rate=audio.PREVIEW_RATE, mono=True)
    with wave.open(io.BytesIO(mono.wav)) as w:
        assert w.getnchannels() == 1 and w.getframerate() == audio.PREVIEW_RATE
    assert mono.duration == pytest.approx(stereo.duration, abs=0.3)  # the quiet tail is cut
    both = samples(stereo).reshape(-1, 2).astype(float)
    one = samples(mono).astype(float)
    n = min(len(both), len(one))
    mixed = both[:n].mean(axis=1)
    assert np.sqrt(np.mean((mixed - one[:n]) ** 2)) < 0.02 * np.sqrt(np.mean(mixed**2))


def test_a_failed_start_leaves_no_fluidsynth_running(monkeypatch, tmp_path):
    """If the second synthesizer cannot start, the first is stopped and waited for."""
    import subprocess

    real, started = subprocess.Popen, []

    def popen(cmd, **kw):
        if started:
            raise OSError("no more processes")
        started.append(real(["sleep", "30"], **kw))  # stands for the first fluidsynth
        return started[-1]

    monkeypatch.setattr(audio, "usable_cores", lambda: 2)
    monkeypatch.setattr(audio.subprocess, "Popen", popen)
    with pytest.raises(OSError):
        audio._fluidsynth("fluidsynth", tmp_path / "font.sf2", to_midi_bytes(two_bars()), 22050, 9)
    assert started and started[0].poll() is not None  # ended, and reaped: no zombie


def test_a_fluidsynth_that_cannot_run_falls_back_and_says_why(monkeypatch, tmp_path):
    """An executable without a shebang: starting it raises OSError (Exec format error)."""
    fake = tmp_path / "fluidsynth"
    fake.write_text("echo not a program\n")
    fake.chmod(0o755)
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(font))
    a = audio.render_wav(to_midi_bytes(two_bars(), tempo=TEMPO), sample_rate=16000)
    assert a.is_fallback and "FluidSynth could not run" in a.synthesizer
    assert "Exec format error" in a.synthesizer
    assert np.abs(samples(a)).max() > 3000


def test_all_fluidsynths_together_take_at_most_one_timeout(monkeypatch, tmp_path):
    """Each process was waited on with the full timeout in turn: one that ends just in time,
    then one that hangs, took nearly twice the timeout. A fake clock keeps this exact."""
    import subprocess
    import types

    now = [0.0]

    class Hung:
        """A fluidsynth that finishes at `end` on the fake clock (never if None)."""

        def __init__(self, end):
            self.end, self.returncode = end, None

        def communicate(self, timeout):
            if self.end is not None and now[0] + timeout >= self.end:
                now[0], self.returncode = max(now[0], self.end), 1
                return b"", b"error\n"
            now[0] += timeout
            raise subprocess.TimeoutExpired("fluidsynth", timeout)

        def poll(self):
            return self.returncode

        def kill(self):
            self.returncode = -9

        def wait(self):
            return self.returncode

    ends = iter([9.0, None])  # the first ends after 9 of the 10 s, the second hangs
    monkeypatch.setattr(audio, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(audio, "usable_cores", lambda: 2)
    monkeypatch.setattr(audio.subprocess, "Popen", lambda cmd, **kw: Hung(next(ends)))
    with pytest.raises(RuntimeError, match="longer than 10 s"):
        audio._fluidsynth("fluidsynth", tmp_path / "font.sf2", to_midi_bytes(two_bars()), 22050, 10)
    assert now[0] == 10.0
