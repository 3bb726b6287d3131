"""Many people at once: 8 app sessions harmonize in parallel threads (Streamlit's AppTest),
all succeed, and each gets exactly what a lone session gets for the same seed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.testing.v1 import AppTest

from bachgan.melody import builtin_tune
from bachgan.sampling import Harmonizer

ROOT = Path(__file__).resolve().parents[1]
TUNE = "Old Hundredth"
SESSIONS = 8


@pytest.fixture
def compile_one_at_a_time(monkeypatch):
    """A real server compiles each page once, under a lock, into a cache its sessions share.
    AppTest gives every run a cache of its own, so parallel AppTests compile in parallel,
    which CPython 3.11.7 does not survive ("SystemError: AST constructor recursion depth
    mismatch", a race in its AST module). Compile one at a time, as the server does."""
    lock = threading.Lock()
    compile_page = ScriptCache.get_bytecode

    def locked(self, script_path):
        with lock:
            return compile_page(self, script_path)

    monkeypatch.setattr(ScriptCache, "get_bytecode", locked)


def open_session(seed: int) -> AppTest:
    """A visitor who has chosen the tune and the seed, about to click Harmonize."""
    at = AppTest.from_file(str(ROOT / "pages" / "1_Harmonize.py"), default_timeout=300).run()
    at.selectbox(key="h_tune").select(TUNE).run()
    at.number_input(key="h_seed").set_value(seed)
    return at


def click(at: AppTest) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    at.button(key="h_go").click().run()
    elapsed = time.perf_counter() - t0
    assert not at.exception, [e.message for e in at.exception]
    assert at.get("audio") and at.get("plotly_chart")
    return at.session_state["h_result"]["result"].voices.pitches, elapsed


def test_eight_sessions_at_once_match_single_sessions(compile_one_at_a_time):
    lone = Harmonizer()
    expected = {
        s: lone.harmonize(builtin_tune(TUNE, "soprano"), "soprano", seed=s).voices.pitches
        for s in range(SESSIONS)
    }
    # The pages are opened one after another: AppTest's own bookkeeping of widget state is
    # not safe when several AppTests read their widgets at once (a KeyError in
    # streamlit.testing, seen on CI). The clicks - the server's work - then run all at once.
    sessions = [open_session(s) for s in range(SESSIONS)]
    with ThreadPoolExecutor(SESSIONS) as pool:
        results = list(pool.map(click, sessions))
    for seed, (pitches, _) in enumerate(results):
        assert np.array_equal(pitches, expected[seed]), f"session with seed {seed} differs"
    latencies = sorted(t for _, t in results)
    p95 = latencies[int(np.ceil(0.95 * len(latencies))) - 1]
    print(f"\n8 concurrent harmonize clicks: p50 {np.median(latencies):.2f} s, p95 {p95:.2f} s")
