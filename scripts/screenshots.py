"""Screenshots of the app's pages at 1280 px (a desktop) and 390 px (a phone), for the
README's app section: `.venv/bin/python scripts/screenshots.py` (about a minute).

Starts the app as the e2e test does (scripts/app_server.py) with an empty runs folder,
drives Debian's Chromium through Playwright, and writes docs/screenshots/<page>-<width>.png.
Harmonize and Explore are shown scrolled to a result, Train to how the shipped model
learned. Emoji need a colour emoji font (Debian: fonts-noto-color-emoji), or they show as boxes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parent))
import app_server  # noqa: E402
import chromium  # noqa: E402

OUT = app_server.ROOT / "docs" / "screenshots"
WIDTHS = {1280: 860, 390: 844}  # width -> viewport height
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36"
)


def settle(page, seconds: float = 1.5) -> None:
    """Wait until the script has finished running, then for the charts to draw."""
    page.wait_for_selector("[data-test-script-state=notRunning]", timeout=120_000)
    time.sleep(seconds)


def home(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="BachGAN").wait_for()
    page.locator("audio").first.wait_for(state="attached")


def harmonize(page, url: str) -> None:
    page.goto(urljoin(url, "Harmonize"))
    page.get_by_role("heading", name="Harmonize a melody").wait_for()
    page.get_by_role("button", name="Harmonize", exact=True).click()
    result = page.get_by_text("Ode to Joy (Beethoven): four voices")
    result.wait_for()
    page.locator(".js-plotly-plot .bars path").first.wait_for(state="attached")
    settle(page)
    result.evaluate("e => e.scrollIntoView({block: 'start'})")


def train(page, url: str) -> None:
    page.goto(urljoin(url, "Train"))
    page.get_by_role("heading", name="Train a model").wait_for()
    learned = page.get_by_role("heading", name="How the shipped model learned")
    learned.wait_for()  # training told in words, then the curves
    settle(page)
    learned.evaluate("e => e.scrollIntoView({block: 'start'})")


def explore(page, url: str) -> None:
    page.goto(urljoin(url, "Explore_latent"))
    page.get_by_role("heading", name="Explore variations").wait_for()
    page.get_by_role("button", name="Blend", exact=True).click()
    page.get_by_text("The whole path as one piece").wait_for()
    settle(page)
    page.locator(".js-plotly-plot").first.evaluate("e => e.scrollIntoView({block: 'start'})")


PAGES = {"home": home, "harmonize": harmonize, "train": train, "explore": explore}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        with app_server.serve(Path(tmp) / "streamlit.log", BACHGAN_RUNS=str(runs)) as url:
            with sync_playwright() as p:
                browser = chromium.launch(p)
                home(browser.new_page(), url)  # the first run leaves the pages/ folder mode
                for width, height in WIDTHS.items():
                    phone = width < 600
                    device = {"user_agent": PHONE_UA, "is_mobile": True} if phone else {}
                    for name, show in PAGES.items():
                        page = browser.new_page(
                            viewport={"width": width, "height": height}, **device
                        )
                        page.set_default_timeout(120_000)
                        show(page, url)
                        settle(page)
                        path = args.out / f"{name}-{width}.png"
                        page.screenshot(path=str(path))
                        print(f"{path.relative_to(app_server.ROOT)}: {path.stat().st_size:,} B")
                        page.close()
                browser.close()


if __name__ == "__main__":
    main()
