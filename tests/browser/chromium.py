"""What the browser tests share: the system's Chromium, its marks, the login and the launch screen."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.e2e.hass_api import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "artifacts" / "browser"
USER, PASSWORD = "demo", "demo-password"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (Debian: apt-get install chromium; .ci/run does it)",
    ),
]
"""Marks of every browser test: skipped, saying why, where Chromium is not installed."""


def log_in(page: Any, url: str) -> None:
    """The login page, as a user types it; no dialog (e.g. HTTP settings to confirm) after it."""
    page.goto(url, wait_until="domcontentloaded")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("ha-sidebar", timeout=60_000)
    wait_launch_screen_gone(page)
    assert page.get_by_text("Confirm new HTTP server configuration").count() == 0
    assert page.locator("ha-dialog, ha-md-dialog").filter(visible=True).count() == 0


def wait_launch_screen_gone(page: Any) -> None:
    """A full page load fades the launch screen out over the page: wait until it is removed."""
    page.locator("#ha-launch-screen").wait_for(state="detached", timeout=15_000)
