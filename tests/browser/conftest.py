"""End-to-end tests run a real ``hass`` process: no in-process test instance of Home Assistant."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Replaces the suite-wide fixture, which would start an in-process ``hass`` for nothing."""
