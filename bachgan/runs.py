"""Training runs as the app sees them: find, read, start, stop and resume.

Everything is read from the run directories on disk (see `bachgan.train`), so a reload
or a second browser shows the same runs. Training itself runs in a separate process
(`python -m bachgan train ...`, no shell) that outlives the web server; the machine-wide
training lock in `bachgan.train` keeps it to one run at a time.

Names coming from the UI or a URL (`?run=`) only ever resolve to a direct child of the
runs root (`resolve_run`) or to the shipped checkpoint (`resolve_model`).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bachgan.presets import DEFAULT_PRECISION, MAX_SEED, PRECISIONS, run_precision
from bachgan.runs_io import atomic_write_json, complete_dirs, read_json, read_jsonl
from bachgan.train import TrainingBusy, lock_path, trained_seconds
from bachgan.train import now as train_now
from bachgan.voices import VOICE_NAMES, Voices

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SHIPPED = "shipped"
# One entry per preset in bachgan.presets.PRESETS (a test checks): its bound.
MAX_ITERATIONS = {"seed": 20000, "cpu": 20000, "mid": 20000, "chorale": 20000, "tiny": 1000}
ETA_WINDOW = 50  # recent iterations the ETA averages over
# The key of benchmarks/P.json that holds a training step's seconds, per precision.
BENCH_KEYS = {"float32": "train_iteration_s", "mixed_bfloat16": "train_iteration_bf16_s"}


def benchmark(preset: str) -> dict:
    """`bench --preset P`'s saved result for this preset (benchmarks/P.json), or {}."""
    found = read_json(PROJECT_ROOT / "benchmarks" / f"{preset}.json", {})
    return found if isinstance(found, dict) and found.get("train_preset") == preset else {}


def step_seconds(result: dict, precision: str = DEFAULT_PRECISION) -> float | None:
    """Seconds per training iteration in this precision in a `benchmark` result, or None."""
    value = result.get(BENCH_KEYS[precision])
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


class RunError(Exception):
    """Base of the errors the app shows to the person as a message."""


class RunNameError(RunError, ValueError):
    """A run or model name that is malformed or points outside the allowed folders."""


class TrainRequestError(RunError, ValueError):
    """Training parameters out of bounds; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class TrainingDisabled(RunError):
    """Training is switched off on this server (public hosting)."""


class RunStateError(RunError):
    """The run is not in a state that allows the action (e.g. stop a finished run)."""


# ---------------------------------------------------------------- paths


def runs_root() -> Path:
    """BACHGAN_RUNS, else <project>/runs."""
    return Path(os.environ.get("BACHGAN_RUNS") or PROJECT_ROOT / "runs")


def check_name(name) -> str:
    """A run name is one plain folder name: no separators, no '..', no hidden names."""
    if not isinstance(name, str) or not name:
        raise RunNameError("a run name is required")
    if not NAME_RE.fullmatch(name) or name.startswith("."):
        raise RunNameError(
            f"{name[:80]!r} is not a valid run name: use 1-64 letters, digits, '-', '_' or '.', "
            "not starting with '.'"
        )
    if name == SHIPPED:
        raise RunNameError(f"{SHIPPED!r} names the shipped model: choose another run name")
    return name


def resolve_run(name, must_exist: bool = True) -> Path:
    """The folder of run `name`, guaranteed to be a direct child of the runs root."""
    check_name(name)
    root = runs_root().resolve()
    path = root / name
    if path.is_symlink() or path.resolve().parent != root:
        raise RunNameError(f"run {name!r} points outside the runs folder")
    if must_exist and not path.is_dir():
        raise RunNameError(f"there is no run called {name!r}")  # no server paths to visitors
    return path


def resolve_model(choice) -> Path:
    """'shipped' -> the shipped checkpoint; a run name -> that run, if it has an export."""
    from bachgan.export import resolve_export

    if choice == SHIPPED:
        from bachgan.sampling import default_checkpoint

        return Path(default_checkpoint())
    path = resolve_run(choice)
    try:
        resolve_export(path)
    except FileNotFoundError:
        raise RunNameError(f"run {choice!r} has no saved model yet") from None
    return path


USABLE_STATES = ("finished", "stopped", "interrupted")  # not running, not failed


def model_choices() -> list[str]:
    """'shipped' first, then every run that has stopped (finished, stopped or interrupted)
    with a complete export, newest first."""
    usable = [r for r in list_runs() if r.has_export and r.effective_state in USABLE_STATES]
    return [SHIPPED] + [r.name for r in usable]


# ---------------------------------------------------------------- processes

_children: dict[int, subprocess.Popen] = {}
_start_lock = threading.Lock()


def _reap() -> None:
    """Collect our finished children so they do not linger as zombies."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)  # two sessions may reap at once


def _cmdline(pid: int) -> list[str]:
    """The process's arguments; [] for a zombie or no such process.

    Right after exec the kernel briefly shows an empty command line, so an empty one of a
    process that is not a zombie is read again for a moment.
    """
    for _ in range(50):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            if raw or _proc_state(pid) in ("Z", "X", ""):
                break
        except OSError:
            return []
        time.sleep(0.01)
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    _reap()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mentions_dir(pid: int, args: list[str], run_dir: Path) -> bool:
    """Whether the command line names `run_dir` (relative paths resolve in its cwd)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        cwd = PROJECT_ROOT
    target = run_dir.resolve()
    named = re.compile(re.escape(str(target)) + r"(?![\w.-])")  # runs/a, not runs/a2
    for arg in args:
        if named.search(arg):
            return True
        try:
            if (cwd / arg.split("=", 1)[-1]).resolve() == target:
                return True
        except (OSError, ValueError):
            continue
    return False


def _is_bachgan_train(args: list[str]) -> bool:
    """`python -m bachgan train ...` (or python -c "from bachgan.train import ...")."""
    bachgan = any(a == "bachgan" or a.startswith("bachgan.") or "from bachgan" in a for a in args)
    return bachgan and "train" in " ".join(args)


def _trains(pid, run_dir: Path) -> bool:
    """Alive and plausibly the trainer of run_dir (a reused pid is not)."""
    if not _pid_alive(pid):
        return False
    if pid in _children:  # started by this process and not yet ended
        return True
    args = _cmdline(pid)
    if not args:  # a zombie, or no /proc to ask: trust the pid only if /proc is missing
        return not Path("/proc/self").exists()
    return _is_bachgan_train(args) or _mentions_dir(pid, args, run_dir)


def _stoppable(pid, run_dir: Path) -> bool:
    """Strictly a bachgan training process of this run directory."""
    if not _pid_alive(pid):
        return False
    args = _cmdline(pid)
    return _is_bachgan_train(args) and _mentions_dir(pid, args, run_dir)


# ---------------------------------------------------------------- reading


@dataclass
class RunInfo:
    """One run as its folder describes it (the Train page tabulates these)."""

    name: str
    state: str  # as written in status.json (or 'new' when there is none yet)
    effective_state: str  # 'interrupted' when 'running' but its process is gone
    iteration: int = 0
    iterations: int = 0
    preset: str = ""
    device: str = ""
    started: str = ""
    updated: str = ""
    error: str | None = None
    pid: int | None = None
    has_export: bool = False
    has_checkpoint: bool = False
    has_config: bool = False
    eta_seconds: float | None = None
    budget_minutes: float | None = None  # `train --minutes`: stops at this much training time
    precision: str = DEFAULT_PRECISION  # `train --precision`, from config.json
    mtime: float = 0.0

    @property
    def running(self) -> bool:
        return self.effective_state == "running"

    @property
    def resumable(self) -> bool:
        return self.has_config and self.effective_state in (
            "stopped",
            "interrupted",
            "failed",
            "finished",
        )


def read_status(name) -> dict:
    status = read_json(resolve_run(name) / "status.json", {})
    return status if isinstance(status, dict) else {}


def read_config(name) -> dict:
    config = read_json(resolve_run(name) / "config.json", {})
    return config if isinstance(config, dict) else {}


def _every(preset: dict | None, what: str) -> int | None:
    """A preset's `sample_every` or `metrics_every`, from a config as saved (None if unknown:
    a run's first seconds, before its process writes config.json)."""
    value = (preset or {}).get(what) if isinstance(preset, dict) else None
    return value if isinstance(value, int) and value > 0 else None


def sample_every(name) -> int | None:
    """How many iterations apart the run saves samples, once its config is written."""
    return _every(read_config(name).get("preset"), "sample_every")


def metrics_every(name) -> int:
    """How many iterations apart the run measures its music (50, the presets', if unknown)."""
    return _every(read_config(name).get("preset"), "metrics_every") or 50


def shipped_curve() -> tuple[list[dict], int]:
    """The shipped model's training curve (rows as in metrics.jsonl) and its metrics interval."""
    from bachgan.sampling import default_checkpoint

    folder = Path(default_checkpoint())
    card = read_json(folder / "model.json", {})
    every = _every(card.get("preset") if isinstance(card, dict) else None, "metrics_every")
    return read_jsonl(folder / "training_curve.jsonl"), every


def _int(x) -> int:
    """A count from a status file written by a trainer that may have crashed: 0 if unusable."""
    try:
        return max(int(x or 0), 0)
    except (TypeError, ValueError, OverflowError):
        return 0


_HEAD = 512  # bytes that tell one metrics file from another: its first row, with its times
_metrics_cache: dict[Path, tuple[bytes, int, list[dict]]] = {}  # path -> (head, offset, rows)


def read_metrics(name) -> list[dict]:
    """All complete rows of metrics.jsonl, like `runs_io.read_jsonl` (torn lines skipped).

    The page rereads a live run every few seconds, so only the bytes appended since the
    last read are parsed. A file that is not the one read before (resume trims it
    atomically; a run made again under the same name may even reuse the inode) starts
    differently or is shorter, and is read afresh.
    """
    path = resolve_run(name) / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
            known, offset, rows = _metrics_cache.get(path, (b"", 0, []))
            same = head[: len(known)] == known[: len(head)]
            if not same or f.seek(0, os.SEEK_END) < offset:
                offset, rows = 0, []
            f.seek(offset)
            data = f.read()
    except OSError:
        return []
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
    rows = rows + [r for r in map(_json_row, data[:end].splitlines()) if r is not None]
    _metrics_cache[path] = (head, offset + end, rows)
    return rows


def _json_row(line: bytes) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("iteration"), int) else None


def seconds_per_iteration(rows: list[dict]) -> float | None:
    """Recent wall time per iteration (with saving and sampling), outliers dropped.

    Wall-clock gaps between consecutive rows count the checkpoints and samples the
    `seconds` field leaves out; the first iteration (compilation) and gaps across a
    resume are far above the median and are dropped.
    """
    recent = rows[-(ETA_WINDOW + 1) :]
    gaps = [
        b["time"] - a["time"]
        for a, b in zip(recent, recent[1:])
        if b["iteration"] == a["iteration"] + 1 and "time" in a and "time" in b
    ]
    if not gaps:
        gaps = [r["seconds"] for r in recent if isinstance(r.get("seconds"), (int, float))]
    if not gaps:
        return None
    med = statistics.median(gaps)
    kept = [g for g in gaps if 0 <= g <= 10 * med + 1e-9] or gaps
    return sum(kept) / len(kept)


def run_info(name) -> RunInfo:
    path = resolve_run(name)
    status = read_status(name)
    state = status.get("state") or ("new" if not (path / "config.json").exists() else "unknown")
    pid = status.get("pid")
    effective = state
    if state == "running" and not _trains(pid, path):
        effective = "interrupted"
    config = read_config(name)
    preset = status.get("preset") or (config.get("preset") or {}).get("name", "")
    error = status.get("error")
    info = RunInfo(
        name=name,
        state=state,
        effective_state=effective,
        iteration=_int(status.get("iteration")),
        iterations=_int(status.get("iterations") or config.get("iterations")),
        preset=preset,
        device=status.get("device") or config.get("device") or "",
        started=status.get("started") or "",
        updated=status.get("updated") or "",
        error=str(error) if error else None,
        pid=pid if isinstance(pid, int) else None,
        has_export=bool(complete_dirs(path / "exports", "export")),
        has_checkpoint=bool(complete_dirs(path / "checkpoints", "ckpt")),
        has_config=bool(config),
        precision=str(run_precision(config)),
        mtime=_mtime(path),
    )
    budget = config.get("minutes")
    info.budget_minutes = float(budget) if isinstance(budget, (int, float)) and budget > 0 else None
    if info.running and info.iterations:
        rows = read_metrics(name)
        per = seconds_per_iteration(rows)
        if per is not None:
            info.eta_seconds = per * max(info.iterations - info.iteration, 0)
        if info.budget_minutes:  # whichever comes first: the last iteration or the budget
            left = max(info.budget_minutes * 60 - trained_seconds(rows), 0.0)
            info.eta_seconds = left if info.eta_seconds is None else min(info.eta_seconds, left)
    return info


def _mtime(path: Path) -> float:
    times = []
    for f in ("status.json", "config.json", "."):
        try:
            times.append((path / f).stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def list_runs() -> list[RunInfo]:
    """Every run folder under the runs root, most recently active first."""
    root = runs_root()
    if not root.is_dir():
        return []
    infos = []
    for d in root.iterdir():
        if not d.is_dir() or not NAME_RE.fullmatch(d.name) or d.name.startswith("."):
            continue
        try:
            infos.append(run_info(d.name))
        except RunNameError:  # e.g. a symlink pointing elsewhere
            continue
    return sorted(infos, key=lambda r: r.mtime, reverse=True)


def active_run() -> RunInfo | None:
    """The run in the runs root whose training process is alive, if any."""
    return next((r for r in list_runs() if r.running), None)


def log_tail(name, n_lines: int = 40, max_bytes: int = 65536) -> str:
    """The last lines the training process printed (train.log)."""
    path = resolve_run(name) / "train.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - max_bytes, 0))
            data = f.read()
    except OSError:
        return ""
    lines = data.decode(errors="replace").splitlines()
    if size > max_bytes:
        lines = lines[1:]  # the first one is probably cut
    return "\n".join(lines[-n_lines:])


_SAMPLE_RE = re.compile(r"iter-(\d{6,})\.npz")


def samples(name) -> list[int]:
    """Iterations with a saved sample file, ascending."""
    folder = resolve_run(name) / "samples"
    if not folder.is_dir():
        return []
    found = [m.group(1) for f in folder.iterdir() if (m := _SAMPLE_RE.fullmatch(f.name))]
    return sorted(int(x) for x in found)


@dataclass
class Sample:
    """The fixed held-out melodies harmonized at one iteration (after clean-up)."""

    iteration: int
    pieces: list  # list[Voices], four voices each
    given: list[int]  # which voice was given (the condition) per piece
    midi: list[bytes] = field(default_factory=list)


def _sample_path(name, iteration: int) -> Path:
    return resolve_run(name) / "samples" / f"iter-{int(iteration):06d}.npz"


def sample_stamp(name, iteration: int) -> float:
    """When the sample file was written (0.0 if it is missing): what a cache keys on."""
    try:
        return _sample_path(name, iteration).stat().st_mtime
    except OSError:
        return 0.0


def load_sample(name, iteration: int, tempo: float = 80.0) -> Sample:
    """Decode samples/iter-NNNNNN.npz the way the app harmonizes, plus MIDI for listening."""
    from bachgan import midi, sampling
    from bachgan.presets import Preset

    if int(iteration) not in samples(name):
        raise RunNameError(f"run {name!r} has no sample at iteration {iteration}")
    path = _sample_path(name, iteration)
    preset_dict = read_config(name).get("preset")
    if not preset_dict:
        raise RunStateError(f"run {name!r} has no config.json to decode its samples")
    preset = Preset.from_dict(preset_dict)
    try:
        with np.load(io.BytesIO(path.read_bytes())) as z:
            rolls, melody, voice = z["roll"].astype(np.float32), z["melody"], z["voice"]
        pieces = [
            sampling.decode(r, preset, Voices.from_pitches(m), int(v))
            for r, m, v in zip(rolls, melody, voice)
        ]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise RunStateError(
            f"run {name!r}: the sample of iteration {iteration} cannot be read ({err})"
        ) from None
    return Sample(
        iteration=int(iteration),
        pieces=pieces,
        given=[int(v) for v in voice],
        midi=[midi.to_midi_bytes(p, tempo=tempo) for p in pieces],
    )


# ---------------------------------------------------------------- starting


def _truthy(value) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def training_enabled() -> tuple[bool, str]:
    """(enabled, reason): off with BACHGAN_DISABLE_TRAINING or on a public Space."""
    if _truthy(os.environ.get("BACHGAN_DISABLE_TRAINING")):
        return False, (
            "Training is switched off on this server (the environment variable "
            "BACHGAN_DISABLE_TRAINING is set). To train, run the app on your own computer "
            "without that variable: `bash scripts/app.sh` in a copy of BachGAN."
        )
    if os.environ.get("SPACE_ID") and os.environ.get("BACHGAN_ENABLE_TRAINING") != "1":
        return False, (
            "Training is switched off on this public server, so that everyone's "
            "harmonizations stay quick (one training run keeps its CPU busy for hours). To "
            "train your own model, run BachGAN on your own computer (`bash scripts/app.sh` in a "
            "copy of it), or duplicate this Space and set BACHGAN_ENABLE_TRAINING=1 in its "
            "settings."
        )
    return True, "Training is enabled on this machine."


def _require_enabled() -> None:
    ok, reason = training_enabled()
    if not ok:
        raise TrainingDisabled(reason)


def _lock_holder() -> str | None:
    """Who holds the machine's training lock, probed without waiting; None when free."""
    path = lock_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                return f.read().strip() or "another process"
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def busy_reason() -> str | None:
    """Why a new run cannot start now (another one is training), or None."""
    run = active_run()
    if run is not None:
        return (
            f"Run '{run.name}' is training. One run at a time per machine: stop it or wait "
            "until it finishes."
        )
    holder = _lock_holder()
    if holder is not None:
        return (
            f"Another training run is going on this machine ({holder}), perhaps started from "
            "the command line. One run at a time per machine: wait until it finishes."
        )
    return None


@dataclass(frozen=True)
class TrainRequest:
    """What the start form asks for; `validate()` before anything reaches a process."""

    preset: str = "cpu"
    iterations: int = 2000
    seed: int = 0
    condition_voices: tuple[str, ...] | None = None  # None: the preset's own
    name: str | None = None  # None: <preset>-<date>-<time>
    # None: what `train` picks for the device (bachgan.devices); or one of PRECISIONS
    precision: str | None = None

    def validate(self) -> TrainRequest:
        """A checked copy (name filled in); raises TrainRequestError listing every problem."""
        problems = []
        if self.preset not in MAX_ITERATIONS:
            names = ", ".join(MAX_ITERATIONS)
            problems.append(f"preset must be one of {names}, got {str(self.preset)[:40]!r}")
        top = MAX_ITERATIONS.get(self.preset, 20000)
        if not _is_int(self.iterations) or not 1 <= self.iterations <= top:
            problems.append(f"iterations must be a whole number from 1 to {top}")
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            problems.append(f"seed must be a whole number from 0 to {MAX_SEED}")
        voices = self.condition_voices
        if voices is not None:
            voices = tuple(voices) if not isinstance(voices, str) else (voices,)
            bad = [v for v in voices if v not in VOICE_NAMES]
            if bad or not voices:
                problems.append(
                    "choose at least one voice for the model to learn to harmonize "
                    "(soprano, alto, tenor or bass)"
                )
            else:
                voices = tuple(v for v in VOICE_NAMES if v in voices)  # SATB order, no repeats
        if self.precision is not None and self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}")
        name = self.name or _auto_name(self.preset if self.preset in MAX_ITERATIONS else "run")
        try:
            path = resolve_run(name, must_exist=False)
            if path.exists():
                problems.append(f"a run called {name!r} already exists; choose another name")
        except RunNameError as err:
            problems.append(str(err))
        if problems:
            raise TrainRequestError(problems)
        return TrainRequest(
            self.preset, int(self.iterations), int(self.seed), voices, name, self.precision
        )

    def args(self) -> list[str]:
        """CLI arguments after `train --run-dir DIR` (call on a validated request)."""
        out = ["--preset", self.preset, "--iterations", str(int(self.iterations))]
        out += ["--seed", str(int(self.seed))]
        if self.condition_voices:
            out += ["--condition-voices", ",".join(self.condition_voices)]
        if self.precision is not None:  # left out, `train` picks it for the device
            out += ["--precision", self.precision]
        return out


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _auto_name(prefix: str) -> str:
    base = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    root, name, i = runs_root(), base, 2
    while (root / name).exists():
        name, i = f"{base}-{i}", i + 1
    return name


def _spawn(run_dir: Path, extra: list[str], status_fields: dict) -> int:
    """Start the CLI trainer in its own session; mark the run running at once.

    Writing status.json before the trainer has imported TensorFlow means a second start
    (a double click, another browser) already sees a live run and is refused.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bachgan", "train", "--run-dir", str(run_dir), *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(run_dir / "train.log", "ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                env=env,
                start_new_session=True,
            )
        except OSError as err:
            raise RunStateError(f"the training process could not be started: {err}") from err
    _children[proc.pid] = proc
    # Collect its exit status the moment it ends: a finished run's pid is never asked about
    # again, and a long-lived server would otherwise keep one zombie per run.
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    old = read_json(run_dir / "status.json", {})
    old = old if isinstance(old, dict) else {}
    now = train_now()
    atomic_write_json(
        run_dir / "status.json",
        {
            **old,
            **status_fields,
            "state": "running",
            "pid": proc.pid,
            "error": None,
            "updated": now,
        },
    )
    return proc.pid


def _refuse_if_busy() -> None:
    reason = busy_reason()
    if reason:
        raise TrainingBusy(reason)


def start(request: TrainRequest) -> str:
    """Validate, check the machine is free, spawn the trainer; returns the run name."""
    _require_enabled()
    req = request.validate()
    with _start_lock:
        _refuse_if_busy()
        run_dir = resolve_run(req.name, must_exist=False)
        if run_dir.exists():
            raise TrainRequestError([f"a run called {req.name!r} already exists"])
        now = train_now()
        _spawn(
            run_dir,
            req.args(),
            {"iteration": 0, "iterations": req.iterations, "preset": req.preset, "started": now},
        )
    return req.name


def resume(name, iterations: int | None = None) -> str:
    """Continue a stopped, interrupted or failed run from its last checkpoint."""
    _require_enabled()
    run_dir = resolve_run(name)
    info = run_info(name)
    if info.running:
        raise RunStateError(f"run {name!r} is still training")
    if not read_config(name):
        raise RunStateError(f"run {name!r} never got going (no config.json); start a new run")
    extra = ["--resume"]  # its own settings, precision included, come from config.json
    if iterations is not None:  # train more: a time budget the run had no longer applies
        top, lowest = MAX_ITERATIONS.get(info.preset, 20000), info.iteration + 1
        if not _is_int(iterations) or not lowest <= iterations <= top:
            raise TrainRequestError([f"iterations must be a whole number from {lowest} to {top}"])
        extra += ["--iterations", str(int(iterations)), "--no-budget"]
    with _start_lock:
        _refuse_if_busy()
        fields = {"iterations": int(iterations)} if iterations is not None else {}
        _spawn(run_dir, extra, fields)
    return name


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has its SIGTERM handler yet (the trainer sets it while starting)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except (OSError, ValueError, IndexError):
        pass
    return True


def stoppable(name) -> bool:
    """Whether `stop` would signal this run (a live `bachgan train` of this very folder)."""
    return _stoppable(read_status(name).get("pid"), resolve_run(name))


def stop(name) -> int:
    """Ask the run's trainer to stop after the current iteration (SIGTERM); returns its pid.

    Signals only a live process whose command line is `bachgan train` of this very run.
    """
    _require_enabled()
    run_dir = resolve_run(name)
    pid = read_status(name).get("pid")
    if not _stoppable(pid, run_dir):
        raise RunStateError(f"run {name!r} has no training process of its own to stop")
    if not _catches_sigterm(pid):  # stopping now would kill it without saving
        raise RunStateError(
            f"run {name!r} is still starting (loading TensorFlow and Bach's chorales); "
            "it can be stopped in a few seconds, once training has begun"
        )
    os.kill(pid, signal.SIGTERM)
    return pid


def wait(name, states=("finished", "stopped", "failed"), timeout: float = 120.0) -> RunInfo:
    """Poll until the run's effective state is one of `states` (for tests and scripts)."""
    deadline = time.monotonic() + timeout
    while True:
        info = run_info(name)
        if info.effective_state in states:
            return info
        if info.effective_state == "interrupted":
            raise RunStateError(f"run {name!r} died:\n{log_tail(name, 15)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {name!r} is {info.effective_state} after {timeout:.0f} s")
        time.sleep(0.5)
