"""MIDI -> WAV with FluidSynth and a General MIDI soundfont, or sine waves when that is missing.

Soundfont: the first that exists of $BACHGAN_SOUNDFONT (when set, only that one), FluidR3_GM
(Debian package fluid-soundfont-gm, best sounding), TimGM6mb (timgm6mb-soundfont, 6 MB) and the
system's default-GM link. FluidR3 is the default because two settings make it fast enough:
`synth.dynamic-sample-loading` loads only the samples a piece uses instead of all 148 MB, and
SDL_AUDIODRIVER=dummy stops fluidsynth's SDL2 audio thread, which otherwise keeps the process
alive for up to 100 ms after rendering. Measured on the 2-core dev machine, p50 of 10 renders at
44.1 kHz, 2 bars / 16 bars at 80 BPM: FluidR3 ~150 / ~700 ms, TimGM6mb ~120 / ~720 ms; without
the two settings FluidR3 took ~330 / ~930 ms. The time is mostly synthesis, proportional to the
audio's length (fluidsynth renders ~2-4 s past the last note, which we trim when inaudible), so
`sample_rate=22050` is ~40% faster for long pieces, at the cost of a duller sound.

Rendering is split over the CPU cores: the instruments are shared out between up to
`usable_cores()` fluidsynth processes running at once, and their outputs summed. Mixing is
exact up to rounding because everything fluidsynth does after the notes (reverb, chorus,
gain) is linear; on 2 cores it takes a 4-voice render from ~T to ~0.6 T (see `bench`).

We call the `fluidsynth` binary ourselves, with the same arguments midi2audio uses
(`-ni ... -F out.wav -r rate`), because midi2audio's `FluidSynth.midi_to_audio` has no timeout,
no environment or `-o` options and ignores the exit status. Files live in a TemporaryDirectory
and are gone when `render_wav` returns. Without fluidsynth or a soundfont, pretty_midi's sine-wave
synthesis is used and the returned `Audio` says so.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

SOUNDFONT_ENV = "BACHGAN_SOUNDFONT"
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/FluidR3_GM.sf3",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/soundfonts/FluidR3_GM.sf2",  # Arch, Fedora
    "/usr/share/soundfonts/default.sf2",
)
SAMPLE_RATE = 44100  # full quality: downloads and the command line
PREVIEW_RATE = 22050  # the app's player: mono at half the rate renders ~2x faster, 4x smaller
GAIN = 1.0  # fluidsynth's 0.2 default is quiet; a four-voice choir at velocity 80 peaks near -6 dB
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Audio:
    """A rendered WAV and which synthesizer made it."""

    wav: bytes
    sample_rate: int
    synthesizer: str  # "fluidsynth (FluidR3_GM.sf2)" or "fallback: sine waves (<why>)"
    is_fallback: bool

    @property
    def duration(self) -> float:
        """Length in seconds."""
        with wave.open(io.BytesIO(self.wav)) as w:
            return w.getnframes() / w.getframerate()


def find_soundfont() -> Path | None:
    """The soundfont to use, or None. An explicit $BACHGAN_SOUNDFONT is never second-guessed."""
    explicit = os.environ.get(SOUNDFONT_ENV)
    candidates = [explicit] if explicit else SOUNDFONTS
    return next((Path(p) for p in candidates if Path(p).is_file()), None)


def fluidsynth_available() -> bool:
    """True when both the fluidsynth binary and a soundfont are found."""
    return shutil.which("fluidsynth") is not None and find_soundfont() is not None


def render_wav(
    midi: pretty_midi.PrettyMIDI | bytes,
    sample_rate: int = SAMPLE_RATE,
    timeout: float = TIMEOUT_S,
    mono: bool = False,
) -> Audio:
    """Render MIDI (a PrettyMIDI or file bytes) to WAV bytes, falling back to sine waves.
    FluidSynth renders stereo (its reverb is); `mono=True` mixes that down."""
    if isinstance(midi, pretty_midi.PrettyMIDI):
        buf = io.BytesIO()
        midi.write(buf)
        midi = buf.getvalue()
    binary, font = shutil.which("fluidsynth"), find_soundfont()
    if binary is None:
        return _sine(midi, sample_rate, "FluidSynth not found")
    if font is None:
        where = os.environ.get(SOUNDFONT_ENV) or "the usual places"
        return _sine(midi, sample_rate, f"no soundfont found in {where}")
    try:
        wav = _fluidsynth(binary, font, midi, sample_rate, timeout, mono)
    except RuntimeError as e:
        return _sine(midi, sample_rate, str(e))
    except OSError as e:  # it cannot be started (not a program, no permission) or no disk space
        return _sine(midi, sample_rate, f"FluidSynth could not run: {e}")
    return Audio(wav, sample_rate, f"fluidsynth ({font.name})", False)


def _fluidsynth(
    binary: str, font: Path, midi: bytes, sample_rate: int, timeout: float, mono: bool = False
) -> bytes:
    """Render with fluidsynth, in parallel over groups of instruments, and mix; RuntimeError
    says why it gave no usable sound, OSError why it could not run. All of it takes at most
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    parts = split_instruments(midi, usable_cores())
    with tempfile.TemporaryDirectory(prefix="bachgan-audio-") as tmp:
        env = dict(os.environ, SDL_AUDIODRIVER="dummy")
        jobs = []
        try:  # whatever fails, no fluidsynth started here outlives this call
            for i, part in enumerate(parts):
                mid, out = Path(tmp, f"in{i}.mid"), Path(tmp, f"out{i}.wav")
                mid.write_bytes(part)
                cmd = [binary, "-ni", "-q", "-g", str(GAIN), "-o", "synth.dynamic-sample-loading=1"]
                cmd += ["-F", str(out), "-r", str(sample_rate), str(font), str(mid)]
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
                )
                jobs.append((proc, out))
            errors = [_wait(proc, timeout, deadline) for proc, _ in jobs]
        finally:
            for proc, _ in jobs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        tracks = []
        for (proc, out), err in zip(jobs, errors):
            why = f"FluidSynth failed: {err[0] if err else f'exit status {proc.returncode}'}"
            # A soundfont it cannot load is only an error message: it then plays its default one.
            if proc.returncode != 0 or not out.is_file() or font.name in "\n".join(err):
                raise RuntimeError(why)
            try:
                tracks.append(_read_wav(out.read_bytes()))
            except (wave.Error, EOFError, ValueError) as e:
                raise RuntimeError(f"FluidSynth wrote an unreadable WAV ({e})") from None
    params = tracks[0][0]
    mixed = np.zeros((max(len(x) for _, x in tracks), params.nchannels), np.int32)
    for _, x in tracks:
        mixed[: len(x)] += x
    if mono and params.nchannels > 1:
        mixed = mixed.mean(axis=1, keepdims=True).round().astype(np.int32)
        params = params._replace(nchannels=1)
    pcm, audible = _trim_silence(np.clip(mixed, -32768, 32767), params.framerate)
    if not audible and any(errors):
        raise RuntimeError(f"FluidSynth failed: {next(e for e in errors if e)[0]}")
    return _write_wav(params, pcm)


def usable_cores() -> int:
    """CPUs this process may run on (its affinity, which containers set), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _wait(proc: subprocess.Popen, timeout: float, deadline: float) -> list[str]:
    """Wait for one fluidsynth until the `deadline` (time.monotonic()) of the whole `timeout`;
    its error lines."""
    try:
        _, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"FluidSynth took longer than {timeout:g} s") from None
    return err.decode(errors="replace").strip().splitlines()


def split_instruments(midi: bytes, n: int) -> list[bytes]:
    """MIDI bytes -> up to n MIDI files, each with some of the instruments (balanced by note
    count) and the same tempo map, so that rendering them separately and adding the audio
    gives the whole. Unreadable MIDI or a single instrument stays one file."""
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    except Exception:  # fluidsynth gives the real error message
        return [midi]
    sounding = [i for i in pm.instruments if i.notes]
    n = min(n, len(sounding))
    if n < 2:
        return [midi]
    groups = [[] for _ in range(n)]
    for inst in sorted(sounding, key=lambda i: -len(i.notes)):
        min(groups, key=lambda g: sum(len(i.notes) for i in g)).append(inst)
    parts = []
    for group in groups:
        pm.instruments = group
        buf = io.BytesIO()
        pm.write(buf)
        parts.append(buf.getvalue())
    return parts


def _read_wav(wav: bytes) -> tuple:
    """(parameters, samples as int32 frames x channels) of a 16-bit WAV."""
    with wave.open(io.BytesIO(wav)) as w:
        params, frames = w.getparams(), w.readframes(w.getnframes())
    if params.sampwidth != 2:
        raise ValueError(f"expected 16-bit samples, got {8 * params.sampwidth}-bit")
    return params, np.frombuffer(frames, np.int16).reshape(-1, params.nchannels).astype(np.int32)


def _write_wav(params, pcm: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setparams(params)
        w.writeframes(pcm.astype(np.int16).tobytes())
    return buf.getvalue()


def _trim_silence(x: np.ndarray, rate: int, floor: int = 10, keep_s: float = 0.1):
    """Cut the inaudible end (below about -70 dBFS) that fluidsynth renders after the music;
    (frames kept, whether anything was audible at all)."""
    loud = np.flatnonzero(np.abs(x).max(axis=1) > floor)
    end = min(len(x), (loud[-1] + 1 if loud.size else 0) + int(keep_s * rate))
    return x[:end], bool(loud.size)


def _sine(midi: bytes, sample_rate: int, why: str) -> Audio:
    """pretty_midi's sine-wave synthesis, normalised, as 16-bit mono WAV."""
    signal = pretty_midi.PrettyMIDI(io.BytesIO(midi)).synthesize(fs=sample_rate)
    peak = np.abs(signal).max() if signal.size else 0.0
    pcm = (signal / peak * 0.5 * 32767 if peak > 0 else signal).astype(np.int16)
    pcm, _ = _trim_silence(pcm.reshape(-1, 1), sample_rate)
    params = wave._wave_params(1, 2, sample_rate, len(pcm), "NONE", "not compressed")
    return Audio(_write_wav(params, pcm), sample_rate, f"fallback: sine waves ({why})", True)
