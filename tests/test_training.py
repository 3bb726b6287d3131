"""The seed's model, the WGAN-GP step and resumable training runs (real TensorFlow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from bachgan.export import load_generator
from bachgan.model import (
    WGANGP,
    build_critic,
    build_generator,
    count_params,
    gradient_penalty,
)
from bachgan.pianoroll import to_roll
from bachgan.presets import PRESETS, get_preset
from bachgan.runs_io import read_json, read_jsonl
from bachgan.train import train
from bachgan.voices import Voices

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"log": lambda *a: None}


def test_seed_parameter_counts():
    p = get_preset("seed")
    assert count_params(build_generator(p)) == 8_273_540
    assert count_params(build_critic(p)) == 2_766_785
    assert p.z_shape == (2, 8, 512)


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "seed"])
def test_every_preset_builds_its_shapes(name):
    """Presets are data: each one sizes the same code into a working generator and critic."""
    p = get_preset(name)
    g, c = build_generator(p), build_critic(p)
    cond = tf.zeros((2, 32, p.n_pitches, p.condition_channels))
    voice = tf.constant([p.condition_voices[0]] * 2)
    out = g([cond, tf.zeros((2, *p.z_shape)), voice])
    assert out.shape == (2, 32, p.n_pitches, 4)
    assert c([out, cond, voice]).shape == (2, 1)


def test_multi_voice_generator_shapes():
    p = get_preset("tiny")
    g = build_generator(p)
    out = g([np.zeros((2, 32, 64, 1)), np.zeros((2, *p.z_shape)), np.array([0, 3])])
    assert out.shape == (2, 32, 64, 4)
    assert float(tf.reduce_max(tf.abs(out))) <= 1.0


def test_gradient_penalty_hand_computed():
    """A linear critic D(x) = sum(w * x) has gradient w everywhere: GP = (|w| - 1)^2."""
    x = keras.Input((2, 2, 1))
    c = keras.Input((2, 2, 1))
    v = keras.Input((), dtype="int32")
    dense = keras.layers.Dense(1, use_bias=False)
    critic = keras.Model([x, c, v], dense(keras.layers.Flatten()(x)))
    w = np.array([[1.0], [2.0], [2.0], [0.0]], np.float32)  # |w| = 3
    dense.set_weights([w])
    real = tf.ones((3, 2, 2, 1))
    fake = -tf.ones((3, 2, 2, 1))
    alpha = tf.constant([0.0, 0.5, 1.0], shape=(3, 1, 1, 1))
    gp = gradient_penalty(critic, real, fake, real, tf.zeros(3, tf.int32), alpha)
    assert float(gp) == pytest.approx((3.0 - 1.0) ** 2, rel=1e-5)


def test_twenty_tiny_iterations_log_finite_losses(tmp_path):
    status = train(tmp_path / "run", preset="tiny", iterations=20, seed=1, jit=False, **QUIET)
    assert status["state"] == "finished" and status["iteration"] == 20
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["iteration"] for r in rows] == list(range(1, 21))
    for r in rows:
        for k in ("critic_loss", "generator_loss", "gradient_penalty", "wasserstein", "seconds"):
            assert np.isfinite(r[k]), (k, r)
    assert any("music/chord_tone_rate" in r for r in rows), "musical metrics every K iterations"
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["split"]["test"] and cfg["versions"]["tensorflow"] and cfg["device"]
    assert (tmp_path / "run" / "samples" / "iter-000005.npz").is_file()
    assert (tmp_path / "run" / "samples" / "iter-000005.mid").is_file()
    gen, preset, card = load_generator(tmp_path / "run")
    assert card["iteration"] == 20 and preset.name == "tiny"


def test_resume_continues_and_matches_uninterrupted(tmp_path, deterministic_ops):
    kw = dict(preset="tiny", seed=5, jit=False, **QUIET)
    train(tmp_path / "a", iterations=10, **kw)
    train(tmp_path / "b", iterations=5, **kw)
    first = read_json(tmp_path / "b" / "status.json")["started"]
    status = train(tmp_path / "b", iterations=10, resume=True, **QUIET)
    assert status["state"] == "finished"
    assert status["started"] == first, "the run's start, not the resume's"
    a = read_jsonl(tmp_path / "a" / "metrics.jsonl")
    b = read_jsonl(tmp_path / "b" / "metrics.jsonl")
    assert [r["iteration"] for r in b] == list(range(1, 11)), "every iteration logged once"
    for ra, rb in zip(a, b):
        assert rb["critic_loss"] == pytest.approx(ra["critic_loss"], rel=1e-3, abs=1e-3)
        assert rb["generator_loss"] == pytest.approx(ra["generator_loss"], rel=1e-3, abs=1e-3)
    ga, _, _ = load_generator(tmp_path / "a")
    gb, _, _ = load_generator(tmp_path / "b")
    for wa, wb in zip(ga.get_weights(), gb.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-3, atol=1e-4)


def test_minutes_budget_stops_saves_and_counts_across_resumes(tmp_path):
    run = tmp_path / "run"
    kw = dict(preset="tiny", iterations=100_000, seed=2, jit=False, **QUIET)
    status = train(run, minutes=0.03, **kw)
    rows = read_jsonl(run / "metrics.jsonl")
    spent = sum(r["seconds"] for r in rows)
    assert status["state"] == "stopped" and status["iteration"] == len(rows) >= 1
    assert spent >= 0.03 * 60, "stops only once the budget is used"
    assert load_generator(run)[2]["iteration"] == status["iteration"], "saved on the way out"

    said = []
    again = train(run, resume=True, log=said.append)  # the budget is spent: nothing to do
    assert again["iteration"] == status["iteration"]
    assert any("budget was spent before this resume" in line for line in said), said
    more = train(run, resume=True, minutes=spent / 60 + 0.02, **QUIET)
    assert more["iteration"] > status["iteration"], "a larger budget continues the run"
    goal = more["iteration"] + 2  # minutes=0 (the CLI's --no-budget) lifts the budget
    lifted = train(run, resume=True, iterations=goal, minutes=0.0, **QUIET)
    assert lifted["state"] == "finished" and lifted["iteration"] == goal
    assert read_json(run / "config.json")["minutes"] is None


def test_minutes_budget_counts_step_seconds_in_the_first_session_too(tmp_path, monkeypatch):
    """One definition of the budget: the logged step seconds, in the first session as in a
    resume. A clock that makes each step take 1 ms puts the stop at exactly iteration 6 for
    a 5.5 ms budget (wall time with start-up and checkpoints stopped it after iteration 1,
    and the resume then trained again)."""
    import types

    from bachgan import train as train_module

    ticks = iter(range(10**9))
    clock = types.SimpleNamespace(
        perf_counter=lambda: next(ticks) / 1000,
        **{k: getattr(time, k) for k in ("time", "strftime", "monotonic")},
    )
    monkeypatch.setattr(train_module, "time", clock)
    run = tmp_path / "run"
    status = train(run, preset="tiny", iterations=1000, seed=2, minutes=0.0055 / 60, **QUIET)
    assert status["state"] == "stopped" and status["iteration"] == 6
    said = []
    again = train(run, resume=True, log=said.append)
    assert again["iteration"] == 6
    assert any("budget was spent before this resume" in line for line in said), said


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def test_sigterm_stops_cleanly_with_loadable_checkpoint(tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "bachgan",
        "train",
        "--run-dir",
        str(run),
        "--preset",
        "tiny",
        "--iterations",
        "100000",
        "--no-jit",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(read_jsonl(run / "metrics.jsonl")) < 3:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-2000:]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped" and status["pid"] is None
    gen, _, card = load_generator(run)
    assert card["iteration"] == status["iteration"] >= 3


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from bachgan.train import train
s = train({str(tmp_path / "m")!r}, preset="tiny", iterations=3, strategy="mirrored", log=print)
assert s["state"] == "finished", s
print("REPLICAS", tf.distribute.MirroredStrategy().num_replicas_in_sync)
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "REPLICAS 2" in out.stdout
    rows = read_jsonl(tmp_path / "m" / "metrics.jsonl")
    assert len(rows) == 3 and all(np.isfinite(r["critic_loss"]) for r in rows)


def test_second_run_is_refused_while_one_trains(tmp_path):
    from bachgan.train import TrainingBusy, acquire_lock

    lock = acquire_lock()
    try:
        with pytest.raises(TrainingBusy, match="already"):
            train(tmp_path / "x", preset="tiny", iterations=2, **QUIET)
    finally:
        lock.close()


def test_wgangp_step_runs_jit_compiled():
    p = get_preset("tiny")
    gan = WGANGP(p, seed=0)
    gan.compile(jit_compile=True)
    n = p.batch_size * p.critic_steps
    real = tf.constant(
        np.sign(np.random.default_rng(0).standard_normal((n, 32, 64, 4))), tf.float32
    )
    logs = gan.train_on_batch((real, real[..., :1], tf.zeros(n, tf.int32)), return_dict=True)
    assert set(logs) >= {"critic_loss", "generator_loss", "gradient_penalty", "wasserstein"}


def test_the_averaged_generator_is_the_moving_average_of_its_weights():
    """With `ema_momentum`, `averaged()` puts m * average + (1 - m) * weights in place
    (Keras's optimizer EMA, updated with each generator step) and gives the trained weights
    back afterwards; without it the generator is the trained one."""
    p = get_preset("tiny", ema_momentum=0.5, critic_steps=1)
    gan = WGANGP(p, seed=0)
    gan.compile()
    n = p.batch_size
    real = tf.constant(
        np.sign(np.random.default_rng(0).standard_normal((n, 32, 64, 4))), tf.float32
    )
    batch = (real, real[..., :1], tf.zeros(n, tf.int32))
    kernel = gan.generator.trainable_variables[0]
    gan.train_on_batch(batch)  # the first step copies the weights into the average
    first = kernel.numpy()
    gan.train_on_batch(batch)
    second = kernel.numpy()
    assert not np.allclose(first, second)
    with gan.averaged() as generator:
        np.testing.assert_allclose(
            generator.trainable_variables[0].numpy(), 0.5 * first + 0.5 * second, atol=1e-6
        )
    np.testing.assert_array_equal(kernel.numpy(), second)
    plain = WGANGP(get_preset("tiny"), seed=0)
    plain.compile()
    with plain.averaged() as generator:
        assert generator is plain.generator


def test_a_bfloat16_run_records_its_precision_and_exports_a_float32_generator(tmp_path):
    """The precision is the run's: in config.json, kept on resume, in the card's reproduce
    command. The export holds float32 weights that load into the float32 generator the app
    uses, and that generator reproduces the bfloat16 run's own samples up to its rounding."""
    from bachgan.card import reproduce_command, training_summary
    from bachgan.train import Run

    run = tmp_path / "bf16"
    status = train(run, preset="tiny", iterations=5, precision="mixed_bfloat16", **QUIET)
    assert status["state"] == "finished"
    assert read_json(run / "config.json")["precision"] == "mixed_bfloat16"
    resumed = Run(run, resume=True, iterations=6, **QUIET)
    assert resumed.fit()["iteration"] == 6
    assert resumed.gan.critic.layers[-4].compute_dtype == "bfloat16", "resumed in bfloat16"
    command = reproduce_command(training_summary(run, 6), "runs/bf16")
    assert command.endswith("--precision mixed_bfloat16")
    generator, p, _ = load_generator(run / "exports" / "export-000005")
    assert {layer.compute_dtype for layer in generator.layers} == {"float32"}
    sample = np.load(run / "samples" / "iter-000005.npz")  # made by the bfloat16 generator
    rolls = np.stack(
        [to_roll(Voices.from_pitches(w), p.low, p.n_pitches) for w in sample["melody"]]
    )
    cond = np.take_along_axis(rolls, sample["voice"][:, None, None, None], axis=-1)
    z = np.asarray(tf.random.stateless_truncated_normal((len(cond), *p.z_shape), seed=[7, 7]))
    again = np.asarray(generator([cond, z, sample["voice"]], training=False))
    np.testing.assert_allclose(again, sample["roll"].astype(np.float32), atol=0.1)  # 1.6 at 10
    with pytest.raises(ValueError, match="precision 'float16'"):
        train(tmp_path / "f16", preset="tiny", iterations=1, precision="float16", **QUIET)


def test_a_resume_on_a_differently_split_corpus_says_so_and_remembers_the_earlier_split(
    tmp_path,
):
    """A newer BachGAN may split the corpus differently (one id per chorale since cache
    format 2). A resume then trains on today's split, says so, and keeps the earlier sessions'
    training chorales, which the model card's held-out check reads."""
    run = tmp_path / "r"
    train(run, preset="tiny", iterations=2, **QUIET)
    config = read_json(run / "config.json")
    today = config["split"]["train"]
    config["split"]["train"] = today[1:] + ["bwv281.krn"]  # as an older version recorded it
    (run / "config.json").write_text(json.dumps(config))
    said = []
    train(run, resume=True, iterations=3, log=said.append)
    assert any(
        "split differently" in line and "2 training chorales differ" in line for line in said
    )
    config = read_json(run / "config.json")
    assert config["split"]["train"] == today
    assert "bwv281.krn" in config["train_earlier"] and today[0] not in config["train_earlier"]


def test_preset_overrides_reach_a_new_runs_config_and_never_a_resumed_one(tmp_path):
    from bachgan.train import Run

    run = Run(tmp_path / "r", preset="tiny", learning_rate=1e-4, condition_voices=(3,))
    assert run.config["preset"]["learning_rate"] == 1e-4
    assert run.config["preset"]["condition_voices"] == (3,)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps(run.config))
    with pytest.raises(ValueError, match="keeps its settings"):
        Run(tmp_path / "r", resume=True, learning_rate=1e-3)


def test_a_resume_refuses_settings_that_differ_from_the_runs_and_accepts_equal_ones(tmp_path):
    """--preset, --seed, --data, --jit and --strategy were silently ignored on resume."""
    from bachgan.train import Run

    config = json.loads(
        json.dumps(
            Run(
                tmp_path / "r", preset="tiny", seed=5, precision="float32", condition_voices=(3,)
            ).config
        )
    )
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    same = dict(preset="tiny", seed=5, strategy="default", data="music21", jit=False)
    assert Run(tmp_path / "r", resume=True, condition_voices=(3,), **same).config == config
    for key, value, said in [
        ("preset", "cpu", "--preset cpu (the run's: tiny)"),
        ("seed", 0, "--seed 0 (the run's: 5)"),
        ("data", "jsb.json", "--data jsb.json (the run's: music21)"),
        ("jit", True, "--jit (the run's: --no-jit)"),
        ("precision", "mixed_bfloat16", "--precision mixed_bfloat16 (the run's: float32)"),
        ("strategy", "mirrored", "--strategy mirrored (the run's: default)"),
        ("condition_voices", (0, 3), "--condition-voices soprano,bass (the run's: bass)"),
    ]:
        with pytest.raises(ValueError, match="keeps its settings") as err:
            Run(tmp_path / "r", resume=True, **{**same, key: value})
        assert said in str(err.value) and "\n" not in str(err.value)


def test_a_kill_between_the_last_checkpoint_and_its_export_is_repaired_by_resume(tmp_path):
    """SIGKILL after the final checkpoint, before the export: resume has nothing to train
    but must still write the export, or the 'finished' run has no usable model."""
    run = tmp_path / "run"
    code = f"""
import os, signal
import bachgan.export
from bachgan.train import train
bachgan.export.write_export = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
train({str(run)!r}, preset="tiny", iterations=5, seed=1, log=print)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), timeout=300)
    assert out.returncode == -signal.SIGKILL
    assert (run / "checkpoints" / "ckpt-000005").is_dir()
    assert not (run / "exports").exists() or not any((run / "exports").iterdir())
    status = train(run, resume=True, **QUIET)
    assert status["state"] == "finished" and status["iteration"] == 5
    assert load_generator(run)[2]["iteration"] == 5


def test_a_full_disk_at_the_last_export_is_resumable(tmp_path, monkeypatch):
    import errno

    import bachgan.export
    from bachgan.train import DiskFull

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(bachgan.export, "write_export", full)
        with pytest.raises(DiskFull, match="iteration 5 is intact"):
            train(run, preset="tiny", iterations=5, seed=1, **QUIET)
    status = train(run, resume=True, **QUIET)
    assert status["state"] == "finished" and status["iteration"] == 5
    assert load_generator(run)[2]["iteration"] == 5


def test_a_run_that_failed_before_its_first_iteration_can_start_afresh(tmp_path, monkeypatch):
    """A failure during start-up leaves config.json and status 'failed' but nothing trained:
    a new start with corrected settings takes the folder instead of 'already holds a run'."""
    from bachgan.train import Run

    def boom(seed):
        raise ValueError("no such seed")

    run = tmp_path / "r"
    with monkeypatch.context() as m:
        m.setattr(keras.utils, "set_random_seed", boom)
        with pytest.raises(ValueError, match="no such seed"):
            train(run, preset="tiny", iterations=2, seed=1, **QUIET)
    assert read_json(run / "status.json")["state"] == "failed"
    assert Run(run, preset="tiny", iterations=2, seed=4, **QUIET).config["seed"] == 4
    (run / "metrics.jsonl").write_text('{"iteration": 1}\n')  # once it has trained: refused
    with pytest.raises(ValueError, match="give 0 to"):  # a library caller's bad seed too
        train(tmp_path / "new", preset="tiny", seed=-1, **QUIET)
    assert not (tmp_path / "new").exists()
    with pytest.raises(FileExistsError, match="use --resume"):
        Run(run, preset="tiny", seed=4, **QUIET)
