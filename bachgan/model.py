"""The seed's conditional WGAN-GP: a U-Net generator, a convolutional critic, one train step.

Architecture (seed preset): generator encoder Conv2D 4x4/2 with 64-128-256-512
filters (LeakyReLU 0.2, BatchNorm momentum 0.8 on all but the first), z concatenated
at the 2x8 bottleneck, decoder UpSampling2D -> Conv2D 4x4 -> BatchNorm -> ReLU ->
skip concat, then UpSampling2D -> Conv2D(4, tanh). Critic: Conv2D 4x4/2 x4 with
LeakyReLU 0.2, Flatten, Dense(1). Presets (bachgan.presets) change sizes, never code.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from bachgan.presets import DEFAULT_PRECISION, Preset, check_precision
from bachgan.voices import WINDOW_STEPS


def _voice_planes(voice, like):
    """One constant plane per voice, 1 on the condition voice's plane: (B, T, P, 4)."""
    onehot = tf.one_hot(tf.cast(voice, tf.int32), 4, dtype=like.dtype)[:, None, None, :]
    return tf.zeros_like(like[..., :1]) + onehot


@contextlib.contextmanager
def precision_policy(precision: str):
    """Layers made inside compute in `precision` (Keras's dtype policies): "mixed_bfloat16"
    keeps variables, optimizer state and BatchNorm in float32 and runs convolutions in
    bfloat16, faster where the CPU has native bfloat16 (see `bench`). Thread-local, as Keras's
    policy is; restored on exit."""
    check_precision(precision)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _inputs(p: Preset):
    cond = keras.Input((WINDOW_STEPS, p.n_pitches, p.condition_channels), name="condition")
    voice = keras.Input((), dtype="int32", name="voice")
    return cond, voice


def build_generator(p: Preset, precision: str = DEFAULT_PRECISION) -> keras.Model:
    """U-Net: (condition roll, z, condition voice) -> four-voice roll in [-1, 1], a float32
    output whatever the precision inside."""
    with precision_policy(precision):
        return _build_generator(p)


def _build_generator(p: Preset) -> keras.Model:
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
    out = layers.Conv2D(4, 4, padding="same", activation="tanh", name="roll", dtype="float32")(x)
    return keras.Model([cond, z, voice], out, name="generator")


def build_critic(p: Preset, precision: str = DEFAULT_PRECISION) -> keras.Model:
    """(four-voice roll, condition roll, condition voice) -> unbounded float32 score."""
    with precision_policy(precision):
        return _build_critic(p)


def _build_critic(p: Preset) -> keras.Model:
    cond, voice = _inputs(p)
    roll = keras.Input((WINDOW_STEPS, p.n_pitches, 4), name="roll")
    parts = [roll, cond]
    if p.multi_voice:
        parts.append(layers.Lambda(lambda a: _voice_planes(*a))([voice, cond]))
    x = layers.Concatenate()(parts)
    for f in p.filters:
        x = layers.Conv2D(f, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    out = layers.Dense(1, dtype="float32")(layers.Flatten()(x))
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


# ---------------------------------------------------------------- training-time generator


def _scatter_taps(kernel_size: int) -> tuple[np.ndarray, int]:
    """Nearest 2x upsampling then a stride-1 'same' conv, along one axis, seen from the
    low-resolution side. Tap t of output 2m + r reads upsampled row 2m + r - before + t,
    i.e. low-res row i = m + o with o = (r - before + t) // 2: row i adds into output
    2i + d with d = r - 2o, and several taps land on the same d.

    Returns a (K, kernel_size) 0/1 matrix whose row d - min(d) sums the taps landing at d,
    and the crop -min(d). For the seed's 4 taps, d = -2..2 gets (t3, t2 + t3, t1 + t2,
    t0 + t1, t0): 25 multiply-adds per 4 outputs in 2-d, where the conv did 64.
    """
    before = (kernel_size - 1) // 2  # TensorFlow's 'same' pads the smaller half first
    lands = [(r - 2 * ((r - before + t) // 2), t) for r in (0, 1) for t in range(kernel_size)]
    lo = min(d for d, _ in lands)
    matrix = np.zeros((max(d for d, _ in lands) - lo + 1, kernel_size), np.float32)
    for d, t in lands:
        matrix[d - lo, t] = 1.0
    return matrix, -lo


def _upsample_conv(conv, x):
    """conv(UpSampling2D(2)(x)) as one stride-2 transposed convolution of x, whose kernel
    sums the conv's taps that read the same low-resolution pixel.

    The same linear map (the sums are exact in real arithmetic; in float only rounding
    differs), with 25/64 of the multiply-adds for a 4x4 kernel, in one op (four sub-pixel
    convolutions and their interleaving did the same work, slower). `conv`'s variables are used
    directly, so gradients and checkpoints are those of the layer.
    """
    (my, crop_h), (mx, crop_w) = (_scatter_taps(k) for k in conv.kernel_size)
    kernel = tf.einsum("jt,lu,tuic->jlci", my, mx, conv.kernel)  # (K, K, out, in)
    x, kernel = (tf.cast(t, conv.compute_dtype) for t in (x, kernel))  # as the layer casts
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    full = [n, 2 * h + len(my) - 2, 2 * w + len(mx) - 2, conv.filters]
    y = tf.nn.conv2d_transpose(x, kernel, full, 2, "VALID")
    y = y[:, crop_h : crop_h + 2 * h, crop_w : crop_w + 2 * w]
    if conv.use_bias:
        y = y + tf.cast(conv.bias, y.dtype)
    return conv.activation(y)


def _fusable(up, conv) -> bool:
    return (
        isinstance(up, layers.UpSampling2D)
        and tuple(up.size) == (2, 2)
        and up.interpolation == "nearest"
        and up.data_format == "channels_last"
        and type(conv) is layers.Conv2D
        and conv.padding == "same"
        and tuple(conv.strides) == (1, 1)
        and tuple(conv.dilation_rate) == (1, 1)
        and conv.groups == 1
        and conv.data_format == "channels_last"
    )


def _single_use_graph(model: keras.Model) -> bool:
    """True when every layer of a functional model is called once, in `model.layers` order:
    then `_run_layers` can call them one by one. Checked before running, so a model that
    does not qualify is called as a whole and no BatchNorm update ever happens twice."""
    try:
        known = {id(t) for t in model.inputs}
        for layer in model.layers:
            if isinstance(layer, layers.InputLayer):
                continue
            if any(id(t) not in known for t in tf.nest.flatten(layer.input)):
                return False
            if isinstance(layer.output, (list, tuple)):
                return False
            known.add(id(layer.output))
        return id(model.output) in known
    except (AttributeError, ValueError):  # e.g. a layer with several inbound nodes
        return False


def _run_layers(model: keras.Model, inputs, training: bool, replace):
    """Call a functional model's layers one by one as Keras would, except where
    `replace(layer)` returns a function of the layer's inputs to call instead."""
    values = {id(k): v for k, v in zip(model.inputs, tf.nest.flatten(inputs))}
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        args = tf.nest.map_structure(lambda t: values[id(t)], layer.input)
        fn = replace(layer)
        values[id(layer.output)] = fn(args) if fn else layer(args, training=training)
    return values[id(model.output)]


def fused_forward(model: keras.Model, inputs, training: bool):
    """The model's output, with each UpSampling2D(2) -> Conv2D pair (the generator's decoder)
    computed as one `_upsample_conv`: same layers, variables and BatchNorm updates, about
    45% of the generator's multiply-adds at the seed size. Other layers run as they are."""
    if not _single_use_graph(model):
        return model(inputs, training=training)
    producer = {id(layer.output): layer for layer in model.layers}
    readers: dict[int, int] = {}
    for layer in model.layers:
        if not isinstance(layer, layers.InputLayer):
            for t in tf.nest.flatten(layer.input):
                readers[id(t)] = readers.get(id(t), 0) + 1
    fused = {}  # id(conv) -> the upsampling it absorbs
    for layer in model.layers:
        up = producer.get(id(layer.input)) if isinstance(layer, layers.Conv2D) else None
        if _fusable(up, layer) and readers[id(up.output)] == 1:
            fused[id(layer)] = up
    absorbed = {id(up) for up in fused.values()}

    def replace(layer):
        if id(layer) in absorbed:
            return lambda x: x  # the fused conv reads the low-resolution input itself
        if id(layer) in fused:
            return lambda x: _upsample_conv(layer, x)
        return None

    return _run_layers(model, inputs, training, replace)


def _frozen_slope(layer):
    """LeakyReLU as x * slope(x) with the slope (1 or a) behind stop_gradient: the same
    value and the same input gradient bit for bit, and no second-order path through x."""
    if isinstance(layer, layers.LeakyReLU):
        a = layer.negative_slope
        return lambda x: x * tf.cast(tf.where(tf.stop_gradient(x) > 0, 1.0, a), x.dtype)
    return None


def lean_gradient_penalty(critic, real, fake, cond, voice, alpha):
    """`gradient_penalty` with the same value and gradients, and about 30% less work.

    The penalty's gradient w.r.t. the critic's weights runs back through the input
    gradient. That depends on the forward activations only through which LeakyReLU slope
    applies, whose derivative is zero, yet TensorFlow back-propagates those zeros through
    every forward convolution (weights and inputs). With the slope frozen (`_frozen_slope`)
    that dead branch is not in the graph. Other layers keep their full derivatives.
    """
    if not _single_use_graph(critic):
        return gradient_penalty(critic, real, fake, cond, voice, alpha)
    x_hat = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        score = _run_layers(critic, [x_hat, cond, voice], True, _frozen_slope)
    grad = tape.gradient(score, x_hat)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


class WGANGP(keras.Model):
    """A conditional WGAN-GP as one keras.Model: fit() runs the critic/generator loop.

    Each batch holds `critic_steps` minibatches; one train_step = one GAN iteration:
    `critic_steps` critic updates, then one generator update.
    """

    def __init__(self, preset: Preset, seed: int = 0, precision: str = DEFAULT_PRECISION, **kw):
        super().__init__(**kw)
        self.preset = preset
        self.generator = build_generator(preset, precision)
        self.critic = build_critic(preset, precision)
        self.rng = tf.random.Generator.from_seed(seed)
        self.built = True  # both halves are functional models, built on creation

    def compile(self, g_optimizer=None, c_optimizer=None, **kw):
        p = self.preset
        adam = lambda **ema: keras.optimizers.Adam(  # noqa: E731
            p.learning_rate, beta_1=p.beta_1, beta_2=p.beta_2, **ema
        )
        super().compile(**kw)
        ema = {"use_ema": True, "ema_momentum": p.ema_momentum} if p.ema_momentum else {}
        self.g_optimizer = g_optimizer or adam(**ema)
        self.c_optimizer = c_optimizer or adam()
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    @contextlib.contextmanager
    def averaged(self):
        """The generator with its weights' moving average in place (presets with
        `ema_momentum`), for exports and samples; the trained weights come back on exit."""
        opt = getattr(self, "g_optimizer", None)
        if opt is None or not opt.use_ema:
            yield self.generator
            return
        variables = self.generator.trainable_variables
        trained = [v.numpy() for v in variables]
        opt.finalize_variable_values(variables)
        try:
            yield self.generator
        finally:
            for v, w in zip(variables, trained):
                v.assign(w)

    def _generate(self, inputs):
        """The generator in training mode: with the decoder fused (`fused_forward`), except
        under XLA, whose CPU transposed convolution made the seed step 4x slower than the
        Keras layers as built (53 s against 13 s an iteration here)."""
        if self.jit_compile:
            return self.generator(inputs, training=True)
        return fused_forward(self.generator, inputs, training=True)

    def _replica_scale(self):
        return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync

    def critic_step(self, real, cond, voice):
        """One critic update: the seed's math (same losses up to float rounding), less work.

        - the fakes come from `fused_forward` (decoder upsample+conv as transposed convs);
        - D(real) and D(fake) are one critic call on the stacked batch: the critic has no
          batch-dependent layer, so each row scores as it would alone;
        - the penalty is `lean_gradient_penalty`: no second-order pass through the forward
          convolutions. Its interpolates keep their own call: stacked in too, the input
          gradient and the pass through it would run on all 3n rows instead of n.
        z and alpha are drawn from `self.rng` in the seed's order (z, then alpha).
        """
        p, n = self.preset, tf.shape(real)[0]
        z = sample_z(n, p, rng=self.rng)
        fake = self._generate([cond, z, voice])
        alpha = self.rng.uniform((n, 1, 1, 1))
        both = lambda a, b: tf.concat([a, b], 0)  # noqa: E731
        with tf.GradientTape() as tape:
            scores = self.critic(
                [both(real, fake), both(cond, cond), both(voice, voice)], training=True
            )
            w_dist = tf.reduce_mean(scores[:n]) - tf.reduce_mean(scores[n:])
            gp = lean_gradient_penalty(self.critic, real, fake, cond, voice, alpha)
            loss = -w_dist + p.gp_weight * gp
            scaled = loss * self._replica_scale()
        grads = tape.gradient(scaled, self.critic.trainable_variables)
        self.c_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
        return loss, gp, w_dist

    def generator_step(self, cond, voice):
        """One generator update through `fused_forward`; the critic call is unchanged."""
        z = sample_z(tf.shape(cond)[0], self.preset, rng=self.rng)
        with tf.GradientTape() as tape:
            fake = self._generate([cond, z, voice])
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
