"""From a melody to four voices: latents, harmonize(), long melodies, clean-up.

Long melodies are cut into 2-bar windows that overlap by one bar. Each bar has its
own latent row, and window k uses the rows of its two bars, so neighbouring windows
share the latent of the bar they overlap; the generator's scores are averaged over
the overlap before decoding. That keeps harmony and voice leading continuous across
joins, and all windows go through the generator in one batch.

Clean-up (default on, `raw=True` turns it off) is in `bachgan.cleanup`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bachgan import cleanup
from bachgan.context import estimate as estimate_context
from bachgan.context import planes as context_planes
from bachgan.melody import MAX_BARS, MelodyError
from bachgan.pianoroll import from_roll, to_roll
from bachgan.voices import (
    STEPS_PER_BAR,
    VOICE_NAMES,
    WINDOW_STEPS,
    Voices,
    note_name,
    voice_index,
)

DEFAULT_CLEANUP = "voice-leading"


# ---------------------------------------------------------------- latents


def latent_bars(n_bars: int, preset, seed: int | None = None, rng=None) -> np.ndarray:
    """One latent row per bar, (n_bars, H, C); the same seed gives the same rows anywhere."""
    import tensorflow as tf

    _, h, c = preset.z_shape
    shape = (n_bars, h, c)
    if seed is not None:
        return tf.random.stateless_truncated_normal(shape, seed=[int(seed), 0]).numpy()
    rng = rng or np.random.default_rng()
    z = rng.standard_normal(shape)
    while (bad := np.abs(z) > 2).any():  # truncated normal, as the seed
        z[bad] = rng.standard_normal(bad.sum())
    return z.astype(np.float32)


def truncate(z: np.ndarray, scale: float = 1.0, clip: float | None = None) -> np.ndarray:
    """The truncation trick: scale z toward 0 (and optionally clip) for safer output."""
    z = np.asarray(z, np.float32) * scale
    return np.clip(z, -clip, clip) if clip else z


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation, which keeps intermediate latents at a typical norm."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(
        np.float32
    )


def interpolation(a: np.ndarray, b: np.ndarray, n: int) -> list[np.ndarray]:
    """n latents from a to b, both included, evenly spaced along the sphere (`slerp`)."""
    return [slerp(a, b, t) for t in np.linspace(0.0, 1.0, n)]


def walk(z: np.ndarray, direction: np.ndarray, n: int, size: float) -> list[np.ndarray]:
    """n latents from z in equal steps of `size` along `direction` (z itself first)."""
    return [step(z, direction, k * size) for k in range(n)]


def random_direction(shape, seed: int) -> np.ndarray:
    """A unit-free direction with the norm of a typical latent (so steps of 0.1 are small)."""
    d = np.random.default_rng(seed).standard_normal(shape)
    return (d / np.linalg.norm(d) * np.sqrt(d.size)).astype(np.float32)


def step(z: np.ndarray, direction: np.ndarray, amount: float) -> np.ndarray:
    return (np.asarray(z) + amount * np.asarray(direction)).astype(np.float32)


def reroll_bar(z: np.ndarray, bar: int, seed: int, preset) -> np.ndarray:
    """New latent for one bar only (row `bar` of the per-bar latents)."""
    z = np.array(z, np.float32, copy=True)
    z[bar] = latent_bars(1, preset, seed=seed)[0]
    return z


# ---------------------------------------------------------------- decoding


def decode(
    roll, preset, condition: Voices, voice: int, raw=False, method=DEFAULT_CLEANUP, context=None
):
    """Generator output -> Voices, with the given voice copied from the input note for note.

    `condition` is the melody alone, or several voices of which column `voice` is taken;
    `context` (a `bachgan.context.Context`), where known, gives the clean-up the piece's key.
    """
    if condition.n_voices > 1:
        condition = condition.voice(voice)
    if raw:
        out = from_roll(roll, preset.low)
        p, o = out.pitches.copy(), out.onsets.copy()
        p[:, voice], o[:, voice] = condition.pitches[:, 0], condition.onsets[:, 0]
        return Voices(p, o)
    roll = np.asarray(roll, np.float32)
    if method == "voice-leading":
        return cleanup.voice_lead(roll, condition, voice, preset.low, context=context)
    return cleanup.METHODS[method](roll, condition, voice, preset.low)


# ---------------------------------------------------------------- harmonize


@dataclass
class Result:
    """Four voices plus what it took to make them."""

    voices: Voices
    voice: int
    # The latent rows as the generator got them, after truncation: pass them back with
    # truncation=1.0 to make the same result again.
    z: np.ndarray
    seed: int | None
    raw_roll: np.ndarray
    cleanup: dict = field(default_factory=dict)
    context: object = None  # the key, phrase ends and meter it assumed (bachgan.context)


def _cleanup_report(cleaned: Voices, roll: np.ndarray, voice: int, low: int) -> dict:
    """How much the clean-up departed from the generator's own first choices."""
    others = [v for v in range(4) if v != voice]
    on = roll[:, :, others] > 0
    sounding = cleaned.pitches[:, others] >= 0
    strongest = roll[:, :, others].argmax(1) + low
    changed = sounding & (strongest != cleaned.pitches[:, others])
    return {
        # share of generated voice-steps where the clean-up chose another pitch than
        # the generator's strongest one
        "changed_share": float(changed.sum() / max(sounding.sum(), 1)),
        "raw_multi_pitch_share": float((on.sum(1) > 1).mean()),
        "raw_silent_share": float((~on.any(1)).mean()),
    }


class Harmonizer:
    """A loaded generator and everything needed to harmonize with it."""

    def __init__(self, checkpoint=None):
        import tensorflow as tf

        from bachgan.export import load_generator

        self.generator, self.preset, self.card = load_generator(checkpoint or default_checkpoint())
        p = self.preset
        # Traced once here, for any batch size, and called as a concrete function, which
        # skips a tf.function's per-call argument matching (a noticeable part of 2 bars).
        self._predict = tf.function(
            lambda c, z, v: self.generator([c, z, v], training=False)
        ).get_concrete_function(
            tf.TensorSpec((None, WINDOW_STEPS, p.n_pitches, p.condition_channels), tf.float32),
            tf.TensorSpec((None, *p.z_shape), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        )

    def _run(self, cond, z, voice):
        import tensorflow as tf

        return self._predict(
            tf.constant(cond, tf.float32), tf.constant(z, tf.float32), tf.constant(voice, tf.int32)
        ).numpy()

    def check(self, melody: Voices, voice: int) -> None:
        p = self.preset
        if voice not in p.condition_voices:
            names = ", ".join(VOICE_NAMES[v] for v in p.condition_voices)
            raise MelodyError(f"this model harmonizes only a given {names} voice")
        if melody.bars > MAX_BARS:
            raise MelodyError(
                f"the melody has {melody.bars} bars; at most {MAX_BARS} can be harmonized"
            )
        sounding = melody.pitches[melody.pitches >= 0]
        if not sounding.size:
            raise MelodyError("the melody has no notes")
        if sounding.min() < p.low or sounding.max() >= p.low + p.n_pitches:
            lo, hi = p.low, p.low + p.n_pitches - 1
            raise MelodyError(
                f"the melody goes outside the model's range, {note_name(lo)} to {note_name(hi)} "
                f"(MIDI {lo}-{hi}); move it by an octave or choose another voice"
            )

    def latent(self, melody_steps: int, seed: int | None = None) -> np.ndarray:
        n_bars = max(2, -(-melody_steps // STEPS_PER_BAR))
        return latent_bars(n_bars, self.preset, seed=seed)

    def harmonize(
        self,
        melody: Voices,
        voice="soprano",
        z=None,
        seed=None,
        truncation=1.0,
        raw=False,
        cleanup: str = DEFAULT_CLEANUP,
        context=None,
    ) -> Result:
        """Four voices for a melody of any length up to MAX_BARS bars.

        `melody` is one voice, or several of which the one at `voice` is taken (as `decode`
        does). Give `z` (one row per bar, as from `latent()`) or a `seed`; `truncation`
        scales z. `context` (key, phrase ends, meter: `bachgan.context.Context`) is read off
        the melody when not given; models that take it see it, and the clean-up decodes in
        its key with its cadences.
        """
        v = voice_index(voice)
        melody = melody.voice(v) if melody.n_voices > 1 else melody
        self.check(melody, v)
        steps = melody.steps
        n_bars = max(2, melody.bars)  # at least one 2-bar window
        padded = melody.pad_to(n_bars * STEPS_PER_BAR)
        if z is None:
            z = self.latent(steps, seed)
        z = truncate(z, truncation)
        if z.shape[0] != n_bars:
            raise ValueError(f"z has {z.shape[0]} bar rows, the melody needs {n_bars}")
        p = self.preset
        roll_in = to_roll(padded, p.low, p.n_pitches)  # (T, P, 1)
        if context is None:
            context = estimate_context(melody, voice=v)
        if p.context:
            extra = context_planes(context, padded.steps, p.low, p.n_pitches)
            roll_in = np.concatenate([roll_in, extra], -1)
        starts = list(range(0, n_bars - 1)) if n_bars > 2 else [0]
        at = [s * STEPS_PER_BAR for s in starts]
        cond = np.stack([roll_in[a : a + WINDOW_STEPS] for a in at])
        zs = np.stack([z[s : s + 2] for s in starts])
        out = self._run(cond, zs, np.full(len(starts), v))
        total = np.zeros((n_bars * STEPS_PER_BAR, p.n_pitches, 4), np.float32)
        weight = np.zeros((n_bars * STEPS_PER_BAR, 1, 1), np.float32)
        for a, w in zip(at, out):
            total[a : a + WINDOW_STEPS] += w
            weight[a : a + WINDOW_STEPS] += 1
        roll = total / weight
        # Padding after the melody is not music: nothing sounds there.
        roll[steps:] = -1.0
        result = decode(roll, p, padded, v, raw, cleanup, context).slice(0, steps)
        roll = roll[:steps]
        report = _cleanup_report(result, roll, v, p.low)
        return Result(result, v, z, seed, roll, report, context)


SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "bachgan-chorale"


def default_checkpoint() -> Path:
    """The shipped model under checkpoints/ (BACHGAN_CHECKPOINT overrides)."""
    env = os.environ.get("BACHGAN_CHECKPOINT")
    return Path(env) if env else SHIPPED_DIR
