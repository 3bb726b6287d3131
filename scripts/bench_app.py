"""Time the real app in a real browser: server start to a usable home page, and clicks on
Harmonize to an audio player on the page. Prints JSON. Needs Debian's /usr/bin/chromium and
the playwright package (requirements-dev.txt).

    .venv/bin/python scripts/bench_app.py [--clicks 5]
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

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TUNES = ["Twinkle, Twinkle, Little Star", "Old Hundredth", "Frère Jacques"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clicks", type=int, default=5)
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
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_role("button", name="Harmonize a tune now").wait_for()
            out["home_usable_s"] = round(time.perf_counter() - t0, 2)
            page.get_by_test_id("stSidebarNav").get_by_text("Harmonize").click()
            page.get_by_role("heading", name="Harmonize a melody").wait_for()
            times = []
            for i in range(args.clicks):
                tune = TUNES[i % len(TUNES)]
                page.get_by_role("combobox", name="Tune").click()
                page.get_by_role("option", name=tune).click()
                t = time.perf_counter()
                page.get_by_role("button", name="Harmonize", exact=True).click()
                page.get_by_text(f"{tune}: four voices").wait_for()
                page.locator("audio").first.wait_for(state="attached")
                times.append(time.perf_counter() - t)
            out["click_to_audio_s"] = [round(x, 2) for x in times]
            out["click_to_audio_median_s"] = round(statistics.median(times), 2)
            out["tunes"] = TUNES
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
