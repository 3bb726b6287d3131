"""bachgan.runs: path safety, request validation, the training switch, run states, the lock,
and real tiny runs started, stopped and resumed through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bachgan import runs, train
from bachgan.sampling import SHIPPED_DIR


@pytest.fixture
def sleeper():
    """A live process that is not a bachgan trainer (stands for a reused pid)."""
    procs = []

    def make(*args):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args])
        procs.append(p)
        return p

    yield make
    for p in procs:
        p.kill()
        p.wait()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def make_run(root: Path, name: str, status: dict | None = None, rows=(), config=True) -> Path:
    d = root / name
    d.mkdir()
    if config:
        (d / "config.json").write_text(json.dumps({"preset": {"name": "tiny"}, "iterations": 10}))
    if status is not None:
        (d / "status.json").write_text(json.dumps(status))
    if rows:
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "name",
    ["..", "../x", "/etc", "a/b", "", ".", ".hidden", "a b", "x" * 65, "a\\b", "r\0", None, 5],
)
def test_resolve_run_rejects_bad_names(env, name):
    with pytest.raises(runs.RunNameError):
        runs.resolve_run(name)
    with pytest.raises(runs.RunNameError):
        runs.resolve_run(name, must_exist=False)


def test_resolve_run_rejects_symlinks_pointing_outside(env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (env / "evil").symlink_to(outside)
    (env / "etc").symlink_to("/etc")
    for name in ("evil", "etc"):
        with pytest.raises(runs.RunNameError, match="outside"):
            runs.resolve_run(name)
    assert runs.list_runs() == []


def test_resolve_run_accepts_valid_names(env):
    make_run(env, "cpu-a.1_X")
    assert runs.resolve_run("cpu-a.1_X") == env.resolve() / "cpu-a.1_X"
    assert runs.resolve_run("new-run", must_exist=False).parent == env.resolve()
    with pytest.raises(runs.RunNameError, match="no run called"):
        runs.resolve_run("new-run")


def test_resolve_model(env):
    from bachgan.sampling import default_checkpoint

    assert runs.resolve_model("shipped") == Path(default_checkpoint())
    d = make_run(env, "half", status={"state": "stopped", "iteration": 10})
    with pytest.raises(runs.RunNameError, match="no saved model"):
        runs.resolve_model("half")
    export = d / "exports" / "export-000010"
    export.mkdir(parents=True)
    (export / "generator.weights.h5").write_bytes(b"")
    (export / "model.json").write_text("{}")
    assert runs.resolve_model("half") == d
    assert runs.model_choices() == ["shipped", "half"]
    (d / "status.json").write_text(json.dumps({"state": "failed", "iteration": 10}))
    assert runs.model_choices() == ["shipped"], "a failed run is not offered"
    for bad in ("../checkpoints", "/work", "..", f"checkpoints/{SHIPPED_DIR.name}"):
        with pytest.raises(runs.RunNameError):
            runs.resolve_model(bad)


# ---------------------------------------------------------------- requests


def test_every_preset_has_bounds():
    from bachgan.presets import PRESETS

    assert set(runs.MAX_ITERATIONS) == set(PRESETS)


def test_step_seconds_reads_the_benchmarks(tmp_path, monkeypatch):
    """The seconds `bench` saved, per precision; none for a preset never benchmarked."""
    from bachgan.presets import PRECISIONS

    (tmp_path / "benchmarks").mkdir()
    monkeypatch.setattr(runs, "PROJECT_ROOT", tmp_path)
    result = {"train_preset": "mid", "train_iteration_s": 1.0, "train_iteration_bf16_s": 0.7}
    (tmp_path / "benchmarks" / "mid.json").write_text(json.dumps(result))
    assert runs.step_seconds(runs.benchmark("mid")) == 1.0
    assert runs.step_seconds(runs.benchmark("mid"), "mixed_bfloat16") == 0.7
    assert runs.step_seconds(runs.benchmark("tiny")) is None
    assert set(runs.BENCH_KEYS) == set(PRECISIONS)


@pytest.mark.parametrize(
    "kw",
    [
        {"preset": "huge"},
        {"iterations": 0},
        {"iterations": -1},
        {"iterations": 20001},
        {"preset": "tiny", "iterations": 1001},
        {"iterations": 1.5},
        {"iterations": "10"},
        {"iterations": True},
        {"seed": -1},
        {"seed": 2**31},
        {"seed": "7; rm -rf /"},
        {"condition_voices": ()},
        {"condition_voices": ("soprano", "lead")},
        {"name": "../x"},
        {"name": "a b"},
        {"precision": "bfloat16"},
        {"precision": ""},  # None is valid: the device's choice
    ],
)
def test_request_validation_rejects(env, kw):
    with pytest.raises(runs.TrainRequestError):
        runs.TrainRequest(**{"preset": "tiny", "iterations": 6, **kw}).validate()


def test_request_validation_lists_every_problem(env):
    with pytest.raises(runs.TrainRequestError) as err:
        runs.TrainRequest("huge", 0, -1, ("lead",), "../x", "float16").validate()
    assert len(err.value.problems) == 6


def test_valid_request_and_its_arguments(env):
    req = runs.TrainRequest("tiny", 6, 2**31 - 1, ("bass", "soprano", "bass")).validate()
    assert req.condition_voices == ("soprano", "bass")  # SATB order, no repeats
    assert req.name.startswith("tiny-")
    assert req.args() == [
        "--preset",
        "tiny",
        "--iterations",
        "6",
        "--seed",
        str(2**31 - 1),
        "--condition-voices",
        "soprano,bass",
    ]
    assert "--precision" not in runs.TrainRequest("tiny", 6).validate().args()  # the device's
    plain = runs.TrainRequest("tiny", 6, precision="float32").validate()
    assert plain.args()[-2:] == ["--precision", "float32"]  # a choice made on the page is kept
    fast = runs.TrainRequest("tiny", 6, precision="mixed_bfloat16").validate()
    assert fast.args()[-2:] == ["--precision", "mixed_bfloat16"]
    assert runs.TrainRequest("cpu", 20000, 0, name="mine").validate().name == "mine"
    make_run(env, "mine")
    with pytest.raises(runs.TrainRequestError, match="already exists"):
        runs.TrainRequest("cpu", 10, name="mine").validate()


CPUINFO = (
    "processor\t: {n}\nmodel name\t: Some CPU\ncpu MHz\t\t: 2596.1\nflags\t\t: fpu avx2 {extra}\n\n"
)


@pytest.mark.parametrize(
    "extra, native",
    [("avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512f", False)],
)
def test_native_bfloat16_reads_the_cpu_flags(extra, native):
    from bachgan import cpu

    info = cpu.parse(CPUINFO.format(n=0, extra=extra) + CPUINFO.format(n=1, extra=extra))
    assert info["name"] == "Some CPU" and info["mhz"] == 2596.1
    assert cpu.native_bfloat16(info) is native


def test_native_bfloat16_without_flags_is_false():
    from bachgan import cpu

    assert cpu.native_bfloat16(cpu.parse("")) is False
    assert cpu.native_bfloat16(cpu.parse("processor\t: 0\nFeatures\t: fp asimd bf16\n")) is False


def test_a_run_shows_its_precision_and_a_resume_does_not_pass_it(env, monkeypatch):
    old = make_run(env, "old", {"state": "stopped", "pid": None, "iteration": 10})
    assert runs.run_info("old").precision == "float32"  # no key: runs from before it existed
    config = json.loads((old / "config.json").read_text()) | {"precision": "mixed_bfloat16"}
    (old / "config.json").write_text(json.dumps(config))
    assert runs.run_info("old").precision == "mixed_bfloat16"
    spawned = []
    monkeypatch.setattr(runs, "_spawn", lambda run_dir, extra, fields: spawned.append(extra))
    runs.resume("old", iterations=20)
    assert spawned == [["--resume", "--iterations", "20", "--no-budget"]]


# ---------------------------------------------------------------- the switch


@pytest.mark.parametrize(
    "environ, enabled, says",
    [
        ({}, True, ""),
        ({"BACHGAN_DISABLE_TRAINING": "1"}, False, "BACHGAN_DISABLE_TRAINING"),
        ({"BACHGAN_DISABLE_TRAINING": "true"}, False, "scripts/app.sh"),
        ({"BACHGAN_DISABLE_TRAINING": "0"}, True, ""),
        ({"SPACE_ID": "someone/bachgan"}, False, "duplicate this Space"),
        ({"SPACE_ID": "someone/bachgan"}, False, "BACHGAN_ENABLE_TRAINING=1"),
        ({"SPACE_ID": "someone/bachgan", "BACHGAN_ENABLE_TRAINING": "1"}, True, ""),
        ({"BACHGAN_DISABLE_TRAINING": "1", "BACHGAN_ENABLE_TRAINING": "1"}, False, "switched off"),
    ],
)
def test_training_enabled(env, monkeypatch, environ, enabled, says):
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    ok, reason = runs.training_enabled()
    assert ok is enabled
    assert says in reason


def test_disabled_training_refuses_everything(env, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/bachgan")
    make_run(env, "old", {"state": "stopped", "pid": None})
    with pytest.raises(runs.TrainingDisabled, match="public server"):
        runs.start(runs.TrainRequest("tiny", 6, name="x"))
    with pytest.raises(runs.TrainingDisabled):
        runs.resume("old")
    with pytest.raises(runs.TrainingDisabled):
        runs.stop("old")
    assert sorted(p.name for p in env.iterdir()) == ["old"]


# ---------------------------------------------------------------- states and files


def test_running_status_with_dead_or_foreign_pid_is_interrupted(env, sleeper):
    rows = [{"iteration": i, "seconds": 0.5, "time": 100 + i} for i in range(1, 11)]
    make_run(env, "dead", {"state": "running", "pid": dead_pid(), "iteration": 10}, rows)
    foreign = sleeper()
    make_run(env, "reused", {"state": "running", "pid": foreign.pid, "iteration": 1})
    live = sleeper("bachgan", "train", "--run-dir", str(env / "live"))
    live_rows = [{"iteration": i, "seconds": 0.4, "time": 100 + 2 * i} for i in range(1, 6)]
    status = {"state": "running", "pid": live.pid, "iteration": 5, "iterations": 105}
    make_run(env, "live", status, live_rows)
    states = {r.name: r.effective_state for r in runs.list_runs()}
    assert states == {"dead": "interrupted", "reused": "interrupted", "live": "running"}
    assert runs.run_info("dead").state == "running"  # the file is only read, never rewritten
    info = runs.run_info("live")
    assert info.eta_seconds == pytest.approx(200.0)  # 2 s per iteration x 100 left
    assert "live" in runs.busy_reason()
    config = json.loads((env / "live" / "config.json").read_text())
    (env / "live" / "config.json").write_text(json.dumps(config | {"minutes": 0.1}))
    info = runs.run_info("live")  # a 6 s budget, 2 s of it trained: it stops before the end
    assert info.budget_minutes == 0.1 and info.eta_seconds == pytest.approx(4.0)


def test_stale_running_status_does_not_block_a_start(env):
    make_run(env, "dead", {"state": "running", "pid": dead_pid(), "iteration": 3})
    assert runs.active_run() is None
    assert runs.busy_reason() is None


def test_torn_metrics_line_is_tolerated(env):
    d = make_run(env, "torn", {"state": "running", "pid": dead_pid(), "iteration": 2})
    good = [{"iteration": 1, "critic_loss": 1.0}, {"iteration": 2, "critic_loss": 0.5}]
    with open(d / "metrics.jsonl", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in good) + '{"iteration": 3, "crit')
    assert [r["iteration"] for r in runs.read_metrics("torn")] == [1, 2]
    assert runs.list_runs()[0].iteration == 2
    with open(d / "metrics.jsonl", "a") as f:  # the line is completed, another one follows
        f.write('ic_loss": 0.2}\n{"iteration": 4}\nnot json\n')
    assert [r["iteration"] for r in runs.read_metrics("torn")] == [1, 2, 3, 4]
    rows = [{"iteration": 1}, {"iteration": 2}]  # trimmed on resume: a new file
    (d / "metrics.tmp").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "metrics.tmp").replace(d / "metrics.jsonl")
    assert [r["iteration"] for r in runs.read_metrics("torn")] == [1, 2]


def test_the_shipped_models_name_is_not_a_run_name(env):
    with pytest.raises(runs.TrainRequestError, match="shipped model"):
        runs.TrainRequest("tiny", 5, name=runs.SHIPPED).validate()


def test_a_run_made_again_under_its_name_shows_its_own_metrics(env):
    """ext4 often hands a new file its deleted predecessor's inode: rewritten in place here."""
    d = make_run(env, "again", {"state": "running", "pid": dead_pid(), "iteration": 3})
    path = d / "metrics.jsonl"
    old = [{"iteration": i, "time": 100.0 + i} for i in range(1, 4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    assert len(runs.read_metrics("again")) == 3
    inode = path.stat().st_ino
    new = [{"iteration": i, "time": 900.0 + i} for i in range(1, 6)]
    with open(path, "w") as f:  # same inode, new run, longer than the old file
        f.write("".join(json.dumps(r) + "\n" for r in new))
    assert path.stat().st_ino == inode
    assert runs.read_metrics("again") == new


def test_log_tail_and_samples(env):
    d = make_run(env, "r", {"state": "failed", "pid": None, "error": "ValueError: boom"})
    (d / "train.log").write_text("\n".join(f"line {i}" for i in range(100)) + "\n")
    assert runs.log_tail("r", 3) == "line 97\nline 98\nline 99"
    (d / "samples").mkdir()
    for f in ("iter-000010.npz", "iter-000005.npz", ".iter-000015.npz.x.tmp", "iter-000010.mid"):
        (d / "samples" / f).write_bytes(b"")
    assert runs.samples("r") == [5, 10]
    info = runs.run_info("r")
    assert (info.effective_state, info.error, info.resumable) == (
        "failed",
        "ValueError: boom",
        True,
    )


def test_seconds_per_iteration_ignores_compile_and_resume_gaps():
    rows = [{"iteration": 1, "seconds": 20.0, "time": 20.0}]
    rows += [{"iteration": i, "seconds": 0.4, "time": 20.0 + 0.5 * (i - 1)} for i in range(2, 20)]
    rows += [{"iteration": 20, "seconds": 0.4, "time": 5000.0}]  # resumed much later
    rows += [{"iteration": i, "seconds": 0.4, "time": 5000.0 + 0.5 * (i - 20)} for i in (21, 22)]
    assert runs.seconds_per_iteration(rows) == pytest.approx(0.5)


# ---------------------------------------------------------------- the lock and processes


def test_start_refused_while_the_lock_is_held(env):
    lock = train.acquire_lock()  # as a trainer started from a terminal would
    try:
        with pytest.raises(runs.TrainingBusy, match="Another training run"):
            runs.start(runs.TrainRequest("tiny", 6, name="second"))
    finally:
        lock.close()
    assert not (env / "second").exists()


def test_start_refused_while_a_run_is_live(env, sleeper):
    live = sleeper("bachgan", "train", "--run-dir", str(env / "live"))
    make_run(env, "live", {"state": "running", "pid": live.pid, "iteration": 1, "iterations": 9})
    with pytest.raises(runs.TrainingBusy, match="'live' is training"):
        runs.start(runs.TrainRequest("tiny", 6, name="second"))
    with pytest.raises(runs.RunStateError):
        runs.resume("live")


def test_stop_signals_only_its_own_trainer(env, sleeper):
    foreign = sleeper()
    make_run(env, "reused", {"state": "running", "pid": foreign.pid})
    other = sleeper("bachgan", "train", "--run-dir", str(env / "elsewhere"))
    make_run(env, "mismatch", {"state": "running", "pid": other.pid})
    for name in ("reused", "mismatch"):
        with pytest.raises(runs.RunStateError):
            runs.stop(name)
        assert not runs.stoppable(name)
    assert foreign.poll() is None and other.poll() is None  # neither was signalled


@pytest.mark.slow
def test_start_tiny_run_to_the_end(env):
    name = runs.start(runs.TrainRequest("tiny", 6, seed=1, condition_voices=("soprano", "bass")))
    pid = runs.read_status(name)["pid"]
    with pytest.raises(runs.TrainingBusy):  # a double click: the first run is already live
        runs.start(runs.TrainRequest("tiny", 6))
    info = runs.wait(name, timeout=180)
    assert info.state == "finished" and info.iteration == 6 and info.has_export
    deadline = time.monotonic() + 10  # reaped by the server: no zombie left behind
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), Path(f"/proc/{pid}/status").read_text()[:200]
    rows = runs.read_metrics(name)
    assert [r["iteration"] for r in rows] == list(range(1, 7))
    assert "music/chord_tone_rate" in rows[4]
    config = runs.read_config(name)
    assert config["preset"]["condition_voices"] == [0, 3] and config["seed"] == 1
    assert runs.samples(name) == [5]
    sample = runs.load_sample(name, 5)
    assert len(sample.pieces) == 8 and sample.pieces[0].n_voices == 4
    assert sample.midi[0][:4] == b"MThd" and set(sample.given) <= {0, 3}
    assert "bachgan" in runs.log_tail(name) and runs.resolve_model(name)


@pytest.mark.slow
def test_stop_then_resume(env):
    name = runs.start(runs.TrainRequest("tiny", 1000, name="long"))
    deadline = time.monotonic() + 180
    while runs.run_info(name).iteration < 2:
        assert runs.run_info(name).running, runs.log_tail(name)
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.5)
    runs.stop(name)
    info = runs.wait(name, timeout=120)
    assert info.state == "stopped" and info.has_export and info.resumable
    done = info.iteration
    runs.resume(name, iterations=done + 2)
    info = runs.wait(name, timeout=180)
    assert info.state == "finished" and info.iteration == done + 2
    assert [r["iteration"] for r in runs.read_metrics(name)] == list(range(1, done + 3))


def test_a_command_line_names_its_own_run_dir_only(tmp_path):
    run = tmp_path / "cpu-a"
    assert runs._mentions_dir(os.getpid(), ["--run-dir", str(run)], run)
    assert runs._mentions_dir(os.getpid(), ["-c", f"train('{run}')"], run)
    assert not runs._mentions_dir(os.getpid(), ["--run-dir", str(tmp_path / "cpu-a2")], run)
    assert not runs._mentions_dir(os.getpid(), ["--run-dir", f"{run}.old"], run)


def test_compare_runs_script_averages_each_runs_logged_metrics(tmp_path):
    """scripts/compare_runs.py (the README's float32 vs bfloat16 comparison): the mean and
    spread of each metric over the iterations both runs logged in the range."""
    import subprocess
    import sys

    from bachgan.metrics import TARGETS

    for name, chord, precision in (("a", [0.9, 0.8, 0.5], None), ("b", [0.7, 0.7, 0.1], "x")):
        run = tmp_path / name
        run.mkdir()
        config = {"preset": {"name": "mid"}, "seed": 0}
        if precision:
            config["precision"] = precision
        (run / "config.json").write_text(json.dumps(config))
        rows = [
            {"iteration": i, **{f"music/{k}": 0.0 for k in TARGETS}, "music/chord_tone_rate": c}
            for i, c in zip((50, 100, 150), chord)
        ] + [{"iteration": 151, "critic_loss": 1.0}]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    script = runs.PROJECT_ROOT / "scripts" / "compare_runs.py"
    args = [sys.executable, str(script), str(tmp_path / "a"), str(tmp_path / "b")]
    out = subprocess.run([*args, "--end", "100"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["iterations"] == [50, 100] and result["points"] == 2
    chord = result["metrics"]["chord_tone_rate"]
    assert chord[str(tmp_path / "a")] == {"mean": 0.85, "sd": 0.05}
    assert chord[str(tmp_path / "b")] == {"mean": 0.7, "sd": 0.0}
    assert result["runs"][str(tmp_path / "a")]["precision"] == "float32"
    empty = subprocess.run([*args, "--start", "200"], capture_output=True, text=True)
    assert empty.returncode == 2 and "no logged iteration" in empty.stderr
