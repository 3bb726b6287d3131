"""The plain reference for one GAN iteration, written as the seed code does it.

This is the yardstick for `bench` and the oracle for the equivalence test: a plain
`tf.function` (no XLA) running, per critic step, G(cond, z) -> D(real) and D(fake) as
separate calls -> the gradient penalty with its own tape -> Adam, and then the
generator step. It uses the same `build_generator`/`build_critic` and `Preset` as
`WGANGP`, and draws z and alpha from a `tf.random.Generator` in the same order
(critic step: z, then alpha; generator step: z), so from the same weights and rng
state both must give the same losses and weights up to float noise.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bachgan.model import build_critic, build_generator, gradient_penalty, sample_z
from bachgan.presets import Preset


class ReferenceStep:
    """One seed-style GAN iteration per call: `critic_steps` critic updates, then G."""

    def __init__(self, preset: Preset, seed: int = 0, g_optimizer=None, c_optimizer=None):
        p = self.preset = preset
        self.generator = build_generator(p)
        self.critic = build_critic(p)
        self.rng = tf.random.Generator.from_seed(seed)
        adam = lambda: keras.optimizers.Adam(p.learning_rate, beta_1=p.beta_1, beta_2=p.beta_2)
        self.g_optimizer = g_optimizer or adam()
        self.c_optimizer = c_optimizer or adam()
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)
        self.step = tf.function(self._iteration)

    @classmethod
    def like(cls, gan) -> ReferenceStep:
        """A reference with fresh models holding copies of `gan`'s weights and rng state, and
        fresh optimizers of the same kind and settings as `gan`'s (call before training)."""
        fresh = lambda opt: type(opt).from_config(opt.get_config())
        ref = cls(
            gan.preset, g_optimizer=fresh(gan.g_optimizer), c_optimizer=fresh(gan.c_optimizer)
        )
        ref.generator.set_weights(gan.generator.get_weights())
        ref.critic.set_weights(gan.critic.get_weights())
        ref.rng.reset(gan.rng.state)
        return ref

    def __call__(self, real, cond, voice) -> dict:
        return self.step(real, cond, voice)

    def _critic_step(self, real, cond, voice):
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
        variables = self.critic.trainable_variables
        self.c_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, gp, w_dist

    def _generator_step(self, cond, voice):
        z = sample_z(tf.shape(cond)[0], self.preset, rng=self.rng)
        with tf.GradientTape() as tape:
            fake = self.generator([cond, z, voice], training=True)
            loss = -tf.reduce_mean(self.critic([fake, cond, voice], training=True))
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def _iteration(self, real, cond, voice):
        k = self.preset.critic_steps
        reals, conds, voices = (tf.split(t, k) for t in (real, cond, voice))
        for i in range(k):
            c_loss, gp, w_dist = self._critic_step(reals[i], conds[i], voices[i])
        g_loss = self._generator_step(conds[-1], voices[-1])
        return {
            "critic_loss": c_loss,
            "generator_loss": g_loss,
            "gradient_penalty": gp,
            "wasserstein": w_dist,
        }
