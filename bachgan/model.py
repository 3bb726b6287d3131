"""The seed's conditional WGAN-GP: a U-Net generator, a convolutional critic, presets.

Architecture (seed preset): generator encoder Conv2D 4x4/2 with 64-128-256-512
filters (LeakyReLU 0.2, BatchNorm momentum 0.8 on all but the first), z concatenated
at the 2x8 bottleneck, decoder UpSampling2D -> Conv2D 4x4 -> BatchNorm -> ReLU ->
skip concat, then UpSampling2D -> Conv2D(4, tanh). Critic: Conv2D 4x4/2 x4 with
LeakyReLU 0.2, Flatten, Dense(1). Presets change sizes, never code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from bachgan.voices import WINDOW_STEPS


@dataclass(frozen=True)
class Preset:
    """Everything that sizes the model, the data and the optimizer."""

    name: str
    low: int = 0  # MIDI pitch of pianoroll row 0
    n_pitches: int = 128
    filters: tuple[int, ...] = (64, 128, 256, 512)
    z_channels: int = 512
    batch_size: int = 64
    condition_voices: tuple[int, ...] = (0,)  # 0 = soprano; the seed is melody-only
    critic_steps: int = 5
    gp_weight: float = 10.0
    learning_rate: float = 1e-3
    beta_1: float = 0.5
    beta_2: float = 0.9
    bn_momentum: float = 0.8
    hop: int = 16  # window hop in steps (one bar)
    transpose: tuple[int, int] = (-5, 6)  # augmentation range, semitones
    sample_every: int = 50
    metrics_every: int = 50
    checkpoint_every: int = 50

    @property
    def z_shape(self) -> tuple[int, int, int]:
        down = 2 ** len(self.filters)
        return (WINDOW_STEPS // down, self.n_pitches // down, self.z_channels)

    @property
    def multi_voice(self) -> bool:
        return len(self.condition_voices) > 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preset:
        fields = {f.name for f in dataclasses.fields(cls)}
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in fields}
        return cls(**d)


PRESETS = {
    # The seed article / DeepComposer lab, unchanged: 8,273,540 + 2,766,785 parameters.
    "seed": Preset("seed", transpose=(0, 0)),
    # Small enough to train on 2 CPU cores in about an hour; all four condition voices.
    "cpu": Preset(
        "cpu",
        low=28,
        n_pitches=64,
        filters=(16, 32, 64, 128),
        z_channels=64,
        batch_size=32,
        condition_voices=(0, 1, 2, 3),
    ),
    # For tests: seconds, not minutes.
    "tiny": Preset(
        "tiny",
        low=28,
        n_pitches=64,
        filters=(8, 16, 16, 32),
        z_channels=8,
        batch_size=8,
        condition_voices=(0, 1, 2, 3),
        sample_every=5,
        metrics_every=5,
        checkpoint_every=5,
    ),
}


def get_preset(name: str, **overrides) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


def _voice_planes(voice, like):
    """One constant plane per voice, 1 on the condition voice's plane: (B, T, P, 4)."""
    onehot = tf.one_hot(tf.cast(voice, tf.int32), 4)[:, None, None, :]
    return tf.zeros_like(like[..., :1]) + onehot


def _inputs(p: Preset):
    cond = keras.Input((WINDOW_STEPS, p.n_pitches, 1), name="condition")
    voice = keras.Input((), dtype="int32", name="voice")
    return cond, voice


def build_generator(p: Preset) -> keras.Model:
    """U-Net: (condition roll, z, condition voice) -> four-voice roll in [-1, 1]."""
    cond, voice = _inputs(p)
    z = keras.Input(p.z_shape, name="z")
    x = cond
    if p.multi_voice:
        x = layers.Concatenate()([cond, layers.Lambda(lambda a: _voice_planes(*a))([voice, cond])])
    skips = []
    for i, f in enumerate(p.filters):
        x = layers.Conv2D(f, 4, strides=2, padding="same")(x)
        if i > 0:
            x = layers.BatchNormalization(momentum=p.bn_momentum)(x)
        x = layers.LeakyReLU(0.2)(x)
        skips.append(x)
    x = layers.Concatenate()([x, z])
    for f, skip in zip(reversed(p.filters[:-1]), reversed(skips[:-1])):
        x = layers.UpSampling2D(2)(x)
        x = layers.Conv2D(f, 4, padding="same")(x)
        x = layers.BatchNormalization(momentum=p.bn_momentum)(x)
        x = layers.ReLU()(x)
        x = layers.Concatenate()([x, skip])
    x = layers.UpSampling2D(2)(x)
    out = layers.Conv2D(4, 4, padding="same", activation="tanh", name="roll")(x)
    return keras.Model([cond, z, voice], out, name="generator")


def build_critic(p: Preset) -> keras.Model:
    """(four-voice roll, condition roll, condition voice) -> unbounded score."""
    cond, voice = _inputs(p)
    roll = keras.Input((WINDOW_STEPS, p.n_pitches, 4), name="roll")
    parts = [roll, cond]
    if p.multi_voice:
        parts.append(layers.Lambda(lambda a: _voice_planes(*a))([voice, cond]))
    x = layers.Concatenate()(parts)
    for f in p.filters:
        x = layers.Conv2D(f, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    out = layers.Dense(1)(layers.Flatten()(x))
    return keras.Model([roll, cond, voice], out, name="critic")


def sample_z(n: int, p: Preset, rng: tf.random.Generator | None = None, seed: int | None = None):
    """Latents from a truncated normal (as the seed), from a Generator or a seed."""
    shape = (n, *p.z_shape)
    if rng is not None:
        return rng.truncated_normal(shape)
    if seed is not None:
        return tf.random.stateless_truncated_normal(shape, seed=[seed, 0])
    return tf.random.truncated_normal(shape)


def gradient_penalty(critic, real, fake, cond, voice, alpha):
    """Mean (||grad D(x_hat)|| - 1)^2 at x_hat = alpha real + (1 - alpha) fake."""
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = critic([x_hat, cond, voice], training=True)
    grad = tape.gradient(score, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


class WGANGP(keras.Model):
    """A conditional WGAN-GP as one keras.Model: fit() runs the critic/generator loop.

    Each batch holds `critic_steps` minibatches; one train_step = one GAN iteration:
    `critic_steps` critic updates, then one generator update.
    """

    def __init__(self, preset: Preset, seed: int = 0, **kw):
        super().__init__(**kw)
        self.preset = preset
        self.generator = build_generator(preset)
        self.critic = build_critic(preset)
        self.rng = tf.random.Generator.from_seed(seed)
        self.built = True  # both halves are functional models, built on creation

    def compile(self, g_optimizer=None, c_optimizer=None, **kw):
        p = self.preset
        adam = lambda: keras.optimizers.Adam(p.learning_rate, beta_1=p.beta_1, beta_2=p.beta_2)  # noqa: E731
        super().compile(**kw)
        self.g_optimizer = g_optimizer or adam()
        self.c_optimizer = c_optimizer or adam()
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _replica_scale(self):
        return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync

    def critic_step(self, real, cond, voice):
        p, n = self.preset, tf.shape(real)[0]
        z = sample_z(n, p, rng=self.rng)
        fake = self.generator([cond, z, voice], training=True)
        alpha = self.rng.uniform((n, 1, 1, 1))
        with tf.GradientTape() as tape:
            d_real = self.critic([real, cond, voice], training=True)
            d_fake = self.critic([fake, cond, voice], training=True)
            gp = gradient_penalty(self.critic, real, fake, cond, voice, alpha)
            w_dist = tf.reduce_mean(d_real) - tf.reduce_mean(d_fake)
            loss = -w_dist + p.gp_weight * gp
            scaled = loss * self._replica_scale()
        grads = tape.gradient(scaled, self.critic.trainable_variables)
        self.c_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
        return loss, gp, w_dist

    def generator_step(self, cond, voice):
        z = sample_z(tf.shape(cond)[0], self.preset, rng=self.rng)
        with tf.GradientTape() as tape:
            fake = self.generator([cond, z, voice], training=True)
            loss = -tf.reduce_mean(self.critic([fake, cond, voice], training=True))
            scaled = loss * self._replica_scale()
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return loss

    def train_step(self, data):
        if data[1] is None:  # train_on_batch((real, cond, voice)) arrives as (x, None, None)
            data = data[0]
        real, cond, voice = data
        k = self.preset.critic_steps
        reals, conds, voices = (tf.split(t, k) for t in (real, cond, voice))
        for i in range(k):
            c_loss, gp, w_dist = self.critic_step(reals[i], conds[i], voices[i])
        g_loss = self.generator_step(conds[-1], voices[-1])
        return {
            "critic_loss": c_loss,
            "generator_loss": g_loss,
            "gradient_penalty": gp,
            "wasserstein": w_dist,
        }


def count_params(model: keras.Model) -> int:
    return int(sum(int(tf.size(w)) for w in model.weights))
