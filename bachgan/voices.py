"""Voices: the one representation modules exchange.

Music is stored as one MIDI pitch per 16th-note step and voice, plus a flag for
where each note starts, so a repeated note stays two notes. Pianorolls exist only
at the model's edge (see `bachgan.pianoroll`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

STEPS_PER_BEAT = 4
STEPS_PER_BAR = 16
WINDOW_STEPS = 32  # two 4/4 bars, the model's input and output length
SILENT = -1

VOICE_NAMES = ("soprano", "alto", "tenor", "bass")
# Comfortable choir ranges (MIDI pitch, inclusive), used for clean-up and metrics.
SATB_RANGES = {
    "soprano": (60, 81),  # C4-A5
    "alto": (53, 74),  # F3-D5
    "tenor": (48, 69),  # C3-A4
    "bass": (40, 64),  # E2-E4
}

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def note_name(pitch: int) -> str:
    """MIDI 61 -> 'C#4' (middle C is C4), for axes and messages."""
    return f"{PITCH_CLASS_NAMES[pitch % 12]}{pitch // 12 - 1}"


def voice_index(voice: str | int) -> int:
    """Accept 'alto', 'Alto' or 1 and return the track index (0 = soprano)."""
    if isinstance(voice, (int, np.integer)):
        if 0 <= int(voice) < len(VOICE_NAMES):
            return int(voice)
    elif isinstance(voice, str) and voice.lower() in VOICE_NAMES:
        return VOICE_NAMES.index(voice.lower())
    raise ValueError(f"voice must be one of {', '.join(VOICE_NAMES)} (or 0-3), got {voice!r}")


@dataclass(frozen=True, eq=False)
class Voices:
    """Pitches (T, V) int16 with -1 for silence, and onsets (T, V) bool."""

    pitches: np.ndarray
    onsets: np.ndarray

    def __post_init__(self):
        p = np.asarray(self.pitches, dtype=np.int16)
        o = np.asarray(self.onsets, dtype=bool)
        if p.ndim == 1:
            p, o = p[:, None], o.reshape(-1, 1)
        if p.ndim != 2 or p.shape != o.shape:
            raise ValueError(f"pitches {p.shape} and onsets {o.shape} must both be (steps, voices)")
        if p.size and (p.min() < SILENT or p.max() > 127):
            raise ValueError("pitches must be MIDI numbers 0-127 or -1 for silence")
        # An onset only makes sense where something sounds; a note after silence must start.
        o = o & (p >= 0)
        prev = np.vstack([np.full((1, p.shape[1]), SILENT, np.int16), p[:-1]])
        o = o | ((p >= 0) & (p != prev))
        object.__setattr__(self, "pitches", p)
        object.__setattr__(self, "onsets", o)

    @classmethod
    def from_pitches(cls, pitches) -> Voices:
        """Onsets where the pitch changes or sounds after silence (held notes merge)."""
        p = np.asarray(pitches, dtype=np.int16)
        return cls(p, np.zeros(p.shape, bool))

    @classmethod
    def empty(cls, steps: int, n_voices: int = 4) -> Voices:
        return cls.from_pitches(np.full((steps, n_voices), SILENT, np.int16))

    @property
    def steps(self) -> int:
        return self.pitches.shape[0]

    def digest(self) -> str:
        """A fingerprint of the notes (pitches, onsets, shape): results are kept under it."""
        h = hashlib.sha1(str(self.pitches.shape).encode())
        h.update(self.pitches.tobytes())
        h.update(self.onsets.tobytes())
        return h.hexdigest()

    @property
    def bars(self) -> int:
        """Bars of 4/4 the steps fill, the last one perhaps in part."""
        return -(-self.steps // STEPS_PER_BAR)

    @property
    def n_voices(self) -> int:
        return self.pitches.shape[1]

    def __len__(self) -> int:
        return self.steps

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Voices)
            and np.array_equal(self.pitches, other.pitches)
            and np.array_equal(self.onsets, other.onsets)
        )

    def voice(self, i: int) -> Voices:
        """One voice as a single-column Voices (a melody)."""
        return Voices(self.pitches[:, i : i + 1], self.onsets[:, i : i + 1])

    def slice(self, start: int, stop: int) -> Voices:
        """Steps [start, stop); a note cut at `start` restarts there."""
        return Voices(self.pitches[start:stop], self.onsets[start:stop])

    def pad_to(self, steps: int) -> Voices:
        """Append silence up to `steps` (no-op when already as long)."""
        extra = steps - self.steps
        if extra <= 0:
            return self
        pad = np.full((extra, self.n_voices), SILENT, np.int16)
        return Voices(np.vstack([self.pitches, pad]), np.vstack([self.onsets, pad >= 0]))

    def transpose(self, semitones: int) -> Voices:
        p = np.where(self.pitches >= 0, self.pitches + semitones, SILENT)
        return Voices(p, self.onsets)

    def notes(self, i: int = 0) -> list[tuple[int, int, int]]:
        """Notes of voice i as (start_step, end_step, pitch), end exclusive."""
        p, o = self.pitches[:, i], self.onsets[:, i]
        out: list[tuple[int, int, int]] = []
        for t in range(self.steps):
            if o[t]:
                out.append([t, t + 1, int(p[t])])
            elif p[t] >= 0 and out and out[-1][1] == t:
                out[-1][1] = t + 1
        return [tuple(n) for n in out]

    @classmethod
    def stack(cls, parts: list[Voices]) -> Voices:
        """Put single voices side by side (all must have the same length)."""
        return cls(np.hstack([v.pitches for v in parts]), np.hstack([v.onsets for v in parts]))

    @classmethod
    def concat(cls, parts: list[Voices]) -> Voices:
        """Pieces one after another (all must have the same voices)."""
        return cls(np.vstack([v.pitches for v in parts]), np.vstack([v.onsets for v in parts]))
