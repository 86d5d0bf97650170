"""End-to-end tests run a real ``hass`` process: no in-process test instance of Home Assistant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .chromium import CHROMIUM, LAUNCH_ARGS


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Replaces the suite-wide fixture, which would start an in-process ``hass`` for nothing."""


@pytest.fixture
def page() -> Iterator[Any]:
    """A fresh Chromium page (own profile) on the system's Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=LAUNCH_ARGS,  # Playwright gives every launch a fresh temporary profile
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(30_000)
            yield context.new_page()
        finally:
            browser.close()
