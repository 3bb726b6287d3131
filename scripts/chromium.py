"""Debian's Chromium, headless, as the e2e test and the app benchmark drive it through
Playwright: nothing is downloaded, and Chromium is kept from phoning home."""

from __future__ import annotations

from pathlib import Path

PATH = Path("/usr/bin/chromium")
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


def launch(playwright):
    """A browser from a `sync_playwright()` context."""
    return playwright.chromium.launch(executable_path=str(PATH), args=ARGS)
