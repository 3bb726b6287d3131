"""The real thing: a Streamlit server and headless Chromium, harmonizing through the UI.

Uses Debian's /usr/bin/chromium through the playwright package, so nothing is downloaded at
test time; skipped (with the reason) where that browser is not installed.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import chromium  # noqa: E402  scripts/chromium.py: the same browser as scripts/bench_app.py

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not chromium.PATH.exists(), reason="needs Debian's chromium at /usr/bin"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run` on a free port; yields the base URL and stops the server afterwards."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "streamlit.log").open("w+")
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py"]
    cmd += ["--server.headless", "true", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"streamlit did not come up:\n{log.read()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    sync_playwright = sync_api.sync_playwright

    with sync_playwright() as p:
        b = chromium.launch(p)
        try:
            yield b
        finally:
            b.close()


def new_page(browser, width: int = 1280):
    """A page of its own (own session) at a window width: 1280 px desktop, 390 px a phone."""
    pg = browser.new_page(viewport={"width": width, "height": 900 if width > 600 else 844})
    pg.set_default_timeout(60_000)
    return pg


@pytest.fixture(scope="module")
def page(browser):
    pg = new_page(browser)
    yield pg
    pg.close()


def test_a_first_visit_straight_to_a_page_shows_the_menu(server, page):
    """Runs first, on a fresh server: Streamlit is still in its pages/ folder mode."""
    page.goto(urljoin(server, "Harmonize"))
    page.get_by_role("heading", name="Harmonize a melody").wait_for()
    menu = page.get_by_test_id("stSidebar")
    for title in ("Home", "Harmonize", "Train", "Explore variations"):
        menu.get_by_text(title, exact=True).wait_for()
    assert "streamlit app" not in menu.inner_text().lower()
    menu.get_by_text("Home", exact=True).click()
    page.get_by_role("heading", name="BachGAN").wait_for()


def test_harmonize_a_builtin_tune_in_the_browser(server, page):
    page.goto(server)
    page.get_by_role("heading", name="BachGAN").wait_for()
    page.get_by_test_id("stSidebar").get_by_text("Harmonize", exact=True).click()
    page.get_by_role("heading", name="Harmonize a melody").wait_for()
    # Built-in tunes are the default source: open the tune list and pick one.
    page.get_by_role("combobox", name="Tune").click()
    page.get_by_role("option", name="Twinkle, Twinkle, Little Star").click()
    page.get_by_role("button", name="Harmonize", exact=True).click()

    page.get_by_text("Twinkle, Twinkle, Little Star: four voices").wait_for()
    page.locator("audio").first.wait_for(state="attached")
    page.locator(".js-plotly-plot .bars path").first.wait_for(state="attached")
    assert page.locator("audio").count() == 1
    assert page.locator(".js-plotly-plot .bars path").count() > 10  # the notes are drawn
    assert page.get_by_test_id("stException").count() == 0

    # The player gets the light preview; the WAV download is made, in full, when clicked.
    src = page.locator("audio").first.get_attribute("src")
    player = _wav_format(page.request.get(urljoin(page.url, src)).body())
    assert player == (1, 22050)
    with page.expect_download() as download:
        page.get_by_role("button", name="⬇ WAV").click()
    assert _wav_format(Path(download.value.path()).read_bytes()) == (2, 44100)
    assert page.get_by_test_id("stException").count() == 0

    # The Score tab engraves the same result as sheet music (drawn when opened).
    page.get_by_role("tab", name="🎼 Score").click()
    score = page.locator("img[src^='data:image/svg+xml']").first
    score.wait_for()
    assert score.bounding_box()["width"] > 300 and score.bounding_box()["height"] > 200
    assert page.locator(".js-plotly-plot").count() == 0  # the pianoroll tab is not drawn
    assert page.get_by_test_id("stException").count() == 0


def _wav_format(data: bytes) -> tuple[int, int]:
    """(channels, sample rate) of WAV bytes that hold some sound."""
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnframes() > w.getframerate(), "at least a second of audio"
        return w.getnchannels(), w.getframerate()


def test_home_one_click_lands_on_a_result(server, page):
    page.goto(server)
    page.get_by_role("button", name="Harmonize a tune now").click()
    page.get_by_text("Ode to Joy (Beethoven): four voices").wait_for()
    page.locator("audio").first.wait_for(state="attached")
    # The player is drawn before the pianoroll (it comes first on the page): wait for both.
    page.locator(".js-plotly-plot .bars path").first.wait_for(state="attached")
    assert page.locator(".js-plotly-plot .bars path").count() > 10
    assert page.get_by_test_id("stException").count() == 0


@pytest.mark.parametrize("width", [1280, 390])
def test_the_tune_box_keeps_the_tune_chosen_after_a_visit_to_the_upload(server, browser, width):
    """Issue 17, item 1: back from "Upload a MIDI file", the Tune box showed the first tune
    while the result was still the one chosen, and the next click harmonized the first tune."""
    from bachgan.melody import builtin_tune
    from bachgan.midi import to_midi_bytes

    page = new_page(browser, width)
    try:
        page.goto(urljoin(server, "Harmonize"))
        page.get_by_role("heading", name="Harmonize a melody").wait_for()
        page.get_by_role("combobox", name="Tune").click()
        page.get_by_role("option", name="Frère Jacques").click()
        page.get_by_role("button", name="Harmonize", exact=True).click()
        page.get_by_text("Frère Jacques: four voices (variation 0)").wait_for()

        page.get_by_text("Upload a MIDI file", exact=True).click()
        midi = to_midi_bytes(builtin_tune("Old Hundredth"), tempo=96)
        page.locator("input[type=file]").set_input_files(
            files=[{"name": "hymn.mid", "mimeType": "audio/midi", "buffer": midi}]
        )
        page.get_by_text("hymn.mid: four voices").wait_for()  # harmonized at once

        page.get_by_text("Built-in tune", exact=True).click()
        page.get_by_text("Frère Jacques: four voices (variation 0)").wait_for()
        box = page.get_by_role("combobox", name="Tune")
        assert box.input_value() == "Frère Jacques"

        # The next click harmonizes the tune the box shows (a new seed, so a new heading).
        page.get_by_role("button", name="🎲 Another variation", exact=True).click()
        heading = page.get_by_text(re.compile(r": four voices \(variation [1-9]"))
        heading.wait_for()
        assert heading.inner_text().startswith("Frère Jacques"), heading.inner_text()
        assert box.input_value() == "Frère Jacques"
        assert page.get_by_test_id("stException").count() == 0
    finally:
        page.close()
