"""The Train page through Streamlit's AppTest: empty and populated runs folders, links,
the training switch, and a real tiny run started, watched and stopped from the page; and
what it says about runs and presets (train_view)."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import train_view
from bachgan import cpu, devices, runs, train

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "2_Train.py")


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=90)


def fake_run(root: Path, name: str, state: str, **status) -> Path:
    """A run folder as the trainer leaves it: config, status, metrics, samples, log."""
    from bachgan.presets import PRESETS

    d = root / name
    (d / "samples").mkdir(parents=True)
    preset = PRESETS["tiny"]
    (d / "config.json").write_text(json.dumps({"preset": preset.to_dict(), "iterations": 10}))
    (d / "status.json").write_text(
        json.dumps({"state": state, "pid": None, "iteration": 10, "iterations": 10, **status})
    )
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, 11):
        row = {"iteration": i, "seconds": 0.1, "time": 100.0 + i}
        row |= {k: float(rng.normal()) for k in ("critic_loss", "generator_loss", "wasserstein")}
        row["gradient_penalty"] = float(rng.random())
        if i % 5 == 0:
            row |= {"music/chord_tone_rate": 0.5, "music/in_key_rate": 0.8}
        rows.append(row)
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for it in (5, 10):
        melody = np.full((8, 32, 4), -1, np.int16)
        melody[:, :, 0] = 67
        roll = rng.uniform(-1, 1, (8, 32, preset.n_pitches, 4)).astype(np.float16)
        buf = io.BytesIO()
        np.savez_compressed(buf, roll=roll, melody=melody, voice=np.zeros(8, int), low=28)
        (d / "samples" / f"iter-{it:06d}.npz").write_bytes(buf.getvalue())
    (d / "train.log").write_text("Epoch 9/10\nEpoch 10/10\nTraceback: ValueError: boom\n")
    return d


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def chart(at: AppTest, key: str) -> dict:
    """The figure (as plotly JSON) of the chart drawn with `key`."""
    for c in at.get("plotly_chart"):
        if c.proto.id.endswith(key):
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key!r}")


def test_empty_runs_folder(env):
    at = page().run()
    assert not at.exception
    assert "No training runs yet" in texts(at.info)
    assert at.button(key="train_start")


def test_a_public_server_without_runs_shows_how_the_shipped_model_learned(env, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/bachgan")
    at = page().run()
    assert not at.exception
    assert "your own computer" in texts(at.info) and "No training runs" not in texts(at.info)
    assert any("How the shipped model learned" in h.value for h in at.subheader)
    x = chart(at, "shipped_music")["data"][0]["x"]  # plotly's typed-array JSON
    iterations = np.frombuffer(base64.b64decode(x["bdata"]), x["dtype"]) if "bdata" in x else x
    assert iterations[0] == 50 and iterations[-1] >= 4000  # the shipped run, start to end


def test_too_many_iterations_are_refused_with_a_message(env):
    at = page().run()
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="train_iterations_tiny").set_value(1500).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert "iterations must be a whole number from 1 to 1000" in texts(at.error)
    assert not runs.list_runs()  # nothing started


def test_a_click_carrying_the_link_from_before_a_start_keeps_the_new_run(env):
    fake_run(env, "old", "finished")
    fake_run(env, "new", "running")
    at = page()
    at.query_params["run"] = "old"
    at.run()
    at.session_state["train_superseded_link"] = "old"  # as Start leaves it
    at.session_state["train_run_link"] = at.session_state["train_run"] = "new"
    at.run()  # the second click's rerun: the browser still says ?run=old
    assert at.selectbox(key="train_run").value == "new"


def test_populated_runs_folder(env):
    fake_run(env, "done", "finished")
    fake_run(env, "broken", "failed", error="ValueError: boom")
    at = page().run()
    assert not at.exception
    assert len(at.dataframe) == 1
    assert set(at.selectbox(key="train_run").options) == {"done", "broken"}
    at.selectbox(key="train_run").set_value("done").run()
    assert not at.exception
    assert at.query_params["run"] in ("done", ["done"])
    losses = chart(at, "train_losses")
    assert {t["type"] for t in losses["data"]} == {"scatter"}
    music = chart(at, "train_music")
    assert any(t.get("name") == "this run" for t in music["data"])
    chart(at, "train_sample_roll")
    assert len(at.get("audio")) == 1
    at.select_slider(key="train_sample_it_done").set_value(5).run()
    assert not at.exception and "Iteration 5" in json.dumps(chart(at, "train_sample_roll"))
    assert at.button(key="train_resume")  # a finished run can be trained longer
    until = at.number_input(key="train_resume_to_done")
    assert until.min == 11 and until.value == 20  # more than it has: twice, by default


def test_a_new_sample_does_not_replace_the_one_being_listened_to(env):
    """Issue 17, item 7: the slider followed each new sample, which swapped the player's
    sound and stopped and rewound it mid-listen. Now the sample shown stays (its player is
    sent again unchanged) and a button offers the newest."""
    d = fake_run(env, "live", "finished")
    samples = d / "samples"

    def new_sample(it: int) -> None:  # as the trainer saves one while the page is open
        (samples / f"iter-{it:06d}.npz").write_bytes((samples / "iter-000005.npz").read_bytes())

    def newest_button():
        return [b for b in at.button if b.key == "train_sample_newest_live"]

    at = page().run()
    slider = lambda: at.select_slider(key="train_sample_it_live")  # noqa: E731
    assert slider().value == 10 and not newest_button()  # the newest, at first
    player = at.get("audio")[0].proto.SerializeToString()
    new_sample(15)
    at.run()
    assert slider().value == 10 and "Iteration 10" in json.dumps(chart(at, "train_sample_roll"))
    assert at.get("audio")[0].proto.SerializeToString() == player  # the same sound, untouched
    assert "iteration 15" in newest_button()[0].label
    newest_button()[0].click().run()
    assert slider().value == 15 and "Iteration 15" in json.dumps(chart(at, "train_sample_roll"))
    assert not newest_button() and not at.exception
    slider().set_value(5).run()
    new_sample(20)
    at.run()
    assert slider().value == 5 and "iteration 20" in newest_button()[0].label


def test_training_is_told_in_words_with_the_raw_log_behind_an_expander(env):
    """Issue 17, item 3: what the critic and the generator do, whether it is getting
    better; the plain chart titles; the Keras log only in an expander."""
    fake_run(env, "done", "finished")
    at = page().run()
    words = texts(at.markdown)
    assert "the **critic** listens to excerpts of Bach's chorales" in words
    assert "Too early to say" in words  # ten iterations only
    assert "musical checks are within Bach-like targets" in words
    titles = [a["text"] for a in chart(at, "train_losses")["layout"]["annotations"]]
    assert "Gap: Bach vs generator (Wasserstein)" in titles and "Critic loss" not in titles
    music = [a["text"] for a in chart(at, "train_music")["layout"]["annotations"]]
    assert "Notes in the key" in music and not any("Krumhansl" in t for t in music)
    log = next(e for e in at.expander if "raw log" in e.label)
    assert "Epoch 10/10" in texts(log.code)


def test_the_gap_trend_says_shrinking_growing_or_steady():
    rows = lambda gaps: [{"iteration": 10 * i, "wasserstein": g} for i, g in enumerate(gaps)]  # noqa: E731
    falling = train_view.gap_trend(rows(np.linspace(8, 4, 100)))
    assert "has shrunk by" in falling and "getting closer to Bach" in falling
    assert "over the last 390 iterations" in falling.lower()
    assert "has grown by" in train_view.gap_trend(rows(np.linspace(4, 8, 100)))
    assert "held steady" in train_view.gap_trend(rows(np.full(100, 6.0)))
    assert "Too early" in train_view.gap_trend(rows([6.0] * 5))


def test_music_progress_counts_the_checks_within_target():
    rows = [
        {"iteration": 50, "music/chord_tone_rate": 0.5, "music/voice_crossing": 0.2},
        {"iteration": 60, "wasserstein": 1.0},
        {"iteration": 100, "music/chord_tone_rate": 0.9, "music/voice_crossing": 0.2},
    ]
    text = train_view.music_progress(rows)
    assert text == (
        "At iteration 100, 1 of 2 musical checks are within Bach-like targets (0 at "
        "iteration 50); still off: voices crossing each other."
    ), text
    assert train_view.music_progress(rows[1:2]) is None


def test_link_selects_a_failed_run_and_shows_why(env):
    fake_run(env, "done", "finished")
    fake_run(env, "broken", "failed", error="ValueError: boom")
    at = page()
    at.query_params["run"] = "broken"
    at.run()
    assert not at.exception
    assert at.selectbox(key="train_run").value == "broken"
    assert "ValueError: boom" in texts(at.error)
    assert "Traceback" in texts(at.code)


@pytest.mark.parametrize("bad", ["../etc", "/etc", "a/b", "nope", ".."])
def test_bad_link_is_refused_and_ignored(env, bad):
    fake_run(env, "done", "finished")
    at = page()
    at.query_params["run"] = bad
    at.run()
    assert not at.exception
    assert "cannot be shown" in texts(at.error)
    assert at.selectbox(key="train_run").value == "done"


@pytest.mark.parametrize(
    "damage",
    ["config.json gone", "sample not a zip", "sample truncated", "negative iterations"],
)
def test_a_damaged_run_says_so_and_the_page_keeps_working(env, damage):
    d = fake_run(env, "hurt", "stopped")
    sample = d / "samples" / "iter-000010.npz"
    if damage == "config.json gone":
        (d / "config.json").unlink()
    elif damage == "sample not a zip":
        sample.write_bytes(b"not a zip")
    elif damage == "sample truncated":
        sample.write_bytes(sample.read_bytes()[:200])
    else:
        status = json.loads((d / "status.json").read_text()) | {"iterations": -5}
        (d / "status.json").write_text(json.dumps(status))
    at = page().run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.get("plotly_chart"), "the curves still show"
    if damage != "negative iterations":
        assert "cannot be shown" in texts(at.warning)


def test_a_run_deleted_while_shown_says_so(env):
    import shutil

    d = fake_run(env, "gone", "stopped")
    at = page().run()
    shutil.rmtree(d)
    at.selectbox(key="train_sample_k_gone").select(1).run()  # reruns the page and its panels
    assert not at.exception, [e.message for e in at.exception]


@pytest.mark.parametrize(
    "var, value", [("BACHGAN_DISABLE_TRAINING", "1"), ("SPACE_ID", "someone/bachgan")]
)
def test_disabled_training_shows_why_and_offers_no_controls(env, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    fake_run(env, "done", "stopped")
    live = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "bachgan", "train", "--run-dir"]
        + [str(env / "live")]
    )
    try:
        fake_run(env, "live", "running", pid=live.pid)
        for name in ("done", "live"):
            at = page()
            at.query_params["run"] = name
            at.run()
            assert not at.exception
            assert "Training is switched off" in texts(at.info)
            keys = {b.key for b in at.button}
            assert not keys & {"train_start", "train_stop", "train_resume"}
        assert live.poll() is None
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize("native", [True, False])
def test_faster_arithmetic_is_offered_only_where_the_cpu_has_it(env, monkeypatch, native):
    monkeypatch.setattr(cpu, "native_bfloat16", lambda: native)
    at = page().run()
    assert not at.exception
    assert ("train_bf16" in {c.key for c in at.checkbox}) is native
    if native:  # ticked at first, as `train` would choose on this CPU
        assert at.checkbox(key="train_bf16").value is True


def test_a_gpu_gets_the_seed_preset_suggested(env, monkeypatch):
    """Where TensorFlow lists a GPU the form says so and starts at the seed preset; the
    arithmetic is left to `train` (no bfloat16 box). No GPU here: the list TensorFlow would
    give stands in for one."""
    monkeypatch.setattr(devices, "gpus", lambda: (devices.Gpu("NVIDIA A100-SXM4-40GB", (8, 0)),))
    monkeypatch.setattr(cpu, "native_bfloat16", lambda: True)
    at = page().run()
    assert not at.exception
    said = texts(at.info)
    assert "has a GPU (NVIDIA A100-SXM4-40GB)" in said and "(seed) is suggested" in said
    assert "bfloat16, which it computes natively" in said
    assert at.selectbox(key="train_preset").value == "seed"
    assert "train_bf16" not in {c.key for c in at.checkbox}


def test_without_a_gpu_the_form_starts_at_todays_preset(env, monkeypatch):
    monkeypatch.setattr(devices, "gpus", lambda: ())
    at = page().run()
    assert not at.exception
    assert at.selectbox(key="train_preset").value == "cpu"
    assert "GPU" not in texts(at.info)


@pytest.mark.parametrize(
    "device, said",
    [
        ("CPU (2 cores, AMD EPYC 9R14)", "Trained on **CPU (2 cores, AMD EPYC 9R14)**"),
        ("GPU: NVIDIA L4", "Trained on **GPU: NVIDIA L4**"),
        ("GPU x2", "Trained on **2 GPUs**"),  # as runs from before said it
    ],
)
def test_a_run_says_which_device_it_trained_on(env, device, said):
    fake_run(env, "r", "finished", device=device)
    at = page()
    at.query_params["run"] = "r"
    at.run()
    assert not at.exception
    assert said in texts(at.markdown)


def test_several_gpus_are_named_and_mirrored():
    a100 = devices.Gpu("NVIDIA A100-SXM4-40GB", (8, 0))
    said = train_view.gpu_suggestion((a100, a100))
    assert "has 2 GPUs (NVIDIA A100-SXM4-40GB)" in said and "(mirrored)" in said
    older = train_view.gpu_suggestion((devices.Gpu("Tesla T4", (7, 5)),))
    assert "Arithmetic: float32" in older and "mirrored" not in older


def test_a_running_run_says_training_on():
    assert train_view.device_words("GPU x1", True) == "Training on **GPU**"
    assert train_view.device_words("", True) == "Training on **…**"  # before its config


def test_a_bfloat16_run_says_so(env):
    for name, precision in (("plain", None), ("fast", "mixed_bfloat16")):
        d = fake_run(env, name, "finished")
        config = json.loads((d / "config.json").read_text()) | {"precision": precision}
        (d / "config.json").write_text(json.dumps(config))
        at = page()
        at.query_params["run"] = name
        at.run()
        assert not at.exception
        assert ("**faster arithmetic** (bfloat16)" in texts(at.markdown)) is (precision is not None)


def test_a_just_started_run_without_its_config_yet_promises_no_interval(env):
    """In a run's first seconds its process has not written config.json: the page said the
    first samples come 'after 50 iterations', which is wrong for tiny (every 5)."""
    d = fake_run(env, "young", "running")
    (d / "config.json").unlink()
    for f in (d / "samples").iterdir():
        f.unlink()
    at = page()
    at.query_params["run"] = "young"
    at.run()
    assert not at.exception
    said = [i.value for i in at.info]
    assert any("saved as training goes" in s for s in said), said
    assert not any("after 50 iterations" in s for s in said)


def test_the_runs_table_fits_the_page(env):
    """At 1280 px the table ran off the page and cut the 'model saved' column: 'updated' moved
    to the run's own panel, and the short columns are narrow."""
    fake_run(env, "one", "finished", updated="2026-11-26T12:17:50+0000")
    at = page()
    at.query_params["run"] = "one"
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert "updated" not in table.columns and "model saved" in table.columns
    assert "last update 26 Nov 2026 12:17 UTC" in texts(at.markdown)


@pytest.mark.slow
def test_page_starts_a_bfloat16_run(env, monkeypatch):
    monkeypatch.setattr(cpu, "native_bfloat16", lambda: True)
    at = page().run()
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="train_iterations_tiny").set_value(2)
    at.checkbox(key="train_bf16").check()
    at.text_input(key="train_name").set_value("fast")
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    info = runs.wait("fast", timeout=180)
    assert info.state == "finished", runs.log_tail("fast")
    assert runs.read_config("fast")["precision"] == "mixed_bfloat16"
    at.run()
    assert "**faster arithmetic** (bfloat16)" in texts(at.markdown)


@pytest.mark.slow
def test_page_starts_watches_and_stops_a_run(env):
    at = page().run()
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="train_iterations_tiny").set_value(1000)
    at.text_input(key="train_name").set_value("from-page")
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="train_run").value == "from-page"
    assert runs.run_info("from-page").running
    at.run()
    assert at.button(key="train_start").disabled  # one run at a time

    deadline = time.monotonic() + 180
    while runs.run_info("from-page").iteration < 2:
        assert runs.run_info("from-page").running, runs.log_tail("from-page")
        assert time.monotonic() < deadline, "no progress"
        time.sleep(1)
    at.run()
    assert not at.exception
    assert any(t.get("x") for t in chart(at, "train_losses")["data"])

    at.button(key="train_stop").click().run()
    assert not at.exception
    assert "Stopping" in texts(at.caption)
    info = runs.wait("from-page", timeout=120)
    assert info.state == "stopped" and info.has_export
    at.run()
    assert not at.exception and at.button(key="train_resume")


# ---------------------------------------------------------------- what the page says


def test_every_preset_has_a_label_and_help():
    from bachgan.presets import PRESETS

    assert set(train_view.PRESET_HELP) == set(train_view.PRESET_LABEL) == set(PRESETS)


def test_bfloat16_help_gives_the_benchmarked_speed_ups(tmp_path, monkeypatch):
    """The checkbox's help quotes `bench` results, never a typed-in figure."""
    (tmp_path / "benchmarks").mkdir()
    monkeypatch.setattr(runs, "PROJECT_ROOT", tmp_path)
    assert "Measured" not in train_view.bfloat16_help()
    result = {"train_preset": "mid", "train_iteration_s": 1.0, "train_iteration_bf16_s": 0.7}
    result["machine"] = {"cores": 2}
    (tmp_path / "benchmarks" / "mid.json").write_text(json.dumps(result))
    assert "Measured on the project's 2-core CPU: 1.4x as fast at mid." in (
        train_view.bfloat16_help()
    )


def test_preset_help_gives_the_benchmarked_speed():
    seed = json.loads((runs.PROJECT_ROOT / "benchmarks" / "seed.json").read_text())
    assert f"took {seed['train_iteration_s']:.2g} s;" in train_view.preset_help("seed")
    assert "benchmarks/" not in train_view.preset_help("seed")  # no file names for people
    assert "took" not in train_view.preset_help("tiny")  # never benchmarked: no figure


def test_runs_table_shows_times_and_progress_for_people():
    """status.json keeps ISO times (a contract); the table shows them readably, and leaves
    anything it cannot parse as written."""
    readable = train_view.readable_time
    assert readable("2026-11-26T12:17:50+0000") == "26 Nov 2026 12:17 UTC"
    assert readable("2026-11-26T12:17:50+0100") == "26 Nov 2026 12:17 UTC+01:00"
    assert readable("yesterday") == "yesterday"
    assert readable("") == ""
    info = runs.RunInfo(
        "a", "stopped", "stopped", iteration=4041, iterations=20000, started=train.now()
    )
    row = train_view.run_row(info)
    assert row["progress"] == "4,041 / 20,000"
    assert row["started"] == readable(info.started) != info.started


def test_durations_read_as_seconds_minutes_or_hours():
    duration = train_view.format_seconds
    assert duration(None) == duration(float("nan")) == ""
    assert (duration(42.4), duration(185), duration(7620)) == ("42 s", "3 min 05 s", "2 h 07 min")


# ---------------------------------------------------------------- the figures


def test_curves_figures():
    from bachgan import curves

    assert curves.ema([1.0, 1.0, 1.0], 0.9).tolist() == [1.0, 1.0, 1.0]  # debiased
    assert curves.ema([0.0, 10.0], 0.0).tolist() == [0.0, 10.0]
    assert curves.loss_figure([]).layout.annotations  # "no iterations yet"
    rows = [
        {"iteration": i, "critic_loss": -i, "generator_loss": i, "wasserstein": 2.0 * i}
        | ({"music/chord_tone_rate": 0.5, "music/voice_crossing": 0.1} if i % 50 == 0 else {})
        for i in range(1, 5001)
    ]
    fig = curves.loss_figure(rows, smoothing=0.9)
    assert {t.name for t in fig.data} >= {
        "Critic loss",
        "Critic loss (raw)",
        "Wasserstein estimate",
    }
    assert max(len(t.x) for t in fig.data) <= curves.MAX_POINTS + 1  # thinned for the browser
    ref = {"chord_tone_rate": 0.88, "voice_crossing": 0.02}
    music = curves.music_figure(rows, ref)
    dashed = [s for s in music.layout.shapes if s.type == "line" and s.line.dash == "dash"]
    bands = [s for s in music.layout.shapes if s.type == "rect"]
    assert sorted(s.y0 for s in dashed) == [0.02, 0.88]
    assert {(s.y0, round(s.y1, 2)) for s in bands} >= {(0.8, 1.01), (0.0, 0.05)}
    assert "Bach (held-out chorales)" in {t.name for t in music.data}
    no_ref = curves.music_figure(rows, None)
    assert "Bach (held-out chorales)" not in {t.name for t in no_ref.data}
    assert curves.music_figure(rows[:10], ref).layout.annotations  # nothing measured yet


def test_samples_of_a_run_made_again_under_the_same_name_are_shown_fresh(env):
    import os

    d = fake_run(env, "again", "finished")
    at = page().run()
    assert "Soprano G4" in json.dumps(chart(at, "train_sample_roll"))  # fake_run's melody
    path = d / "samples" / "iter-000010.npz"  # the run is made again: new samples
    with np.load(path) as z:
        parts = {k: z[k] for k in z.files}
    parts["melody"][:, :, 0] = 72
    buf = io.BytesIO()
    np.savez_compressed(buf, **parts)
    path.write_bytes(buf.getvalue())
    os.utime(path, (path.stat().st_mtime + 60,) * 2)
    fresh = page().run()  # another visitor, same server process (same cache)
    shown = json.dumps(chart(fresh, "train_sample_roll"))
    assert "Soprano C5" in shown and "Soprano G4" not in shown and not fresh.exception


def test_choices_survive_a_visit_to_another_page(env):
    fake_run(env, "older", "finished")
    fake_run(env, "newer", "finished")
    at = AppTest.from_file(str(Path(PAGE).parent.parent / "streamlit_app.py"), default_timeout=90)
    at.run().switch_page("pages/2_Train.py").run()
    at.selectbox(key="train_run").set_value("older").run()
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.text_input(key="train_name").input("my-run").run()
    at.switch_page("pages/1_Harmonize.py").run()
    at.switch_page("pages/2_Train.py").run()
    assert not at.exception
    assert at.selectbox(key="train_run").value == "older"
    assert at.selectbox(key="train_preset").value == "tiny"
    assert at.text_input(key="train_name").value == "my-run"
