"""`python -m bachgan bench`: how fast BachGAN trains and harmonizes here, as one JSON dict.

Training: seconds per GAN iteration (critic_steps critic updates + 1 generator update) of
`WGANGP.train_step` compiled as `fit` compiles it, with and without XLA, on one fixed batch
of the preset's size (dense convolutions: the time does not depend on the values; the
tf.data pipeline runs ahead of the step in training and is timed on its own). With a
preset, `reference_step.ReferenceStep` (the seed's plain tf.function) starts from the same
weights and rng state and its iterations are interleaved with the optimized ones, so a
shared machine slows both alike; medians are reported, with process CPU seconds beside wall
seconds because CPU time is less sensitive to other processes on the machine.

FLOPs are counted analytically from the layer shapes (`iteration_flops`), and the peak is
measured with a float32 matmul and convolution (`compute_peak`), next to cores x clock x 32
FLOP/cycle.

App: the shipped model (or `checkpoint`) in this process: load time, harmonize latency for
a 2-bar melody (one window, batch 1) and a 17-bar melody (16 windows in one batch), the
generator call alone, click-to-audio (harmonize + MIDI + WAV) for 2 and 16 bars, memory.

Environment knobs (the CLI has none for them): BACHGAN_BENCH_REFERENCE=0 skips the
reference, BACHGAN_BENCH_JIT=on|off|both picks the XLA modes timed (default both).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from bachgan.cpu import info as cpuinfo
from bachgan.cpu import native_bfloat16

# ---------------------------------------------------------------- machine


def machine() -> dict:
    """CPU model, cores, clock, library versions and the load when the bench started."""
    import keras
    import tensorflow as tf

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    cpu = cpuinfo()
    info["cpu"] = cpu["name"] or info["cpu"]
    if cpu["mhz"]:
        info["mhz"] = cpu["mhz"]
    try:  # the maximum clock, when the kernel exposes it (not under most hypervisors)
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        info["mhz"] = int(khz) / 1000
    except (OSError, ValueError):
        pass
    info["simd"] = [
        f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu["flags"]
    ]
    return info


def theoretical_peak_gflops(info: dict) -> float | None:
    """cores x clock x 32 FLOP/cycle: two 256-bit FMA pipes of 8 float32 lanes (AVX2; Zen 4
    runs AVX-512 as two 256-bit halves, so it does not double this)."""
    if not info.get("mhz") or "fma" not in info.get("simd", []):
        return None
    return round(info["usable_cores"] * info["mhz"] / 1000 * 32, 1)


def _throughput(fn, flops: float, reps: int, rounds: int) -> tuple[float, float]:
    """Best round of (wall-clock GFLOP/s, GFLOP per CPU-second) of `reps` calls of `fn`,
    each doing `flops`."""
    fn().numpy()
    wall, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            out = fn()
        out.numpy()
        flops_done = flops * reps
        wall.append(flops_done / (time.perf_counter() - t0) / 1e9)
        cpu.append(flops_done / max(time.process_time() - c0, 1e-9) / 1e9)
    return max(wall), max(cpu)


def _taps_inside(size: int, k: int, stride: int = 1) -> int:
    """(output position, tap) pairs of a 'same' conv along one axis that read the input,
    not its zero padding (which oneDNN skips, so it must not count as work)."""
    out = -(-size // stride)
    before = max((out - 1) * stride + k - size, 0) // 2
    return sum(0 <= o * stride - before + t < size for o in range(out) for t in range(k))


def compute_peak(rounds: int = 3, dtype: str = "float32") -> dict:
    """Throughput in `dtype` of the two kernels training runs on, a large matmul and a large
    4x4 convolution (oneDNN's, which beats the matmul here); the better one is the
    practical peak. Only multiply-adds that read real input count.

    GFLOP per CPU-second x usable cores is what all cores would give if nothing else ran,
    so the estimate stays honest on a shared machine.
    """
    import tensorflow as tf

    n = 1536
    a = tf.random.normal((n, n), dtype=dtype)
    matmul = tf.function(lambda: tf.matmul(a, a))
    batch, h, w, c = 16, 32, 64, 256
    x = tf.random.normal((batch, h, w, c), dtype=dtype)
    k = tf.random.normal((4, 4, c, c), dtype=dtype)
    conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
    conv_flops = 2 * batch * _taps_inside(h, 4) * _taps_inside(w, 4) * c * c
    kinds = {
        "matmul": _throughput(matmul, 2 * n**3, 4, rounds),
        "conv": _throughput(conv, conv_flops, 2, rounds),
    }
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out = {}
    for kind, (wall, cpu) in kinds.items():
        out[f"{kind}_gflops_wall"] = round(wall, 1)
        out[f"{kind}_gflops_per_cpu_s"] = round(cpu, 1)
    out["peak_gflops_estimate"] = round(max(cpu for _, cpu in kinds.values()) * cores, 1)
    return out


# ---------------------------------------------------------------- FLOPs


def _layer_macs(model, fused: bool = False, inside: bool = False) -> dict[str, int]:
    """Multiply-adds per sample of each Conv2D/Dense layer of a functional model, by name
    (in `model.layers` order, so the first is the conv reading the model's inputs).

    Dense count by default (every tap of every output, as the layer shapes say); `inside`
    counts only taps that read the input, not the padding; `fused` counts each decoder conv
    as `fused_forward` runs it: one transposed convolution, K x K taps per low-res pixel and
    no padding (a 4x4 conv: 25 where the upsampled conv had 64).
    """
    from keras import layers

    from bachgan.model import _fusable, _scatter_taps

    producer = {id(layer.output): layer for layer in model.layers}
    macs = {}
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
            _, h_in, w_in, c_in = layer.input.shape
            _, h, w, c_out = layer.output.shape
            channels = c_in * c_out // layer.groups
            if fused and _fusable(producer.get(id(layer.input)), layer):
                taps = h_in * w_in * len(_scatter_taps(kh)[0]) * len(_scatter_taps(kw)[0]) // 4
            elif inside:
                taps = _taps_inside(h_in, kh, sh) * _taps_inside(w_in, kw, sw)
            else:
                taps = h * w * kh * kw
            macs[layer.name] = taps * channels
        elif isinstance(layer, layers.Dense):
            macs[layer.name] = layer.input.shape[-1] * layer.units
    return macs


def iteration_flops(preset) -> dict:
    """FLOPs of one GAN iteration at `preset`, counted from the conv/dense layer shapes.

    Per sample, with g and c the forward multiply-adds of generator and critic and g1, c1
    those of their first conv (no input gradient needed there):
      critic step: G forward g; D(real), D(fake) forward + weight and input gradients
        2c + 2c + 2(c - c1); penalty: forward c, input gradient c, and the pass through
        that gradient 2c (weights and upstream)  -> g + 10c - 2c1
      generator step: G forward, weight and input gradients 3g - g1; D forward and input
        gradient 2c
    times 2 FLOPs per multiply-add and the batch. Elementwise ops, BatchNorm and Adam are
    left out (about 1%).

    `nominal`: the seed's maths, every tap dense (the issue's count); `nominal_inside`: the
    same without the taps that read 'same' padding, which oneDNN skips - what the reference
    really computes; `executed`: BachGAN's step, padding skipped, decoder fused.
    """
    from bachgan.model import build_critic, build_generator

    g_model, d_model = build_generator(preset), build_critic(preset)
    k, b = preset.critic_steps, preset.batch_size

    def per_iteration(**count) -> int:
        g, d = _layer_macs(g_model, **count), _layer_macs(d_model, **count)
        gen, crit = sum(g.values()), sum(d.values())
        g1, c1 = next(iter(g.values())), next(iter(d.values()))
        critic = gen + 10 * crit - 2 * c1
        generator = 3 * gen - g1 + 2 * crit
        return int(2 * b * (k * critic + generator))

    return {
        "nominal": per_iteration(),
        "nominal_inside": per_iteration(inside=True),
        "executed": per_iteration(inside=True, fused=True),
        "generator_forward_macs_per_sample": sum(_layer_macs(g_model).values()),
        "critic_forward_macs_per_sample": sum(_layer_macs(d_model).values()),
    }


# ---------------------------------------------------------------- training


def _synthetic_batch(preset, seed: int = 0):
    """One iteration's batch (critic_steps minibatches) shaped like make_dataset's output."""
    import tensorflow as tf

    from bachgan.voices import WINDOW_STEPS

    p, rng = preset, np.random.default_rng(seed)
    n = p.batch_size * p.critic_steps
    rows = rng.integers(0, p.n_pitches, (n, WINDOW_STEPS, 4))
    roll = tf.one_hot(rows, p.n_pitches, axis=2) * 2.0 - 1.0  # (n, T, P, 4), one pitch a voice
    voice = rng.choice(np.array(p.condition_voices), n).astype(np.int32)
    cond = tf.gather(roll, voice, axis=3, batch_dims=1)[..., None]
    if p.context:  # context planes of 0/1, as the pipeline makes them
        planes = rng.integers(0, 2, (n, WINDOW_STEPS, p.n_pitches, p.condition_channels - 1))
        cond = tf.concat([cond, tf.constant(planes, tf.float32)], -1)
    return roll, cond, tf.constant(voice)


def data_pipeline_ms(preset, batches: int = 3) -> float | None:
    """Milliseconds to produce one iteration's batch with make_dataset, from the cached corpus
    (None when no parsed corpus is cached: the bench never parses the corpus)."""
    from bachgan.context import window_table
    from bachgan.data import BAR_STEPS, cache_path, load_corpus, make_dataset, stack_windows
    from bachgan.voices import WINDOW_STEPS

    if not cache_path().is_file():
        return None
    corpus = load_corpus()
    if preset.context:
        table = window_table(corpus.chorales("train", BAR_STEPS), preset.hop, WINDOW_STEPS)
        ds = make_dataset(table["pitches"], preset, context=table)
    else:
        ds = make_dataset(stack_windows(corpus.windows("train", preset.hop)), preset)
    it = iter(ds.prefetch(0))
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return round((time.perf_counter() - t0) / batches * 1000, 1)


def _median(xs) -> float | None:
    return round(float(np.median(xs)), 4) if xs else None


# The modes `bench_training` times: name -> (XLA, precision).
TRAIN_MODES = {
    "no_xla": (False, "float32"),
    "xla": (True, "float32"),
    "bf16": (False, "mixed_bfloat16"),
}


def same_start(preset, modes) -> dict:
    """A compiled WGANGP per mode of TRAIN_MODES, all from the same initial weights (the same
    on every call) and rng state, so their steps can be compared and timed side by side."""
    import keras

    from bachgan.model import WGANGP

    keras.utils.set_random_seed(0)
    gans = {}
    for mode in modes:
        jit, precision = TRAIN_MODES[mode]
        gan = WGANGP(preset, seed=0, precision=precision)
        gan.compile(jit_compile=jit)
        if gans:
            first = next(iter(gans.values()))
            gan.generator.set_weights(first.generator.get_weights())
            gan.critic.set_weights(first.critic.get_weights())
        gans[mode] = gan
    return gans


def bench_training(
    preset_name: str, iterations: int, reference: bool, modes=tuple(TRAIN_MODES)
) -> dict:
    """Time BachGAN's step in each of `modes` and optionally the reference, interleaved, all
    from the same weights and rng state."""
    from bachgan.presets import get_preset
    from bachgan.reference_step import ReferenceStep

    p = get_preset(preset_name)
    data = _synthetic_batch(p)
    gans = same_start(p, modes)
    runners, losses, warmup = {}, {}, {}
    for mode, gan in gans.items():
        runners[mode] = lambda gan=gan: gan.train_on_batch(data, return_dict=True)
    if reference:
        ref = ReferenceStep.like(next(iter(gans.values())))  # same weights and rng state
        runners["reference"] = lambda: {k: float(v) for k, v in ref(*data).items()}
    for name, run in runners.items():  # first call: tracing and compiling
        t0 = time.perf_counter()
        losses[name] = {k: round(float(v), 6) for k, v in run().items()}
        warmup[name] = round(time.perf_counter() - t0, 2)
    wall = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    for _ in range(iterations):  # interleaved, so a busy machine slows all alike
        for name, run in runners.items():
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    out = {
        "preset": p.name,
        "batch_size": p.batch_size,
        "critic_steps": p.critic_steps,
        "iterations_timed": iterations,
        "warmup_s": warmup,
        "iteration_s": {k: _median(v) for k, v in wall.items()},
        "iteration_cpu_s": {k: _median(v) for k, v in cpu.items()},
        "first_iteration_losses": losses,
    }
    for mode in ("no_xla", "bf16"):  # XLA draws other random numbers: not comparable
        if reference and mode in losses:
            a, b = losses[mode], losses["reference"]
            out[f"loss_max_rel_diff_{mode}_vs_reference"] = float(
                max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-6) for k in b)
            )
    return out


# ---------------------------------------------------------------- app


def _melody(preset, bars: int, voice: int):
    """A stepwise quarter-note melody for `voice` inside its choir range and the model's."""
    from bachgan.voices import SATB_RANGES, STEPS_PER_BEAT, VOICE_NAMES, Voices

    lo, hi = SATB_RANGES[VOICE_NAMES[voice]]
    centre = min(max((lo + hi) // 2, preset.low + 7), preset.low + preset.n_pitches - 8)
    shape = [0, 2, 4, 5, 7, 5, 4, 2, 0, -1, -3, -1]
    notes = [centre + shape[i % len(shape)] for i in range(bars * 4)]
    return Voices.from_pitches(np.repeat(np.array(notes, np.int16), STEPS_PER_BEAT))


def _percentiles_ms(fn, reps: int, warmup: int = 2, pause: float = 0.0) -> tuple[float, float]:
    """p50 and p95 of fn's wall time in ms; `pause` seconds of idleness before each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        time.sleep(pause)
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(float(np.percentile(times, 50)), 2), round(float(np.percentile(times, 95)), 2)


def _rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def bench_app(checkpoint=None, reps: int = 30, audio_reps: int = 7) -> dict:
    """Harmonize and click-to-audio latencies with a loaded model, in this process."""
    from bachgan import audio, midi
    from bachgan.context import estimate as estimate_context
    from bachgan.sampling import Harmonizer, decode, default_checkpoint

    path = Path(checkpoint) if checkpoint else default_checkpoint()
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    try:
        h = Harmonizer(path)
    except (FileNotFoundError, ValueError, OSError) as err:
        return {"model": {"path": str(path), "error": f"{type(err).__name__}: {err}"}}
    load_s = time.perf_counter() - t0
    p = h.preset
    voice = p.default_voice
    two, sixteen, seventeen = (_melody(p, n, voice) for n in (2, 16, 17))
    t0 = time.perf_counter()
    h.harmonize(two, voice, seed=0)
    first_s = time.perf_counter() - t0
    out = {
        "model": {k: h.card.get(k) for k in ("path", "run", "iteration")} | {"preset": p.name},
        "model_load_s": round(load_s, 3),
        "first_harmonize_s": round(first_s, 3),
    }
    out["harmonize_p50_ms"], out["harmonize_p95_ms"] = _percentiles_ms(
        lambda: h.harmonize(two, voice, seed=0), reps
    )
    # A click comes after the user's pause: TensorFlow's threads have gone to sleep and the
    # caches hold other things, which calls in a tight loop never see.
    out["harmonize_after_pause_p50_ms"], out["harmonize_after_pause_p95_ms"] = _percentiles_ms(
        lambda: h.harmonize(two, voice, seed=0), reps, pause=0.2
    )
    out["harmonize_batch16_p50_ms"], out["harmonize_batch16_p95_ms"] = _percentiles_ms(
        lambda: h.harmonize(seventeen, voice, seed=0), max(5, reps // 2)
    )
    z = h.latent(two.steps, seed=0)
    for n in (1, 16):  # the generator call alone, as harmonize makes it
        cond = np.zeros((n, 32, p.n_pitches, p.condition_channels), np.float32) - 1.0
        zs = np.repeat(z[None], n, axis=0)
        p50, p95 = _percentiles_ms(
            lambda c=cond, zz=zs: h._run(c, zz, np.full(len(c), voice)), reps
        )
        out[f"generator_batch{n}_p50_ms"], out[f"generator_batch{n}_p95_ms"] = p50, p95
    # the clean-up alone, as harmonize calls it on the scores it hands over
    raw = h.harmonize(two, voice, seed=0, raw=True).raw_roll
    context = estimate_context(two)
    out["cleanup_p50_ms"], out["cleanup_p95_ms"] = _percentiles_ms(
        lambda: decode(raw, p, two, voice, context=context), reps
    )
    synth = {}

    def click(melody, full):
        result = h.harmonize(melody, voice, seed=0)
        data = midi.to_midi_bytes(result.voices)
        # The app's player gets the preview; downloads and the CLI get full quality.
        wav = (
            audio.render_wav(data)
            if full
            else audio.render_wav(data, audio.PREVIEW_RATE, mono=True)
        )
        synth["name"] = wav.synthesizer
        return wav

    for full, kind in ((False, ""), (True, "_full_quality")):
        for bars, melody, n in ((2, two, audio_reps), (16, sixteen, max(3, audio_reps - 2))):
            key = f"click_to_audio{kind}_{bars}bars"
            out[f"{key}_p50_ms"], out[f"{key}_p95_ms"] = _percentiles_ms(
                lambda m=melody, f=full: click(m, f), n, warmup=1
            )
    out["synthesizer"] = synth.get("name")
    out["audio_preview"] = f"{audio.PREVIEW_RATE} Hz mono (the app's player)"
    out["audio_full_quality"] = f"{audio.SAMPLE_RATE} Hz stereo (downloads, CLI)"
    four = midi.to_midi_bytes(h.harmonize(two, voice, seed=0).voices)
    out["audio_processes"] = len(audio.split_instruments(four, audio.usable_cores()))
    out["app_rss_mb"] = _rss_mb()
    out["app_rss_model_mb"] = (
        round(out["app_rss_mb"] - rss_before, 1) if out["app_rss_mb"] and rss_before else None
    )
    return out


# ---------------------------------------------------------------- entry point

APP_KEYS = (
    "model_load_s",
    "harmonize_p50_ms",
    "harmonize_p95_ms",
    "harmonize_after_pause_p50_ms",
    "cleanup_p50_ms",
    "harmonize_batch16_p50_ms",
    "harmonize_batch16_p95_ms",
    "click_to_audio_2bars_p50_ms",
    "click_to_audio_16bars_p50_ms",
)


def _train_modes() -> tuple[str, ...]:
    """BACHGAN_BENCH_JIT=on|off|both picks the float32 modes. bf16 is timed where the CPU
    computes bfloat16 natively (elsewhere it is emulated, slowly), or with BACHGAN_BENCH_BF16=1;
    BACHGAN_BENCH_BF16=0 drops it."""
    choice = os.environ.get("BACHGAN_BENCH_JIT", "both").lower()
    modes = {"on": ("xla",), "off": ("no_xla",)}.get(choice, ("no_xla", "xla"))
    wanted = os.environ.get("BACHGAN_BENCH_BF16")
    return modes + (("bf16",) if wanted == "1" or (wanted != "0" and native_bfloat16()) else ())


def run_bench(preset=None, iterations: int = 3, checkpoint=None, reference=None) -> dict:
    """Everything above as one flat-ish dict. Without `preset`: the shipped model and the
    `cpu` preset's training speed (no reference); with one: that preset's training speed
    against the reference, and the shipped model as well."""
    import tensorflow as tf

    from bachgan.presets import get_preset

    info = machine()
    if reference is None:
        reference = preset is not None and os.environ.get("BACHGAN_BENCH_REFERENCE") != "0"
    out: dict = {"machine": info}
    app = bench_app(checkpoint)
    out.update({k: None for k in APP_KEYS} | app)  # None when the model could not be loaded
    out["peak_rss_mb"] = _peak_rss_mb()  # the app's peak: measured before any training

    name = preset or "cpu"
    train = bench_training(name, iterations, reference, _train_modes())
    # The headline is float32, the reference's arithmetic; bfloat16 is reported beside it.
    times = {k: v for k, v in train["iteration_s"].items() if k in ("no_xla", "xla")}
    best = min(times, key=times.get)
    flops = iteration_flops(get_preset(name))
    peak = compute_peak()
    step_s = times[best]
    out.update(
        train_preset=name,
        train_iteration_s=step_s,
        train_iteration_jit=best,
        train_iteration_cpu_s=train["iteration_cpu_s"][best],
        samples_per_s=round(train["batch_size"] * train["critic_steps"] / step_s, 2),
        flops_per_iteration=flops["nominal"],
        flops_per_iteration_inside=flops["nominal_inside"],
        flops_per_iteration_executed=flops["executed"],
        flops_method="analytic: conv/dense multiply-adds from layer shapes (see iteration_flops)",
        achieved_gflops=round(flops["nominal_inside"] / step_s / 1e9, 1),
        achieved_gflops_per_cpu_s=round(
            flops["nominal_inside"] / train["iteration_cpu_s"][best] / 1e9, 1
        ),
        peak_gflops_estimate=peak["peak_gflops_estimate"],
        peak_gflops_theoretical=theoretical_peak_gflops(info),
        peak_method=(
            "float32 GFLOP per CPU-second x usable cores (robust to other processes) of the "
            "better of a large matmul and a large 4x4 convolution (padding taps not counted); "
            "theoretical = cores x clock x 32 FLOP/cycle"
        ),
        bound_iteration_s=round(flops["nominal_inside"] / peak["peak_gflops_estimate"] / 1e9, 2),
        bound_iteration_s_executed=round(flops["executed"] / peak["peak_gflops_estimate"] / 1e9, 2),
        training=train,
        peak=peak,
        data_pipeline_batch_ms=data_pipeline_ms(get_preset(name)),
    )
    if reference:
        ref_s = train["iteration_s"]["reference"]
        out["reference_train_iteration_s"] = ref_s
        out["reference_train_iteration_cpu_s"] = train["iteration_cpu_s"]["reference"]
        out["speedup"] = round(ref_s / step_s, 2)
        out["speedup_cpu_time"] = round(
            train["iteration_cpu_s"]["reference"] / train["iteration_cpu_s"][best], 2
        )
    bf16_s = train["iteration_s"].get("bf16")
    if bf16_s:
        out["train_iteration_bf16_s"] = bf16_s
        out["achieved_gflops_bf16"] = round(flops["nominal_inside"] / bf16_s / 1e9, 1)
        out["peak_bf16"] = compute_peak(dtype="bfloat16")
        out["peak_gflops_bf16_estimate"] = out["peak_bf16"]["peak_gflops_estimate"]
        if reference:
            out["speedup_bf16"] = round(train["iteration_s"]["reference"] / bf16_s, 2)
    out["train_peak_rss_mb"] = _peak_rss_mb()
    info["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    out["notes"] = [
        "times are medians; the reference and optimized iterations are interleaved",
        "train_iteration_s is the faster of the two float32 modes, without XLA (no_xla) and "
        "with it (xla); train_iteration_jit names it and training.iteration_s has every mode; "
        "`python -m bachgan train` compiles with XLA only when given --jit",
        "bf16: BachGAN's step without XLA under Keras's mixed_bfloat16 policy (`train "
        "--precision mixed_bfloat16`): weights, optimizer state, BatchNorm, the output layers "
        "and the losses in float32, the other layers in bfloat16; train_iteration_bf16_s and "
        "speedup_bf16 report it, and loss_max_rel_diff_bf16_vs_reference its first-iteration "
        "losses against the float32 reference",
        "flops_per_iteration: the seed's maths counted densely, as the issue does; "
        "flops_per_iteration_inside: the same without taps that read 'same' padding (oneDNN "
        "skips them), the work the reference really does; flops_per_iteration_executed: "
        "BachGAN's step, padding skipped and decoder fused; achieved_gflops = "
        "flops_per_iteration_inside / time (the useful work); bound_iteration_s = "
        "flops_per_iteration_inside / peak, bound_iteration_s_executed = executed / peak",
        "the machine may be shared: see machine.load_average_* and compare the *_cpu_s keys",
        "harmonize: a 2-bar melody (one window, batch 1) through Harmonizer.harmonize, clean-up "
        "included, calls back to back; harmonize_after_pause: the same, each after 0.2 s idle "
        "(as a user's click comes); harmonize_batch16: a 17-bar melody (16 overlapping windows "
        "in one generator batch); generator_batchN: the generator call alone; cleanup: the "
        "voice-leading clean-up alone on the 2-bar window's scores; click_to_audio: harmonize + "
        "midi.to_midi_bytes + audio.render_wav as the app's player gets it (audio_preview), "
        "click_to_audio_full_quality: the same at full quality (audio_full_quality); both "
        "render in audio_processes fluidsynth processes at once",
        "loss_max_rel_diff_no_xla_vs_reference: first iteration, Adam; up to ~1e-3 is rounding "
        "noise that Adam's first, sign-like steps amplify (the seed code differs as much from "
        "itself between oneDNN and Eigen kernels); tests/test_bench.py checks exactly, with SGD",
        "XLA draws other random numbers than TensorFlow's kernels from the same tf.random."
        "Generator state, so first_iteration_losses.xla differs from the reference by its "
        "z and alpha, not by its math",
        f"tf intra/inter-op threads: {tf.config.threading.get_intra_op_parallelism_threads()}"
        f"/{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TensorFlow default)",
    ]
    return out


def markdown(results: list[dict]) -> str:
    """The README's benchmark table, straight from `run_bench` results (one per preset):
    each one's training rows, then the app's rows of the first."""
    m = results[0]["machine"]
    loads = ", ".join(
        f"{r['machine']['load_average_1min']:g}-{r['machine'].get('load_average_1min_end', 0):g}"
        for r in results
    )
    rows = [
        f"Machine: {m['cpu']}, {m['cores']} cores at {m.get('mhz', 0):.0f} MHz "
        f"({', '.join(m.get('simd', []))}), {m.get('gpus', 0)} GPU, TensorFlow "
        f"{m['tensorflow']}; 1-minute load average during the runs: {loads}.",
        "",
        "| measure | target | measured |",
        "|---|---|---|",
    ]

    def add(what, target, value):
        rows.append(f"| {what} | {target} | {value} |")

    for r in results:
        _training_rows(r, add)
    app = next((r for r in results if r.get("harmonize_p50_ms") is not None), None)
    if app:
        _app_rows(app, add)
    return "\n".join(rows)


def _s(x) -> str:
    return "—" if x is None else f"{x:g} s"


def _ms(x) -> str:
    return "—" if x is None else f"{x:g} ms"


def _training_rows(r: dict, add) -> None:
    t, name = r["training"], r["train_preset"]
    its = t["iteration_s"]
    batch = f"batch {t['batch_size']}, {t['critic_steps']} critic + 1 generator steps"
    if "reference" in its:
        add(f"`{name}` iteration, plain tf.function reference ({batch})", "—", _s(its["reference"]))
    goals = {"cpu": "trains to the targets in 60 min"}
    if "reference" in its:
        goals["seed"] = "2x faster than the reference, same losses up to float noise"
    speed = f" ({r['speedup']:g}x the reference)" if "speedup" in r else ""
    add(
        f"`{name}` iteration, BachGAN's step without XLA ({batch})",
        goals.get(name, "—"),
        _s(its.get("no_xla")) + speed,
    )
    if "xla" in its:
        add(f"`{name}` iteration with XLA (`--jit`)", "—", _s(its["xla"]))
    if "bf16" in its:
        speed = f" ({r['speedup_bf16']:g}x the reference)" if "speedup_bf16" in r else ""
        add(
            f"`{name}` iteration in mixed bfloat16 (`--precision mixed_bfloat16`), no XLA",
            goals.get(name, "—") if name == "seed" else "—",
            _s(its["bf16"]) + speed,
        )
    diffs = [t.get(f"loss_max_rel_diff_{m}_vs_reference") for m in ("no_xla", "bf16")]
    if diffs[0] is not None:
        add(
            "first-iteration losses against the reference, largest relative difference: "
            "float32" + (" / mixed bfloat16" if diffs[1] is not None else ""),
            "—",
            " / ".join(f"{d:.2%}" for d in diffs if d is not None),
        )
    if "reference" in its:
        add(
            f"`{name}` FLOPs per iteration: the seed's maths counted densely / without "
            "padding taps / executed by BachGAN's step",
            "—",
            f"{r['flops_per_iteration'] / 1e9:,.0f} / "
            f"{r['flops_per_iteration_inside'] / 1e9:,.0f} / "
            f"{r['flops_per_iteration_executed'] / 1e9:,.0f} GFLOP",
        )
        add(
            "CPU peak (float32, best of matmul and conv) / iteration time at that peak "
            "(seed maths without padding, executed)",
            "—",
            f"{r['peak_gflops_estimate']:g} GFLOP/s / {_s(r['bound_iteration_s'])}, "
            f"{_s(r['bound_iteration_s_executed'])}",
        )
        if "peak_gflops_bf16_estimate" in r:
            bf16_peak = r["peak_gflops_bf16_estimate"]
            add(
                "CPU peak in bfloat16 / BachGAN's executed step at that peak",
                "—",
                f"{bf16_peak:g} GFLOP/s / "
                f"{_s(round(r['flops_per_iteration_executed'] / bf16_peak / 1e9, 2))}",
            )
        mine = r["flops_per_iteration_executed"] / its["no_xla"] / 1e9
        theirs = r["flops_per_iteration_inside"] / its["reference"] / 1e9
        add(
            "FLOP rate executed: BachGAN's step / the reference",
            "—",
            f"{mine:.0f} / {theirs:.0f} GFLOP/s",
        )
    add(f"peak memory while training `{name}`", "—", f"{r['train_peak_rss_mb']:g} MB")


def _app_rows(r: dict, add) -> None:
    model = r.get("model") or {}
    shipped = f"{model.get('preset')} model, {model.get('iteration') or 0:,} iterations"
    add(
        f"harmonize one 2-bar window ({shipped}), clean-up included: p50 / p95",
        "≤ 10 ms p50",
        f"{_ms(r['harmonize_p50_ms'])} / {_ms(r['harmonize_p95_ms'])}",
    )
    if "harmonize_after_pause_p50_ms" in r:  # saved results from before this key still print
        add(
            "the same after 0.2 s of idleness (as a click comes): p50 / p95",
            "—",
            f"{_ms(r['harmonize_after_pause_p50_ms'])} / {_ms(r['harmonize_after_pause_p95_ms'])}",
        )
    add(
        "the generator call alone, batch 1 / batch 16",
        "—",
        f"{_ms(r['generator_batch1_p50_ms'])} / {_ms(r['generator_batch16_p50_ms'])}",
    )
    if "cleanup_p50_ms" in r:  # saved results from before this key still print
        add(
            "the clean-up alone, 2 bars: p50 / p95",
            "—",
            f"{_ms(r['cleanup_p50_ms'])} / {_ms(r['cleanup_p95_ms'])}",
        )
    preview = r["audio_preview"].split(" (")[0]
    for bars, goal in ((2, "≤ 300 ms p50"), (16, "≤ 1 s p50")):
        add(
            f"click to audio, {bars} bars: harmonize + MIDI + WAV for the app's player "
            f"({preview}): p50 / p95",
            goal,
            f"{_ms(r[f'click_to_audio_{bars}bars_p50_ms'])} / "
            f"{_ms(r[f'click_to_audio_{bars}bars_p95_ms'])}",
        )
    for bars in (2, 16):
        add(
            f"the same, full quality ({r['audio_full_quality'].split(' (')[0]}), {bars} bars",
            "—",
            f"{_ms(r[f'click_to_audio_full_quality_{bars}bars_p50_ms'])} / "
            f"{_ms(r[f'click_to_audio_full_quality_{bars}bars_p95_ms'])}",
        )
    add("model load", "—", _s(r["model_load_s"]))
    add("memory of this process with the model loaded", "—", f"{r['app_rss_mb']:g} MB")
