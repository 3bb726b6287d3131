"""The real thing: a Streamlit server and headless Chromium, harmonizing through the UI.

Uses Debian's /usr/bin/chromium through the playwright package, so nothing is downloaded at
test time; skipped (with the reason) where that browser is not installed.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import time
import wave
from pathlib import Path
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import app_server  # noqa: E402  scripts/app_server.py: the app as scripts/screenshots.py runs it
import chromium  # noqa: E402  scripts/chromium.py: the same browser as scripts/bench_app.py

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not chromium.PATH.exists(), reason="needs Debian's chromium at /usr/bin"),
]


@contextlib.contextmanager
def serve(log_dir: Path, **env: str):
    """The app on a free port (scripts/app_server.py); a test fails if it does not start."""
    try:
        with app_server.serve(log_dir / "streamlit.log", **env) as url:
            yield url
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("server")) as url:
        yield url


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


# A phone's browser, as Streamlit tells phones apart (by the user agent, not the width).
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)


def new_page(browser, width: int = 1280, phone: bool = False):
    """A page of its own (own session) at a window width: 1280 px desktop, 390 px a phone;
    `phone`: a phone's browser (user agent, touch), not a narrow desktop window."""
    device = dict(user_agent=PHONE_UA, is_mobile=True, has_touch=True) if phone else {}
    pg = browser.new_page(
        viewport={"width": width, "height": 900 if width > 600 else 844}, **device
    )
    pg.set_default_timeout(60_000)
    return pg


@pytest.fixture(scope="module")
def page(browser):
    pg = new_page(browser)
    yield pg
    pg.close()


def open_page(page, title: str) -> None:
    """Click a page in Streamlit's menu: at the top on a desktop, in the sidebar on a phone
    (opened first)."""
    top = page.get_by_test_id("stTopNavLink").filter(has_text=title)
    if top.count():
        top.first.click()
        return
    page.get_by_test_id("stExpandSidebarButton").click()
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).first.click()


def test_a_first_visit_straight_to_a_page_shows_the_menu(server, page):
    """Runs first, on a fresh server: Streamlit is still in its pages/ folder mode, where
    the pages draw their own links (app_state.menu) until the home page has run."""
    page.goto(urljoin(server, "Harmonize"))
    page.get_by_role("heading", name="Harmonize a melody").wait_for()
    menu = page.get_by_test_id("stSidebar")
    for title in ("Home", "Harmonize", "Train", "Explore variations"):
        menu.get_by_text(title, exact=True).wait_for()
    assert "streamlit app" not in menu.inner_text().lower()
    menu.get_by_text("Home", exact=True).click()
    page.get_by_role("heading", name="BachGAN").wait_for()
    # From now on Streamlit's own menu, at the top of a desktop window.
    titles = [t.inner_text() for t in page.get_by_test_id("stTopNavLink").all()]
    assert [t.split()[-1] for t in titles] == ["Home", "Harmonize", "Train", "variations"]


def test_harmonize_a_builtin_tune_in_the_browser(server, page):
    page.goto(server)
    page.get_by_role("heading", name="BachGAN").wait_for()
    open_page(page, "Harmonize")
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


def covered(page, locator) -> bool:
    """Whether something else (an open menu) lies over the middle of an element."""
    box = locator.bounding_box()
    x, y = box["x"] + min(box["width"] / 2, 40), box["y"] + box["height"] / 2
    return not page.evaluate(
        "([el, x, y]) => el.contains(document.elementFromPoint(x, y))",
        [locator.element_handle(), x, y],
    )


def test_the_phone_menu_closes_when_a_page_is_tapped(server, browser):
    """Issue 17, item 2: on a phone the menu stayed open over the page that was tapped.
    Streamlit's own menu closes itself on a phone (it tells one by its user agent); in a
    desktop window as narrow as a phone it stays open until a click on the page."""
    page = new_page(browser, 390, phone=True)
    try:
        page.goto(server)
        page.get_by_role("heading", name="BachGAN").wait_for()
        for title, heading in [("Harmonize", "Harmonize a melody"), ("Train", "Train a model")]:
            page.get_by_test_id("stExpandSidebarButton").click()
            link = page.get_by_test_id("stSidebarNavLink").filter(has_text=title).first
            link.wait_for()
            page.wait_for_function(  # slid in, over the page
                "() => document.querySelector('[data-testid=stSidebar]')"
                ".getBoundingClientRect().left >= 0"
            )
            time.sleep(0.5)
            assert not covered(page, link)
            link.click()
            shown = page.get_by_role("heading", name=heading)
            shown.wait_for()
            page.wait_for_function(
                "() => document.querySelector('[data-testid=stSidebar]')"
                ".getBoundingClientRect().right <= 0"
            )  # slid away
            assert not covered(page, shown), f"the menu covers {title}"
        assert page.get_by_test_id("stException").count() == 0
    finally:
        page.close()


@pytest.mark.skip(reason="times out waiting for the step player on main; to fix next stop")
def test_explore_favourite_origin_re_roll_count_and_step_player(server, page):
    """Issue 17, item 6 in a browser: a step of A -> B plays on its own beside the whole
    path, a kept step says how it was made, and one re-roll reads '1 re-roll'."""
    page.goto(urljoin(server, "Explore_latent"))
    page.get_by_role("heading", name="Explore variations").wait_for()
    page.get_by_role("button", name="Blend", exact=True).click()
    page.get_by_text("The whole path as one piece").wait_for()
    page.get_by_text("Step A on its own").wait_for()
    page.locator("audio").nth(1).wait_for(state="attached")
    page.get_by_role("button", name="☆ Keep").wait_for()  # the step's part is drawn
    assert page.locator("audio").count() == 2  # the whole path and the step
    path_src = page.locator("audio").nth(0).get_attribute("src")
    step_src = page.locator("audio").nth(1).get_attribute("src")
    assert path_src != step_src
    page.get_by_role("combobox", name="Step").click()
    page.keyboard.type("B")  # the box filters its options as one types
    page.keyboard.press("Enter")
    page.get_by_text("Step B on its own").wait_for()
    page.wait_for_function(
        "src => document.querySelectorAll('audio')[1]?.getAttribute('src') !== src", arg=step_src
    )  # the player plays the chosen step
    page.get_by_role("button", name="☆ Keep").click()
    page.get_by_role("tab", name="☆ Kept").click()
    page.get_by_text("between seed 1 (A) and seed 2 (B), step B").wait_for()
    assert page.get_by_text("re-rolled bars").count() == 0

    page.get_by_role("tab", name="Re-roll").click()
    page.get_by_role("button", name="🎲 Re-roll bar 1").click()
    page.get_by_text(re.compile(r"bar 1 ← seed \d+")).wait_for()
    title = page.locator(".js-plotly-plot .gtitle").first
    title.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot .gtitle')?.textContent.includes('re-roll')"
    )
    assert "1 re-roll" in title.text_content() and "1 re-rolls" not in title.text_content()
    assert page.get_by_test_id("stException").count() == 0


# ---------------------------------------------------------------- Train: item 7


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """A runs folder with one run 'live' that the app takes as training: its status says
    running, with the pid of a stand-in process whose command line names the run folder
    (bachgan.runs checks that), and two samples. Yields (runs root, run folder)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_train_page import fake_run

    root = tmp_path_factory.mktemp("runs")
    run = fake_run(root, "live", "running")
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", str(run)])
    status = json.loads((run / "status.json").read_text())
    status |= {"pid": stand_in.pid, "iterations": 1000}
    (run / "status.json").write_text(json.dumps(status))
    try:
        yield root, run
    finally:
        stand_in.terminate()
        stand_in.wait()


@pytest.fixture(scope="module")
def train_server(tmp_path_factory, live_run):
    with serve(tmp_path_factory.mktemp("train-server"), BACHGAN_RUNS=str(live_run[0])) as url:
        yield url


@pytest.mark.parametrize("width", [1280, 390])
def test_a_sample_being_listened_to_keeps_playing_when_a_newer_one_arrives(
    train_server, browser, live_run, width
):
    """Issue 17, item 7: the sample player stopped and rewound when a new sample came. Now
    the player is not reloaded by the page's refreshes; a button offers the newest."""
    samples = live_run[1] / "samples"
    for old in samples.glob("*.npz"):  # the other width's new sample goes
        if old.name not in ("iter-000005.npz", "iter-000010.npz"):
            old.unlink()
    page = new_page(browser, width)
    try:
        page.goto(urljoin(train_server, "Train?run=live"))
        page.get_by_text("training", exact=False).first.wait_for()
        audio = page.locator("audio")
        audio.first.wait_for(state="attached")
        assert audio.count() == 1
        page.get_by_test_id("stAudio").scroll_into_view_if_needed()
        audio.evaluate(
            """a => {
                window.__player = a;
                window.__reloaded = false;
                for (const e of ['emptied', 'loadstart', 'abort'])
                    a.addEventListener(e, () => { window.__reloaded = true; });
                a.loop = true;  // a 2-bar sample is shorter than the wait for a refresh
            }"""
        )
        box = page.get_by_test_id("stAudio").bounding_box()
        page.mouse.click(box["x"] + 20, box["y"] + box["height"] / 2)  # the play button
        page.wait_for_function("() => !window.__player.paused && window.__player.currentTime > 0.3")

        (samples / "iter-000015.npz").write_bytes((samples / "iter-000005.npz").read_bytes())
        newest = page.get_by_role("button", name=re.compile("newer sample is ready"))
        newest.wait_for(timeout=40_000)  # the samples part rereads the run every 15 s
        time.sleep(1)
        state = page.evaluate(
            """() => ({same: document.querySelector('audio') === window.__player,
                       reloaded: window.__reloaded, paused: window.__player.paused,
                       t: window.__player.currentTime})"""
        )
        assert state["same"] and not state["reloaded"] and not state["paused"], state
        assert "iteration 15" in newest.inner_text()

        newest.click()  # the listener asks for the newest: now the player changes
        page.wait_for_function("() => window.__reloaded")
        assert page.get_by_test_id("stException").count() == 0
    finally:
        page.close()
