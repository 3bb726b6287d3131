"""Training runs: a run directory, Keras fit with callbacks, checkpoints and resume.

One Keras epoch is one GAN iteration (steps_per_epoch=1), so `initial_epoch`
resumes at an exact iteration, callbacks fire per iteration and a stop request
(SIGTERM/SIGINT) takes effect after the iteration in progress.

Run directory layout (a contract with the app and other tools):
  config.json     everything needed to reproduce (preset, seed, split, versions)
  status.json     state running|finished|stopped|failed, pid, iteration, iterations,
                  started, updated, error
  metrics.jsonl   one JSON object per iteration (key `iteration`)
  checkpoints/ckpt-NNNNNN/   full training state (last few kept)
  exports/export-NNNNNN/     generator weights + model.json for inference
  samples/iter-NNNNNN.npz (.mid)   fixed held-out melodies with fixed z
  train.log       what the process printed
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bachgan.context import planes as context_planes
from bachgan.data import cache_dir
from bachgan.pianoroll import to_roll
from bachgan.presets import MAX_SEED, check_precision, run_precision
from bachgan.runs_io import (
    append_jsonl,
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    complete_dirs,
    discard_dir,
    read_json,
    read_jsonl,
    remove_stale_tmp,
    rewrite_jsonl,
)
from bachgan.voices import STEPS_PER_BAR, VOICE_NAMES, WINDOW_STEPS, Voices

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
KEEP_CHECKPOINTS = 3
KEEP_EXPORTS = 2
N_SAMPLES = 8
N_EVAL = 64


class TrainingBusy(RuntimeError):
    """Another training run holds the machine's training lock."""


class DiskFull(OSError):
    """The disk filled up while the run was writing its files."""


def is_disk_full(err: BaseException) -> bool:
    """OSError ENOSPC/EDQUOT/EFBIG, or TensorFlow's / h5py's wording of the same."""
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(err)
    return any(s in text for s in ("No space left", "Disk quota exceeded", "File too large"))


def lock_path() -> Path:
    return cache_dir() / "train.lock"


def acquire_lock():
    """One training run per machine. The kernel drops the lock when the process dies,
    so a crashed run never leaves a stale lock behind."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise TrainingBusy(f"a training run is already going on this machine ({holder})") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    return f


STATUS_TIME = "%Y-%m-%dT%H:%M:%S%z"  # status.json's `started` and `updated`


def now() -> str:
    return time.strftime(STATUS_TIME)


def device_name() -> str:
    """What this machine trains on, as config.json's "device" says it (bachgan.devices)."""
    from bachgan.devices import plan

    return plan().label


def versions() -> dict:
    import keras
    import music21
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "music21": str(music21.__version__),
    }


class Status:
    """status.json, rewritten atomically on every change."""

    def __init__(self, run_dir: Path, **fields):
        self.path = run_dir / "status.json"
        self.data = {"state": "running", "pid": os.getpid(), "error": None, **fields}

    def update(self, **fields):
        self.data.update(fields, updated=now())
        atomic_write_json(self.path, self.data)


def open_corpus(source: str, **kw):
    """data.load_corpus, with a --data/--source file that cannot be read as JSB chorales as
    one ValueError naming it: a user's file fails in many ways (missing, a folder, not JSON,
    not a JSB split)."""
    from bachgan.data import load_corpus

    if source == "music21":
        return load_corpus(source, **kw)
    try:
        return load_corpus(source)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else repr(err)
        raise ValueError(f"cannot read {source} as JSB chorales: {why}") from None


def sample_set(corpus, preset, n: int):
    """Fixed held-out windows (validation split) with a condition voice each, and each
    window's context (key, phrase ends, meter) for presets that take it, else None."""
    from bachgan import context
    from bachgan.data import stack_windows

    split = "valid" if corpus.windows("valid") else "test"
    ws = corpus.windows(split)
    idx = np.linspace(0, len(ws) - 1, n).astype(int)
    voices = np.array([preset.condition_voices[i % len(preset.condition_voices)] for i in range(n)])
    contexts = None
    if preset.context:
        table = context.window_table(corpus.chorales(split), STEPS_PER_BAR, WINDOW_STEPS)
        contexts = [context.window_context(table, i) for i in idx]
    return stack_windows([ws[i] for i in idx]), voices, contexts


def run_callback(run):
    """The Keras callback that hands each finished iteration to the run (log, checkpoint,
    samples, status) and ends fit() after a stop request. Built here so keras loads lazily."""
    import keras

    class RunCallback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            run.end_iteration(epoch + 1, logs or {}, time.perf_counter() - self.t0)
            if run.out_of_time():
                run.log(f"the {run.config['minutes']:g}-minute budget is spent: stopping")
                run.stop_requested = True
            if run.stop_requested:
                self.model.stop_training = True

    return RunCallback()


def trained_seconds(rows: list[dict]) -> float:
    """Seconds that logged iterations spent in training steps (checkpoints, samples and
    metrics not counted): what the --minutes budget (in every session) and the card count."""
    return sum(r["seconds"] for r in rows if isinstance(r.get("seconds"), (int, float)))


def changed_settings(config: dict, given: dict) -> list[str]:
    """Options given to a resume that differ from the run's config, as '--seed 3 (the run's:
    5)'. Equal ones are fine; a resume never changes what the run is (--jit and --strategy
    included: they may change the numbers, and the card's reproduce command is the config's)."""
    preset = config.get("preset") or {}
    have = {
        "preset": preset.get("name"),
        "seed": config.get("seed"),
        "strategy": config.get("strategy"),
        "data": config.get("data"),
        "jit": bool(config.get("jit_compile")),
        "precision": run_precision(config),
    }
    out = []
    for key, value in given.items():
        old = have[key] if key in have else preset.get(key)
        if isinstance(value, (list, tuple)):
            same = isinstance(old, (list, tuple)) and list(value) == list(old)
        elif key == "data":
            same = str(value) == str(old) or Path(value).resolve() == Path(str(old)).resolve()
        else:
            same = value == old
        if not same:
            out.append(f"{_flag(key, value)} (the run's: {_flag(key, old).split(' ', 1)[-1]})")
    return out


def _flag(key: str, value) -> str:
    """A setting as the command line spells it: '--seed 3', '--no-jit', '--condition-voices
    soprano,bass'."""
    if key == "jit":
        return "--jit" if value else "--no-jit"
    if key == "condition_voices" and isinstance(value, (list, tuple)):
        value = ",".join(VOICE_NAMES[v] for v in value)
    return f"--{key.replace('_', '-')} {value}"


class Run:
    """One training run in a directory: create or resume, then `fit`."""

    def __init__(
        self,
        run_dir,
        preset=None,
        iterations=None,
        resume=False,
        seed=None,
        strategy=None,
        data=None,
        jit=None,
        precision=None,
        minutes=None,
        log=print,
        **overrides,
    ):
        """Settings left at None take the run's own on resume and, for a new run, seed 0,
        data music21, no jit, and the preset, precision and strategy that suit the device
        (bachgan.devices: on a CPU, cpu, float32 unless it has native bfloat16, default)."""
        self.dir = Path(run_dir)
        self.log = log
        self.resume = resume
        config = read_json(self.dir / "config.json")
        if resume:
            if not config:
                raise FileNotFoundError(f"nothing to resume: {self.dir / 'config.json'} is missing")
            given = dict(
                preset=preset, seed=seed, strategy=strategy, data=data, jit=jit, precision=precision
            )
            given = {k: v for k, v in {**given, **overrides}.items() if v is not None}
            changed = changed_settings(config, given)
            if changed:
                raise ValueError(
                    f"a resumed run keeps its settings: {'; '.join(changed)}; start a new run "
                    "to change them"
                )
            if iterations:
                config["iterations"] = int(iterations)
            if minutes is not None:  # a new budget, or 0: none
                config["minutes"] = float(minutes) or None
        else:
            if config and not self._failed_before_training():
                raise FileExistsError(
                    f"{self.dir} already holds a run; use --resume or a new folder"
                )
            if config:
                log(f"{self.dir} failed before its first iteration: starting it afresh")
            seed = 0 if seed is None else int(seed)
            if not 0 <= seed <= MAX_SEED:
                raise ValueError(f"seed {seed}: give 0 to {MAX_SEED}")
            preset, precision, strategy = self._device_defaults(preset, precision, strategy)
            precision = check_precision(precision)
            from bachgan.presets import get_preset

            p = get_preset(preset, **overrides)
            config = {
                "preset": p.to_dict(),
                "iterations": int(iterations or 2000),
                "seed": seed,
                "strategy": strategy,
                "data": str(data or "music21"),
                "jit_compile": bool(jit),
                "precision": precision,
                "minutes": float(minutes) if minutes else None,
                "created": now(),
                "versions": versions(),
            }
        self.config = config

    def _device_defaults(self, preset, precision, strategy):
        """The settings given, and for those left at None the device's (bachgan.devices)."""
        if preset and precision and strategy:
            return preset, precision, strategy
        from bachgan.devices import plan

        device = plan()
        given = {"preset": preset, "precision": precision, "strategy": strategy}
        chosen = {k: v or getattr(device, k) for k, v in given.items()}
        auto = ", ".join(f"{k} {chosen[k]}" for k, v in given.items() if v is None)
        self.log(f"training on {device.label}; chosen for it: {auto}")
        return chosen["preset"], chosen["precision"], chosen["strategy"]

    # -- state on disk

    def _failed_before_training(self) -> bool:
        """A run that failed before logging or saving anything holds nothing to lose, so a
        new start with corrected settings may take its folder."""
        status = read_json(self.dir / "status.json", {})
        return (
            isinstance(status, dict)
            and status.get("state") == "failed"
            and not read_jsonl(self.dir / "metrics.jsonl")
            and not complete_dirs(self.dir / "checkpoints", "ckpt")
            and not complete_dirs(self.dir / "exports", "export")
        )

    def start_iteration(self) -> int:
        ckpts = complete_dirs(self.dir / "checkpoints", "ckpt")
        return int(ckpts[-1].name.split("-")[1]) if ckpts else 0

    def _trim_metrics(self, start: int):
        """Keep exactly one line per iteration up to `start` (repairs a torn line)."""
        path = self.dir / "metrics.jsonl"
        rows = [r for r in read_jsonl(path) if isinstance(r.get("iteration"), int)]
        kept = {r["iteration"]: r for r in rows if r["iteration"] <= start}
        rewrite_jsonl(path, [kept[i] for i in sorted(kept)])

    # -- the loop

    def fit(self) -> dict:
        import keras
        import tensorflow as tf

        from bachgan.context import window_table
        from bachgan.data import BAR_STEPS, make_dataset, stack_windows
        from bachgan.model import WGANGP
        from bachgan.presets import Preset

        self._install_signals()
        try:
            lock = acquire_lock()
        except BaseException:
            self._restore_signals()
            raise
        try:
            cfg = self.config
            corpus = open_corpus(cfg["data"])  # a bad --data fails before the run dir is touched
            self._prepare_dir()
            for sub in ("", "checkpoints", "exports", "samples"):
                remove_stale_tmp(self.dir / sub)
            p = Preset.from_dict(cfg["preset"])
            self.preset = p
            start = self.start_iteration() if self.resume else 0
            self._trim_metrics(start)
            self._record_split(corpus.split_names())
            cfg["skipped"] = corpus.skipped
            cfg["device"] = device_name()
            strategy = (
                tf.distribute.MirroredStrategy(_mirrored_devices())
                if cfg["strategy"] == "mirrored"
                else tf.distribute.get_strategy()
            )
            cfg["replicas"] = strategy.num_replicas_in_sync  # devices each step is split over
            atomic_write_json(self.dir / "config.json", cfg)
            before = read_json(self.dir / "status.json", {}) if self.resume else {}
            self.status = Status(
                self.dir,
                started=(before.get("started") if isinstance(before, dict) else None) or now(),
                iterations=cfg["iterations"],
                iteration=start,
                device=cfg["device"],
                preset=p.name,
            )
            self.status.update()

            keras.utils.set_random_seed(cfg["seed"])
            with strategy.scope():
                gan = WGANGP(p, seed=cfg["seed"], precision=run_precision(cfg))
                gan.compile(jit_compile=cfg["jit_compile"] and cfg["strategy"] != "mirrored")
            self.gan = gan
            self.ckpt = tf.train.Checkpoint(
                generator=gan.generator,
                critic=gan.critic,
                g_optimizer=gan.g_optimizer,
                c_optimizer=gan.c_optimizer,
                rng=gan.rng,
            )
            if start:
                self.ckpt.read(str(self.dir / "checkpoints" / f"ckpt-{start:06d}" / "ckpt"))
                self.log(f"resumed from iteration {start}")

            if p.context:  # every meter, each window with its key, phrase ends and bar lines
                table = window_table(corpus.chorales("train", BAR_STEPS), p.hop, WINDOW_STEPS)
                train = table["pitches"]
            else:
                table, train = None, stack_windows(corpus.windows("train", p.hop))
            ds = make_dataset(train, p, seed=cfg["seed"], start_iteration=start, context=table)
            self.samples = sample_set(corpus, p, N_SAMPLES)
            self.eval_set = sample_set(corpus, p, N_EVAL)
            self.sample_z = np.asarray(
                tf.random.stateless_truncated_normal((N_SAMPLES, *p.z_shape), seed=[7, 7])
            )
            # The budget counts logged step seconds only, in this session as in earlier ones,
            # so a resume sees the same spent time the session that stopped saw.
            self.spent = trained_seconds(read_jsonl(self.dir / "metrics.jsonl"))
            out_of_time = self.out_of_time()
            if out_of_time and start < cfg["iterations"]:
                self.log(
                    f"the {cfg['minutes']:g}-minute budget was spent before this resume: nothing "
                    "to train (resume with --no-budget, or a larger --minutes)"
                )
            if start < cfg["iterations"] and not self.stop_requested and not out_of_time:
                gan.fit(
                    ds,
                    epochs=cfg["iterations"],
                    initial_epoch=start,
                    steps_per_epoch=1,
                    shuffle=False,  # the dataset shuffles itself, reproducibly
                    callbacks=[run_callback(self)],
                    verbose=2,
                )
            done = self.status.data["iteration"]
            if done:  # also writes what a killed or disk-full last save left out
                self.save(done)
            state = "finished" if done >= cfg["iterations"] else "stopped"
            self.status.update(state=state, pid=None)
            return self.status.data
        except BaseException as err:
            failure = DiskFull(self._disk_full_message()) if is_disk_full(err) else err
            if hasattr(self, "status"):
                try:
                    self.status.update(
                        state="failed", pid=None, error=f"{type(failure).__name__}: {failure}"
                    )
                except OSError:  # e.g. a disk too full for status.json: keep the real error
                    pass
            if failure is err:
                raise
            raise failure from err
        finally:
            lock.close()
            self._restore_signals()

    def _record_split(self, split: dict):
        """The split this session trains on goes into config.json. A resume whose corpus splits
        differently (a newer BachGAN reads the corpus differently) says so, and keeps the
        earlier sessions' training chorales in `train_earlier`, so the model card's check that
        no test chorale was trained on covers every session."""
        before = self.config.get("split")
        if self.resume and isinstance(before, dict) and before != split:
            earlier = set(before.get("train", [])) | set(self.config.get("train_earlier", []))
            changed = earlier ^ set(split["train"])
            self.log(
                f"the corpus is split differently from this run's earlier sessions ({len(changed)} "
                "training chorales differ); training goes on with today's split"
            )
            self.config["train_earlier"] = sorted(earlier)
        self.config["split"] = split

    def _prepare_dir(self):
        """The run directory exists and takes files, or a ValueError says so (the CLI's status
        2) before anything is written: a read-only disk, a file in the way."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.dir).close()
        except OSError as err:
            if is_disk_full(err):
                raise
            raise ValueError(
                f"cannot write to the run directory {self.dir}: {err.strerror or err}"
            ) from None

    def out_of_time(self) -> bool:
        minutes = self.config.get("minutes")
        return bool(minutes) and self.spent >= minutes * 60

    def _disk_full_message(self) -> str:
        last = self.start_iteration()
        kept = f"the checkpoint of iteration {last} is intact" if last else "no checkpoint yet"
        return (
            f"the disk is full (no space left to write the run in {self.dir}); {kept}. "
            "Free some disk space, then continue with --resume."
        )

    def _install_signals(self):
        """SIGTERM/SIGINT ask for a stop; the callback ends fit() after the iteration.
        Installed first thing, so a stop during start-up also ends cleanly."""
        self.stop_requested = False

        def request_stop(signum, frame):
            self.stop_requested = True
            self.log(f"signal {signum}: stopping after this iteration")

        self._old_handlers = {s: signal.signal(s, request_stop) for s in STOP_SIGNALS}

    def _restore_signals(self):
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)

    def end_iteration(self, iteration: int, logs: dict, seconds: float):
        p = self.preset
        row = {"iteration": iteration, "seconds": round(seconds, 4), "time": time.time()}
        self.spent += row["seconds"]
        row.update({k: float(v) for k, v in logs.items()})
        if iteration % p.metrics_every == 0 or iteration == self.config["iterations"]:
            try:
                row.update(self.musical_metrics())
            except Exception as err:  # a metrics bug must not cost the training run
                row["music_error"] = f"{type(err).__name__}: {err}"
        append_jsonl(self.dir / "metrics.jsonl", row)
        if iteration % p.sample_every == 0:
            try:
                self.write_samples(iteration)
            except Exception as err:
                self.log(f"samples at iteration {iteration} failed: {err}")
        if iteration % p.checkpoint_every == 0:
            self.save(iteration)
        self.status.update(iteration=iteration)

    def generate(self, pitches, voices, z, contexts=None):
        p = self.preset
        rolls = np.stack([to_roll(Voices.from_pitches(w), p.low, p.n_pitches) for w in pitches])
        cond = np.take_along_axis(rolls, voices[:, None, None, None], axis=-1)
        if contexts is not None:
            extra = [context_planes(c, WINDOW_STEPS, p.low, p.n_pitches) for c in contexts]
            cond = np.concatenate([cond, np.stack(extra)], -1)
        with self.gan.averaged() as generator:
            return np.asarray(generator([cond, z, voices], training=False))

    def musical_metrics(self) -> dict:
        """Metrics of fixed held-out melodies after the default clean-up: per condition voice
        on the three voices it generated, then averaged over condition voices."""
        from bachgan import metrics
        from bachgan.model import sample_z

        pitches, voices, contexts = self.eval_set
        z = np.asarray(sample_z(len(pitches), self.preset, seed=99))
        raw = self.generate(pitches, voices, z, contexts)
        results = self.decode(raw, pitches, voices, contexts)
        per_voice = [
            metrics.batch_metrics(
                [r for r, x in zip(results, voices) if x == v], [u for u in range(4) if u != v]
            )
            for v in sorted(set(voices.tolist()))
        ]
        return {f"music/{k}": float(np.mean([m[k] for m in per_voice])) for k in per_voice[0]}

    def decode(self, raw, pitches, voices, contexts=None) -> list:
        from bachgan import sampling

        contexts = contexts or [None] * len(raw)
        return [
            sampling.decode(r, self.preset, Voices.from_pitches(w), v, context=c)
            for r, w, v, c in zip(raw, pitches, voices, contexts)
        ]

    def write_samples(self, iteration: int):
        """The fixed melodies with fixed z: the pianorolls (.npz) and all of them as one MIDI."""
        from bachgan import midi

        pitches, voices, contexts = self.samples
        raw = self.generate(pitches, voices, self.sample_z, contexts)
        path = self.dir / "samples" / f"iter-{iteration:06d}.npz"
        path.parent.mkdir(exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            roll=raw.astype(np.float16),
            melody=pitches,
            voice=voices,
            low=self.preset.low,
            iteration=iteration,
        )
        atomic_write_bytes(path, buf.getvalue())
        pieces = self.decode(raw, pitches, voices, contexts)
        atomic_write_bytes(path.with_suffix(".mid"), midi.to_midi_bytes(Voices.concat(pieces)))

    def save(self, iteration: int):
        """Checkpoint, then export, each only if not there yet: a session killed between the
        two (or out of disk at the export) resumes at that checkpoint with nothing to train,
        and this writes the export it lacks."""
        from bachgan.export import write_export

        ckpt = self.dir / "checkpoints" / f"ckpt-{iteration:06d}"
        if not ckpt.is_dir():
            with atomic_dir(ckpt) as tmp:
                self.ckpt.write(str(tmp / "ckpt"))
                atomic_write_json(tmp / "meta.json", {"iteration": iteration, "time": now()})
        export = self.dir / "exports" / f"export-{iteration:06d}"
        if not export.is_dir():
            with self.gan.averaged() as generator:
                write_export(
                    generator,
                    self.preset,
                    export,
                    iteration=iteration,
                    run=self.dir.name,
                    seed=self.config["seed"],
                    data=self.config["data"],
                    saved=now(),
                )
        for old in complete_dirs(self.dir / "checkpoints", "ckpt")[:-KEEP_CHECKPOINTS]:
            discard_dir(old)
        for old in complete_dirs(self.dir / "exports", "export")[:-KEEP_EXPORTS]:
            discard_dir(old)


def _mirrored_devices():
    """Every logical GPU, else every logical CPU (bachgan.devices)."""
    from bachgan.devices import plan

    return list(plan().devices)


def train(run_dir, **kw) -> dict:
    """Create (or with resume=True continue) a run and train it to the end."""
    return Run(run_dir, **kw).fit()


if __name__ == "__main__":  # pragma: no cover - use `python -m bachgan train`
    sys.exit("use: python -m bachgan train --run-dir DIR")
