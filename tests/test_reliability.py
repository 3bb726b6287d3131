"""Reliability: input limits, the batch CLI, training under faults, the lock, model-file safety.

Training tests start real `python -m bachgan train` processes with the session's isolated
BACHGAN_CACHE (see conftest.py), so they never touch the developer's runs or training lock.
They kill those processes with SIGKILL at random moments, fill the disk under them and start
a second run beside them.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from bachgan import runs_io
from bachgan.export import load_generator
from bachgan.melody import LIMITS, MelodyError, melody_from_midi, melody_from_text, midi_tracks
from bachgan.runs_io import complete_dirs, read_json, read_jsonl

ROOT = Path(__file__).resolve().parent.parent
NASTY = ROOT / "tests" / "data" / "nasty"
QUIET = {"log": lambda *a: None}


def cli_env(cache: Path) -> dict:
    return dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        BACHGAN_CACHE=str(cache),
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
    )


def train_cmd(run: Path, iterations: int, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "bachgan", "train", "--run-dir", str(run), "--preset", "tiny"]
    return cmd + ["--iterations", str(iterations), "--no-jit"] + (["--resume"] if resume else [])


def pid_alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def midi_bytes(mf: mido.MidiFile) -> bytes:
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def melody_file(n_bars=2, bpm=120.0) -> bytes:
    """A C5 whole note per bar at 96 ticks per beat."""
    track = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))]
    for _ in range(n_bars):
        track += [
            mido.Message("note_on", note=72, velocity=80),
            mido.Message("note_off", note=72, time=4 * 96),
        ]
    return midi_bytes(mido.MidiFile(ticks_per_beat=96, tracks=[mido.MidiTrack(track)]))


def chords_file(n_notes: int) -> bytes:
    """n_notes in 20-note chords, one chord per 16th (ticks_per_beat 4), within 64 bars."""
    track = []
    for start in range(0, n_notes, 20):
        size = min(20, n_notes - start)
        track += [mido.Message("note_on", note=40 + k, velocity=80) for k in range(size)]
        track += [mido.Message("note_off", note=40 + k, time=int(k == 0)) for k in range(size)]
    return midi_bytes(mido.MidiFile(ticks_per_beat=4, tracks=[mido.MidiTrack(track)]))


def events_file(n_events: int) -> bytes:
    """A melody padded with pitch-bend messages to exactly n_events messages in all."""
    base = [
        mido.Message("note_on", note=72, velocity=80),
        mido.Message("note_off", note=72, time=96),
    ]
    bends = [mido.Message("pitchwheel", pitch=i % 100) for i in range(n_events - len(base) - 1)]
    track = mido.MidiTrack(base + bends)  # mido adds end_of_track: n_events in all
    return midi_bytes(mido.MidiFile(ticks_per_beat=96, tracks=[track]))


# ---------------------------------------------------------------- limits (bachgan.melody.LIMITS)


def test_limits_are_the_documented_ones():
    assert set(LIMITS) >= {
        "max_upload_bytes",
        "max_bars",
        "max_notes",
        "min_tempo_bpm",
        "max_tempo_bpm",
        "max_text_chars",
        "max_midi_events",
    }


def _at_size(data: bytes, size: int) -> bytes:
    return data + bytes(size - len(data))  # trailing bytes after the last track are ignored


LIMIT_CASES = {
    # name: (input that sits exactly on the limit, input just beyond it, words in the error)
    "upload bytes": (
        lambda: _at_size(melody_file(), LIMITS["max_upload_bytes"]),
        lambda: _at_size(melody_file(), LIMITS["max_upload_bytes"] + 1),
        "too large",
    ),
    "notes": (
        lambda: chords_file(LIMITS["max_notes"]),
        lambda: chords_file(LIMITS["max_notes"] + 1),
        "too many notes",
    ),
    "MIDI events": (
        lambda: events_file(LIMITS["max_midi_events"]),
        lambda: events_file(LIMITS["max_midi_events"] + 1),
        "too much MIDI data",
    ),
    "bars (MIDI)": (
        lambda: melody_file(LIMITS["max_bars"]),
        lambda: melody_file(LIMITS["max_bars"] + 1),
        f"at most {LIMITS['max_bars']} bars",
    ),
    "lowest tempo": (
        lambda: melody_file(bpm=LIMITS["min_tempo_bpm"]),
        lambda: melody_file(bpm=LIMITS["min_tempo_bpm"] - 0.1),
        "tempo",
    ),
    "highest tempo": (
        lambda: melody_file(bpm=LIMITS["max_tempo_bpm"]),
        lambda: melody_file(bpm=LIMITS["max_tempo_bpm"] + 1),
        "tempo",
    ),
    "bars (text)": (
        lambda: "C4w " * LIMITS["max_bars"],
        lambda: "C4w " * (LIMITS["max_bars"] + 1),
        f"at most {LIMITS['max_bars']} bars",
    ),
    "text characters": (
        lambda: "C4w".ljust(LIMITS["max_text_chars"]),
        lambda: "C4w".ljust(LIMITS["max_text_chars"] + 1),
        "too long",
    ),
}


@pytest.mark.parametrize("name", LIMIT_CASES)
def test_limit_is_enforced_exactly_at_the_boundary(name):
    on_limit, beyond, words = LIMIT_CASES[name]

    def load(x):
        return melody_from_text(x) if isinstance(x, str) else melody_from_midi(x)

    melody, _ = load(on_limit())
    assert melody.steps >= 16
    with pytest.raises(MelodyError, match=words):
        load(beyond())


def test_cli_refuses_an_oversized_file_without_reading_it(tmp_path, monkeypatch):
    from bachgan.__main__ import read_melody

    big = tmp_path / "big.mid"
    with open(big, "wb") as f:
        f.truncate(LIMITS["max_upload_bytes"] + 1)  # sparse: no memory, no disk
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("file was read"))
    with pytest.raises(MelodyError, match="larger than"):
        read_melody(big, "soprano")


# ---------------------------------------------------------------- the batch CLI


def test_cli_batch_reports_each_bad_file_once_and_writes_the_rest(
    tmp_path, tiny_export, isolated_cache
):
    """Many melodies in one call: one stderr line per bad file (naming it), outputs for the
    others, exit status 2, never a traceback. Includes the whole nasty corpus."""
    inp, out = tmp_path / "in", tmp_path / "out"
    (inp / "sub").mkdir(parents=True)
    good_mid = melody_file(2)
    files = {
        "good.mid": good_mid,
        "good.txt": b"C5q D5 E5 F5 | G5h G5h",
        "sub/good.mid": good_mid,  # the same name from another folder
        "my.song.mid": good_mid,  # a dot in the name
        "truncated.mid": good_mid[: len(good_mid) // 2],
        "not_midi.mid": b"this is text, not MIDI",
        "empty.txt": b"",
        "typo.txt": b"C4q X9q",
        "too_long.txt": b"C4w " * 65,
        "outside_model_range.txt": b"C-1q G9q",
        "latin1.txt": "C4q D4q é".encode("latin-1"),
        "wrong_suffix.wav": b"RIFF",
    }
    for name, data in files.items():
        (inp / name).write_bytes(data)
    (inp / "folder.mid").mkdir()
    with open(inp / "huge.mid", "wb") as f:
        f.truncate(LIMITS["max_upload_bytes"] + 1)
    args = [str(inp / n) for n in files] + [str(inp / "folder.mid"), str(inp / "huge.mid")]
    args.append(str(inp / "missing.mid"))
    nasty = sorted(p for p in NASTY.iterdir() if p.suffix in (".mid", ".txt"))
    args += [str(p) for p in nasty]

    proc = subprocess.run(
        [sys.executable, "-m", "bachgan", "harmonize", *args, "--out-dir", str(out)]
        + ["--checkpoint", str(tiny_export), "--seed", "1"],
        cwd=ROOT,
        env=cli_env(isolated_cache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, proc.stderr[-3000:]
    err_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    out_lines = [line for line in proc.stdout.splitlines() if line.strip()]

    def lines_naming(lines, arg):
        return [line for line in lines if line.startswith(f"{arg}: ")]

    for arg in args:  # every input is answered exactly once, on stdout or on stderr
        answers = len(lines_naming(err_lines, arg)) + len(lines_naming(out_lines, arg))
        assert answers == 1, (arg, proc.stdout[-2000:], proc.stderr[-2000:])
    assert len(err_lines) + len(out_lines) == len(args), "no stray output lines"

    good = ("good.mid", "good.txt", "sub/good.mid", "my.song.mid")
    bad = [n for n in files if n not in good] + ["folder.mid", "huge.mid", "missing.mid"]
    expected = json.loads((NASTY / "expected.json").read_text())
    must_fail = [str(inp / n) for n in bad] + [str(p) for p in nasty if expected[p.name] != "ok"]
    for arg in must_fail:
        assert lines_naming(err_lines, arg), arg

    # The good ones are written, under distinct names: nothing is overwritten.
    for name, written in [
        ("good.mid", "good.mid"),
        ("good.txt", "good-2.mid"),
        ("sub/good.mid", "good-3.mid"),
        ("my.song.mid", "my.song.mid"),
    ]:
        line = lines_naming(out_lines, str(inp / name))
        assert line and str(out / written) in line[0], (name, line)
        pm = pretty_midi.PrettyMIDI(str(out / written))
        assert [i.name for i in pm.instruments] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert len(list(out.glob("*.mid"))) == len(out_lines)


def cli(*args) -> tuple[int, str]:
    """`python -m bachgan ARGS` in this process: (exit status, stderr)."""
    from bachgan.__main__ import main

    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", stderr)
        mp.setattr(sys, "stdout", io.StringIO())
        status = main([str(a) for a in args])
    return status, stderr.getvalue()


@contextmanager
def read_only_dir(path: Path, contents: Path | None = None):
    """`path` as a folder nothing can be written to (a copy of `contents` inside): a read-only
    tmpfs as root (EROFS), else a folder without write permission (EACCES)."""
    path.mkdir()
    if os.geteuid() != 0:
        if contents:
            shutil.copytree(contents, path, dirs_exist_ok=True)
        for d in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            d.chmod(0o555)
        try:
            yield path
        finally:
            for d in [path, *(p for p in path.rglob("*") if p.is_dir())]:
                d.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)]
    if shutil.which("mount") is None or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("root cannot mount a tmpfs here, and permissions do not stop root")
    try:
        if contents:
            shutil.copytree(contents, path, dirs_exist_ok=True)
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_harmonize_says_in_one_line_when_it_cannot_write(tmp_path, tiny_export):
    """An --out-dir that is a file, under a file or read-only: one line and status 2, not a
    traceback."""
    melody = tmp_path / "t.txt"
    melody.write_text("C5q D5 E5 F5")
    (tmp_path / "afile").write_text("x")
    with read_only_dir(tmp_path / "ro") as ro:
        for out_dir, words in [
            (tmp_path / "afile", "is a file, not a folder"),
            (tmp_path / "afile" / "sub", "Not a directory"),
            (ro, "Read-only file system" if os.geteuid() == 0 else "Permission denied"),
        ]:
            status, err = cli(
                "harmonize", melody, "--out-dir", out_dir, "--checkpoint", tiny_export
            )
            assert status == 2 and err.count("\n") == 1 and words in err, (out_dir, err)
        assert list(ro.iterdir()) == []


def test_train_and_ship_on_a_read_only_folder_say_so_in_one_line(tmp_path, tiny_export):
    words = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    with read_only_dir(tmp_path / "ro", contents=tiny_export) as ro:
        for args in (
            ("train", "--run-dir", ro, "--resume"),
            ("train", "--run-dir", ro / "new", "--preset", "tiny", "--iterations", "2"),
            ("ship", "--run-dir", tiny_export, "--dest", ro / "shipped", "--windows", "1"),
        ):
            status, err = cli(*args)
            assert status == 2 and err.count("\n") == 1 and words in err, (args, err)
        assert read_json(ro / "status.json")["state"] == "finished", "the run is untouched"


@pytest.mark.parametrize("how", ["tmpfs", "RLIMIT_FSIZE"])
def test_harmonize_on_a_full_disk_leaves_no_truncated_file(tmp_path, tiny_export, how):
    melody = tmp_path / "t.txt"
    melody.write_text("C5w | C5w")
    disk_space = small_disk(tmp_path / "disk", 256 * 1024) if how == "tmpfs" else nullcontext()
    with disk_space as disk:
        if how == "tmpfs" and disk is None:
            pytest.skip("cannot mount a small tmpfs here (needs root); RLIMIT_FSIZE covers it")
        out = (disk or tmp_path) / "out"

        def preexec():
            if how == "RLIMIT_FSIZE":  # no file may grow beyond 64 KB: the WAV fails, EFBIG
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

        proc = subprocess.run(
            [sys.executable, "-m", "bachgan", "harmonize", str(melody), "--out-dir", str(out)]
            + ["--wav", "--checkpoint", str(tiny_export)],
            cwd=ROOT,
            env=cli_env(Path(os.environ["BACHGAN_CACHE"])),
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=preexec,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert proc.stderr.count("\n") == 1 and "cannot write" in proc.stderr, proc.stderr
        assert sorted(p.name for p in out.iterdir()) == ["t.mid"], "no t.wav, no temporary file"


# ---------------------------------------------------------------- crash-safe files
# ---------------------------------------------------------------- crash-safe files


def test_discarded_checkpoint_never_looks_complete(tmp_path, monkeypatch):
    """Old checkpoints are pruned by renaming first: a crash mid-delete leaves only '.tmp'."""
    for i in (5, 10):
        (tmp_path / f"ckpt-{i:06d}").mkdir()
        (tmp_path / f"ckpt-{i:06d}" / "ckpt.index").write_text("x")

    def crash(path, **kw):
        raise KeyboardInterrupt  # the process dies right after the rename

    monkeypatch.setattr(runs_io.shutil, "rmtree", crash)
    with pytest.raises(KeyboardInterrupt):
        runs_io.discard_dir(tmp_path / "ckpt-000005")
    assert [d.name for d in complete_dirs(tmp_path, "ckpt")] == ["ckpt-000010"]
    monkeypatch.undo()
    runs_io.remove_stale_tmp(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000010"]


def test_replacing_a_folder_never_leaves_it_missing(tmp_path, monkeypatch):
    """atomic_dir over an existing folder: a crash while the old one is being deleted leaves
    the new one in place (the old one under a '.tmp' name that stale clean-up removes)."""
    target = tmp_path / "shipped"
    target.mkdir()
    (target / "model.json").write_text("old")

    def crash(path, **kw):
        raise KeyboardInterrupt  # the process dies as it starts deleting

    monkeypatch.setattr(runs_io.shutil, "rmtree", crash)
    with pytest.raises(KeyboardInterrupt), runs_io.atomic_dir(target) as d:
        (d / "model.json").write_text("new")
    assert (target / "model.json").read_text() == "new"
    monkeypatch.undo()
    runs_io.remove_stale_tmp(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["shipped"]
    assert (target / "model.json").read_text() == "new"

    replace = os.replace

    def new_one_fails(src, dst):  # e.g. EIO on the second rename: the old one goes back
        if str(src).endswith(".tmp") and ".old." not in str(src):
            raise OSError(errno.EIO, "I/O error")
        replace(src, dst)

    monkeypatch.setattr(runs_io.os, "replace", new_one_fails)
    with pytest.raises(OSError, match="I/O"), runs_io.atomic_dir(target) as d:
        (d / "model.json").write_text("newer")
    assert (target / "model.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["shipped"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    runs_io.atomic_write_json(target, {"state": "running"})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs_io.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        runs_io.atomic_write_json(target, {"state": "finished"})
    with (
        pytest.raises(OSError, match="No space"),
        runs_io.atomic_dir(tmp_path / "ckpt-000005") as d,
    ):
        (d / "ckpt.index").write_text("half")
    assert read_json(target) == {"state": "running"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"], "no leftovers"


def test_read_jsonl_skips_torn_and_garbage_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(
        b'{"iteration": 1}\n\xff\xfe garbage\n[1, 2]\n{"iteration": 2}\n{"iteration": 3, "cr'
    )
    assert read_jsonl(path) == [{"iteration": 1}, {"iteration": 2}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


# ---------------------------------------------------------------- training under faults


def latest_checkpoint(run: Path) -> int:
    ckpts = complete_dirs(run / "checkpoints", "ckpt")
    return int(ckpts[-1].name.split("-")[1]) if ckpts else 0


def has_tmp(folder: Path) -> bool:
    try:
        return any(e.name.endswith(".tmp") for e in os.scandir(folder))
    except FileNotFoundError:
        return False


def tmp_entries(run: Path) -> set[str]:
    """Temporary files and folders of unfinished writes, relative to the run directory."""
    found = set()
    for sub in ("", "checkpoints", "exports", "samples"):
        folder = run / sub
        if folder.is_dir():
            found |= {str(p.relative_to(run)) for p in folder.glob("*.tmp")}
    return found


def assert_nothing_half_written_is_visible(run: Path) -> None:
    """Every folder that looks complete is complete; metrics.jsonl has at most a torn last line
    and otherwise exactly one row per iteration, in order."""
    for d in complete_dirs(run / "checkpoints", "ckpt"):
        files = {p.name for p in d.iterdir()}
        assert {"ckpt.index", "ckpt.data-00000-of-00001", "meta.json"} <= files, d
        assert read_json(d / "meta.json")["iteration"] == int(d.name.split("-")[1])
    for d in complete_dirs(run / "exports", "export"):
        assert (d / "generator.weights.h5").is_file(), d
        assert read_json(d / "model.json")["iteration"] == int(d.name.split("-")[1])
    text = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else ""
    *complete, _torn = text.split("\n")
    rows = [json.loads(line) for line in complete]  # a complete line always parses
    assert [r["iteration"] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= latest_checkpoint(run), "a checkpoint never runs ahead of the log"


def wait_until(proc, condition, timeout: float, poll: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False


KILL_PLAN = [  # where each SIGKILL lands
    "random delay after a new checkpoint",
    "while a checkpoint is being written",
    "while an export is being written",
    "mid-iteration",
    "during start-up",
    "random delay after a new checkpoint",
    "while a checkpoint is being written",
    "while an export is being written",
    "random delay after a new checkpoint",
    "mid-iteration",
    "while a checkpoint is being written",
    "random delay after a new checkpoint",
]
TORN_LINE = '{"iteration": 424242, "critic_loss": -1.2'


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_finishes_cleanly(tmp_path, isolated_cache):
    run = tmp_path / "run"
    rng = random.Random(7)
    env = cli_env(isolated_cache)
    landed_in: dict[str, int] = {}  # where unfinished writes were when the kill landed
    expect_resume_from = None  # newest complete checkpoint when the last process died
    for k, where in enumerate(KILL_PLAN):
        resume = (run / "config.json").exists()
        before, stale = latest_checkpoint(run), tmp_entries(run)
        log = tmp_path / f"cycle-{k:02d}.log"
        with open(log, "wb") as out:  # 1000 iterations: never finishes before the kill
            proc = subprocess.Popen(
                train_cmd(run, 1000, resume), cwd=ROOT, env=env, stdout=out, stderr=out
            )

        def status_shows_progress(p=proc, b=before):
            s = read_json(run / "status.json") or {}
            return s.get("pid") == p.pid and s.get("iteration", 0) > b

        try:
            if where == "random delay after a new checkpoint":
                ok = wait_until(proc, lambda b=before: latest_checkpoint(run) > b, 300, 0.02)
                time.sleep(rng.uniform(0, 1.5))
            elif where == "while a checkpoint is being written":
                ok = wait_until(proc, lambda: has_tmp(run / "checkpoints"), 300)
            elif where == "while an export is being written":
                ok = wait_until(proc, lambda: has_tmp(run / "exports"), 300)
            elif where == "mid-iteration":
                ok = wait_until(proc, status_shows_progress, 300, 0.01)
            else:
                ok = proc.poll() is None
                time.sleep(rng.uniform(0.5, 8.0))
            assert ok and proc.poll() is None, f"cycle {k}: " + log.read_text()[-3000:]
        finally:
            proc.kill()  # SIGKILL: no handler, no clean-up, no last words
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        in_flight = tmp_entries(run) - stale  # a dead process renames nothing: these were open
        for place in {Path(e).parent.name or "run root" for e in in_flight} or {"nothing"}:
            landed_in[place] = landed_in.get(place, 0) + 1

        # The run shows as interrupted: still 'running' on disk, but its process is gone.
        status = read_json(run / "status.json")
        assert status["state"] == "running" and not pid_alive(status["pid"]), status
        assert_nothing_half_written_is_visible(run)
        if expect_resume_from and where != "during start-up":
            assert f"resumed from iteration {expect_resume_from}" in log.read_text(), k
        expect_resume_from = latest_checkpoint(run) or None
        if k in (3, 7):  # as if killed in the middle of appending a metrics line
            with open(run / "metrics.jsonl", "a") as f:
                f.write(TORN_LINE)

    # Resume to a near end (not a multiple of the checkpoint interval) and finish.
    iterations = latest_checkpoint(run) + 7
    final = subprocess.run(
        train_cmd(run, iterations, resume=True),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-3000:]
    assert f"resumed from iteration {expect_resume_from}" in final.stdout
    status = read_json(run / "status.json")
    assert status["state"] == "finished" and status["pid"] is None
    assert status["iteration"] == iterations
    assert_nothing_half_written_is_visible(run)
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n") and "424242" not in text, "the torn lines were repaired"
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["iteration"] for r in rows] == list(range(1, iterations + 1)), "each logged once"
    _, _, card = load_generator(run)
    assert card["iteration"] == iterations
    leftovers = tmp_entries(run)
    assert all("/" not in e for e in leftovers), f"stale temporary files: {leftovers}"
    assert landed_in.get("checkpoints", 0) + landed_in.get("exports", 0) >= 1, landed_in
    print(
        f"\n{len(KILL_PLAN)} SIGKILLs; unfinished writes at the kill: {landed_in}; "
        f"finished at {iterations}; {len(leftovers)} small temp files left in the run root"
    )


@pytest.mark.slow
def test_second_run_is_refused_and_a_killed_runs_lock_is_recovered(tmp_path, isolated_cache):
    from bachgan.train import acquire_lock, lock_path

    env = cli_env(isolated_cache)
    first = subprocess.Popen(
        train_cmd(tmp_path / "a", 100_000),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        held = wait_until(
            first,
            lambda: lock_path().is_file() and lock_path().read_text() == f"pid {first.pid}",
            300,
        )
        assert held, "the first run never took the lock"
        second = subprocess.run(
            train_cmd(tmp_path / "b", 2),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 2, second.stderr[-2000:]
        assert second.stderr.strip().splitlines() == [
            f"bachgan train: a training run is already going on this machine (pid {first.pid})"
        ]
        assert not (tmp_path / "b").exists(), "a refused run leaves nothing behind"
        assert first.poll() is None, "the refusal did not disturb the running one"
    finally:
        first.kill()
        first.wait()
    # The kernel released the dead holder's flock; the stale pid in the file does not matter.
    assert lock_path().read_text() == f"pid {first.pid}"
    lock = acquire_lock()
    try:
        assert lock_path().read_text() == f"pid {os.getpid()}"
    finally:
        lock.close()


@contextmanager
def small_disk(path: Path, size: int):
    """A tmpfs of `size` bytes at `path` (needs root); yields None where mounting fails."""
    path.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        yield None
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.parametrize("how", ["tmpfs", "RLIMIT_FSIZE"])
def test_disk_full_during_checkpoint_keeps_the_last_one_and_says_so(tmp_path, isolated_cache, how):
    """A real full disk (a small tmpfs; needs root) or, everywhere on Linux, a file-size limit
    on the trainer that makes its writes fail with EFBIG."""
    from bachgan.train import train

    disk_space = small_disk(tmp_path / "disk", 8 * 2**20) if how == "tmpfs" else nullcontext()
    with disk_space as disk:
        if how == "tmpfs" and disk is None:
            pytest.skip("cannot mount a small tmpfs here (needs root); RLIMIT_FSIZE covers it")
        run = (disk or tmp_path) / "run"
        train(run, preset="tiny", iterations=5, seed=2, jit=False, **QUIET)
        ckpt_bytes = dir_size(run / "checkpoints" / "ckpt-000005")
        room = ckpt_bytes // 2  # enough for log lines and samples, not for a checkpoint
        if disk is not None:  # fill the tmpfs, leaving `room`
            free = shutil.disk_usage(disk).free
            with open(disk / "filler", "wb") as f:
                f.write(bytes(free - room))
            limit = None
        else:  # fallback: no single file may grow beyond `room` (writes fail with EFBIG)
            limit = room

        def preexec():
            if limit:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        proc = subprocess.run(
            train_cmd(run, 10, resume=True),
            cwd=ROOT,
            env=cli_env(isolated_cache),
            capture_output=True,
            text=True,
            timeout=600,
            preexec_fn=preexec,
        )
        assert proc.returncode == 1, (how, proc.stdout[-2000:], proc.stderr[-3000:])
        assert "Traceback" not in proc.stderr
        message = proc.stderr.strip().splitlines()[-1]
        assert message.startswith("bachgan train: the disk is full"), message
        status = read_json(run / "status.json")
        assert status["state"] == "failed" and status["pid"] is None
        assert "disk is full" in status["error"] and "iteration 5 is intact" in status["error"]
        assert "--resume" in status["error"]

        # The previous checkpoint and export are untouched; no half-written folder is left.
        assert [d.name for d in complete_dirs(run / "checkpoints", "ckpt")] == ["ckpt-000005"]
        assert not has_tmp(run / "checkpoints") and not has_tmp(run / "exports")
        assert_nothing_half_written_is_visible(run)
        _, _, card = load_generator(run)
        assert card["iteration"] == 5

        # With space again, the run resumes from that checkpoint and finishes.
        if disk is not None:
            (disk / "filler").unlink()
        status = train(run, iterations=10, resume=True, **QUIET)
        assert status["state"] == "finished" and status["iteration"] == 10
        assert [r["iteration"] for r in read_jsonl(run / "metrics.jsonl")] == list(range(1, 11))
        print(f"\ndisk full simulated with {how}; checkpoint {ckpt_bytes:,} B, room {room:,} B")


# ---------------------------------------------------------------- model files and uploads


class Payload:
    """Unpickling this creates `marker`: proof that code from a file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def copy_export(tiny_export: Path, dest: Path) -> Path:
    shutil.copytree(complete_dirs(tiny_export / "exports", "export")[-1], dest)
    return dest


def test_unexpected_keys_in_model_json_are_ignored(tmp_path, tiny_export):
    folder = copy_export(tiny_export, tmp_path / "export")
    marker = tmp_path / "marker"
    card = read_json(folder / "model.json")
    card["preset"]["class_name"] = "Lambda"
    card["preset"]["function"] = f"open({str(marker)!r}, 'w')"
    card["module"] = "os"
    card["py/reduce"] = [{"py/function": "builtins.exec"}, "import os"]
    card["weights"] = "../../elsewhere.pkl"
    (folder / "model.json").write_text(json.dumps(card))
    generator, preset, loaded = load_generator(folder)
    assert preset.name == "tiny" and generator.count_params() > 0
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage",
    ["preset is not a dict", "preset field of the wrong type", "not JSON", "weights are a pickle"],
)
def test_damaged_or_crafted_export_is_refused_without_running_code(tmp_path, tiny_export, damage):
    from bachgan.__main__ import main

    folder = copy_export(tiny_export, tmp_path / "export")
    marker = tmp_path / "marker"
    card = read_json(folder / "model.json")
    if damage == "preset is not a dict":
        card["preset"] = pickle.dumps(Payload(marker)).hex()
        (folder / "model.json").write_text(json.dumps(card))
    elif damage == "preset field of the wrong type":
        card["preset"]["filters"] = "__import__('os').system('touch marker')"
        (folder / "model.json").write_text(json.dumps(card))
    elif damage == "not JSON":
        (folder / "model.json").write_bytes(pickle.dumps(Payload(marker)))
    else:
        (folder / "generator.weights.h5").write_bytes(pickle.dumps(Payload(marker)))

    with pytest.raises(Exception):  # noqa: B017 - any refusal will do; running code will not
        load_generator(folder)
    melody = tmp_path / "m.txt"
    melody.write_text("C5q D5 E5 F5")
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", stderr)
        status = main(
            ["harmonize", str(melody), "--out-dir", str(tmp_path / "o")]
            + ["--checkpoint", str(folder)]
        )
    assert status == 2
    assert stderr.getvalue().count("\n") == 1
    assert stderr.getvalue().startswith("bachgan harmonize: cannot load the model")
    assert not marker.exists(), "unpickling ran code from the file"


def npz_with_object_array(marker: Path, key: str) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{key: np.array([Payload(marker)], dtype=object)}, other=np.zeros(3))
    return buf.getvalue()


def test_sample_and_cache_files_with_pickles_are_refused(tmp_path, monkeypatch, tiny_export):
    from bachgan import data, runs

    marker = tmp_path / "marker"
    monkeypatch.setenv("BACHGAN_RUNS", str(tmp_path / "runs"))
    run = tmp_path / "runs" / "evil"
    (run / "samples").mkdir(parents=True)
    shutil.copy(tiny_export / "config.json", run / "config.json")
    (run / "samples" / "iter-000005.npz").write_bytes(npz_with_object_array(marker, "roll"))
    with pytest.raises(runs.RunStateError, match="allow_pickle"):  # the page shows why
        runs.load_sample("evil", 5)

    cache = tmp_path / "chorales.npz"
    cache.write_bytes(npz_with_object_array(marker, "meta"))
    with pytest.raises(ValueError, match="allow_pickle"):
        data._load_cache(cache)
    assert not marker.exists()


def test_melody_import_works_in_memory_and_writes_no_file(tmp_path, monkeypatch):
    """An upload is parsed from bytes: no file is opened for writing, nothing lands in the
    temporary folder (watched with an audit hook, so writes anywhere are seen)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    written = []
    watching = [True]

    def hook(event, args):
        if watching[0] and event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            ):
                written.append(path)

    sys.addaudithook(hook)  # hooks cannot be removed; `watching` switches this one off
    try:
        data = melody_file(4)
        for _ in range(3):
            midi_tracks(data)
            melody_from_midi(data, "alto", track=0)
            melody_from_text("C4q D4 E4 F4 | G4w", "tenor")
            with pytest.raises(MelodyError):
                melody_from_midi(data[:30])
    finally:
        watching[0] = False
    assert written == [], written
    assert list(tmp_path.iterdir()) == []


def test_audio_rendering_leaves_its_temporary_folder_cleaned_up(tmp_path, monkeypatch):
    """The only temporary files are FluidSynth's input and output, in a folder that goes away
    (with the sine fallback there are none)."""
    from bachgan import audio, midi

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    melody, _ = melody_from_text("C5q D5 E5 F5 | G5w")
    result = audio.render_wav(midi.to_midi_bytes(melody))
    assert result.wav[:4] == b"RIFF"
    assert list(tmp_path.iterdir()) == []
