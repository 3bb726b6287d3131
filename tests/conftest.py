"""Shared fixtures. Tests never touch the developer's runs or training lock: the cache
(and with it the machine-wide training lock) moves to a temporary folder, seeded with
an already parsed corpus when one exists so the one-minute parse happens at most once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER_CACHE = Path(os.environ.get("BACHGAN_CACHE") or Path.home() / ".cache" / "bachgan")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    from bachgan.data import CACHE_VERSION

    cache = tmp_path_factory.mktemp("bachgan-cache")
    name = f"chorales-v{CACHE_VERSION}.npz"
    if (USER_CACHE / name).is_file():
        shutil.copy(USER_CACHE / name, cache / name)
    old = os.environ.get("BACHGAN_CACHE")
    os.environ["BACHGAN_CACHE"] = str(cache)
    yield cache
    if not (USER_CACHE / name).is_file() and (cache / name).is_file():
        USER_CACHE.mkdir(parents=True, exist_ok=True)  # keep the parse for the next session
        shutil.copy(cache / name, USER_CACHE / name)
    if old is None:
        os.environ.pop("BACHGAN_CACHE", None)
    else:
        os.environ["BACHGAN_CACHE"] = old


@pytest.fixture(scope="session")
def corpus(isolated_cache):
    """The music21 chorales (parsed once per machine, then from the cache)."""
    from bachgan.data import load_corpus

    return load_corpus()


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, isolated_cache):
    """A real generator export from a few `tiny` training iterations."""
    from bachgan.train import train

    run = tmp_path_factory.mktemp("runs") / "tiny"
    # Every setting named: `train` would otherwise pick the precision for the machine.
    train(
        run,
        preset="tiny",
        iterations=5,
        seed=3,
        jit=False,
        precision="float32",
        strategy="default",
        log=lambda *a: None,
    )
    return run


@pytest.fixture
def env(tmp_path, monkeypatch, isolated_cache, corpus):
    """Own runs root and cache dir (so the training lock is this test's); training on.
    The parsed corpus is copied in, so trainers the test starts need not parse again.
    Yields the runs root; stops any trainer the test started."""
    from bachgan import runs
    from bachgan.data import CACHE_VERSION

    root, cache = tmp_path / "runs", tmp_path / "cache"
    root.mkdir()
    cache.mkdir()
    corpus = isolated_cache / f"chorales-v{CACHE_VERSION}.npz"
    if corpus.exists():
        shutil.copy(corpus, cache / corpus.name)
    monkeypatch.setenv("BACHGAN_RUNS", str(root))
    monkeypatch.setenv("BACHGAN_CACHE", str(cache))
    for var in ("BACHGAN_DISABLE_TRAINING", "BACHGAN_ENABLE_TRAINING", "SPACE_ID"):
        monkeypatch.delenv(var, raising=False)
    yield root
    for proc in list(runs._children.values()):  # only the trainers this test started
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)


@pytest.fixture
def deterministic_ops():
    """Op determinism for one test, then back as it was (it is process-wide)."""
    import tensorflow as tf
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    yield
    if not was:
        config.disable_op_determinism()
