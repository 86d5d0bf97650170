"""The manager knows nothing of Home Assistant, so its tests need no ``hass`` instance."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the suite-wide fixture that would start Home Assistant for every test."""
