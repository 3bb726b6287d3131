"""Time the real app in a real browser: server start to a usable home page, and clicks on
Harmonize to an audio player on the page. Prints JSON. Needs Debian's /usr/bin/chromium and
the playwright package (requirements-dev.txt).

    .venv/bin/python scripts/bench_app.py [--clicks 7]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import chromium  # scripts/chromium.py, beside this file
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for bachgan, to count a tune's bars
TUNES = ["Twinkle, Twinkle, Little Star", "Old Hundredth", "Frère Jacques"]
AUDIO_SRC = "() => { const a = document.querySelector('audio'); return a ? a.src : null; }"
NEW_PLAYER = f"old => ({AUDIO_SRC})() && ({AUDIO_SRC})() !== old"


def choose(page, tune: str) -> None:
    page.get_by_role("combobox", name="Tune").click()
    page.get_by_role("option", name=tune).click()


def bars(tune: str) -> int:
    from bachgan.melody import builtin_tune
    from bachgan.voices import STEPS_PER_BAR

    return -(-builtin_tune(tune).steps // STEPS_PER_BAR)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clicks", type=int, default=7)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]
    t0 = time.perf_counter()
    server = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    out = {"machine_load_1min": os.getloadavg()[0]}
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        out["server_health_s"] = round(time.perf_counter() - t0, 2)
        with sync_playwright() as p:
            browser = chromium.launch(p)
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_role("button", name="Harmonize a tune now").wait_for()
            out["home_usable_s"] = round(time.perf_counter() - t0, 2)
            page.get_by_test_id("stTopNavLink").filter(has_text="Harmonize").click()  # the menu
            page.get_by_role("heading", name="Harmonize a melody").wait_for()
            clicks = []
            for i in range(args.clicks):
                tune = TUNES[i % len(TUNES)]
                if i == 0:  # the server's first harmonization: the Harmonize button
                    choose(page, tune)
                    button = page.get_by_role("button", name="Harmonize", exact=True)
                else:  # once a result shows, a new tune harmonizes by itself: let it settle,
                    # then time a click on "Another variation" (a new seed, same tune)
                    old = page.evaluate(AUDIO_SRC)
                    choose(page, tune)
                    if i >= len(TUNES):  # the same tune as before: nothing reruns
                        old = None
                    page.wait_for_function(NEW_PLAYER, arg=old)
                    time.sleep(1.0)
                    button = page.get_by_role("button", name="🎲 Another variation", exact=True)
                old = page.evaluate(AUDIO_SRC)
                t = time.perf_counter()
                button.click()
                # A new player (not the previous result's, still on the page while the script
                # reruns), then that player holding enough audio to start playing.
                page.wait_for_function(NEW_PLAYER, arg=old)
                attached = time.perf_counter() - t
                page.wait_for_function("() => document.querySelector('audio').readyState >= 2")
                playable = time.perf_counter() - t
                clicks.append(
                    {"tune": tune, "bars": bars(tune), "player_s": attached, "playable_s": playable}
                )
                time.sleep(1.0)  # let the browser finish drawing before the next click
            out["clicks"] = [
                {k: round(v, 2) if isinstance(v, float) else v for k, v in c.items()}
                for c in clicks
            ]
            for key in ("player_s", "playable_s"):
                per = {}
                for c in clicks[1:]:  # the first click of a server is reported on its own
                    per.setdefault(c["tune"], []).append(c[key])
                out[f"first_click_{key}"] = round(clicks[0][key], 2)
                out[f"median_{key}"] = {t: round(statistics.median(v), 2) for t, v in per.items()}
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
