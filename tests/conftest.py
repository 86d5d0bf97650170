"""Shared fixtures.

pytest-homeassistant-custom-component ships its own ``custom_components``
package and puts its test config folder first on ``sys.path``; importing this
repository's package here, before any test runs, binds ours first.
"""

from __future__ import annotations

import pytest

import custom_components.whatsapp_presence  # noqa: F401  (binds our package first)


@pytest.fixture(scope="session")
def neonize_loaded() -> None:
    """Import neonize once per session, before any test's cleanup check starts.

    Importing neonize loads its Go library and starts a daemon log-worker
    thread that lives as long as the process. Home Assistant's test plugin
    fails a test that leaves a new thread behind, so the import happens in
    this session-scoped fixture, whose thread then predates every test.
    """
    import neonize.aioze.client  # noqa: F401


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""
