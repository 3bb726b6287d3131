"""Voices <-> pianoroll, only at the model's edge.

A pianoroll is float32 (steps, pitches, voices) in {-1, +1}: +1 where that voice
sounds that pitch. `low` is the MIDI pitch of row 0 (0 for the seed's 128 rows).
"""

from __future__ import annotations

import numpy as np

from bachgan.voices import SILENT, Voices


def to_roll(voices: Voices, low: int = 0, n_pitches: int = 128) -> np.ndarray:
    """Encode voices; pitches outside [low, low + n_pitches) raise ValueError."""
    p = voices.pitches.astype(np.int32)
    rows = np.where(p >= 0, p - low, -1)
    if (rows >= n_pitches).any() or ((p >= 0) & (rows < 0)).any():
        raise ValueError(f"pitches outside the model's range {low}-{low + n_pitches - 1}")
    roll = np.full((voices.steps, n_pitches, voices.n_voices), -1.0, np.float32)
    t, v = np.nonzero(rows >= 0)
    roll[t, rows[t, v], v] = 1.0
    return roll


def from_roll(roll: np.ndarray, low: int = 0, threshold: float = 0.0) -> Voices:
    """Decode the strongest pitch per step and voice; silent where none exceeds threshold.

    A pianoroll has no onsets, so held notes of equal pitch merge (as in the seed).
    """
    roll = np.asarray(roll)
    best = roll.argmax(axis=1)  # (steps, voices)
    peak = roll.max(axis=1)
    pitches = np.where(peak > threshold, best + low, SILENT)
    return Voices.from_pitches(pitches)
