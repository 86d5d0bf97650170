"""A real Home Assistant core in a benchmark script, and an entry of this integration.

Home Assistant is built by pytest-homeassistant-custom-component's ``async_test_home_assistant``
(the object the integration tests run against: real core, registries, bus and state machine)
with custom integrations enabled and a throw-away config directory, so storage writes land in
a temporary folder. The repository root goes first on ``sys.path`` so ``custom_components``
is this repository's package, as in tests/conftest.py (the scripts importing this module put it
there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
import contextlib
import os
from pathlib import Path
import statistics
import tempfile
from typing import Any
from unittest.mock import patch

from aiohttp import ThreadedResolver
from homeassistant import loader
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import aiohttp_client
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_test_home_assistant

import custom_components.whatsapp_presence  # noqa: F401  (binds our package first)
from custom_components.whatsapp_presence.const import (
    CONF_ACCOUNT_JID,
    CONF_BATCH_DELAY,
    CONF_BATCH_SIZE,
    CONF_JID,
    CONF_MAX_PER_MINUTE,
    CONF_MODE,
    CONF_PHONE,
    CONF_PRESET,
    CONF_PRIORITY,
    CONF_PUSH_NAME,
    CONF_SUBSCRIPTION_DELAY,
    DOMAIN,
    MODE_REMOTE,
    SUBENTRY_CONTACT,
)
from custom_components.whatsapp_presence.manager import CUSTOM_PRESET

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_PHONE = "12025550100"
ACCOUNT_JID = f"{ACCOUNT_PHONE}@s.whatsapp.net"
TOKEN = "benchmark-token"  # noqa: S105 - loopback only, a throw-away bridge

FAST_PACING = {
    CONF_PRESET: CUSTOM_PRESET,
    CONF_BATCH_SIZE: 50,
    CONF_BATCH_DELAY: 0.01,
    CONF_SUBSCRIPTION_DELAY: 0.0,
    CONF_MAX_PER_MINUTE: 1_000_000,
}
"""Pacing outside the options flow's safe ranges, so thousands of contacts get subscribed in
seconds: these benchmarks measure Home Assistant's side, not WhatsApp's limits (ceiling.py
and pacing.py do that). The manager accepts these values; the options flow would not."""


class _Resolver(ThreadedResolver):
    """The test harness closes its resolver through ``real_close`` at teardown."""

    async def real_close(self) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def running_hass() -> AsyncIterator[HomeAssistant]:
    """A started Home Assistant with custom integrations enabled, in a temporary config dir."""
    # As the test plugin does: HA's resolver would start zeroconf, which needs the network
    # integration; the bridge is on loopback, so a plain resolver does.
    with (
        tempfile.TemporaryDirectory(prefix="wa-bench-") as config_dir,
        patch.object(aiohttp_client, "_async_make_resolver", lambda hass: _Resolver()),
    ):
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            yield hass
            await hass.async_stop(force=True)


def contact_subentry(jid: str, title: str) -> ConfigSubentryData:
    """A tracked contact as the subentry flow stores it (as in tests/conftest.py)."""
    return ConfigSubentryData(
        data={CONF_JID: jid, CONF_PHONE: jid.split("@", maxsplit=1)[0], CONF_PRIORITY: 2},
        subentry_type=SUBENTRY_CONTACT,
        title=title,
        unique_id=jid,
    )


def make_entry(url: str, token: str, contacts: Iterable[dict[str, Any]]) -> MockConfigEntry:
    """A remote-mode entry to the bridge at ``url`` tracking ``contacts`` (jid, name)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Benchmark",
        unique_id=ACCOUNT_PHONE,
        data={
            CONF_MODE: MODE_REMOTE,
            CONF_URL: url,
            CONF_TOKEN: token,
            CONF_ACCOUNT_JID: ACCOUNT_JID,
            CONF_PUSH_NAME: "Benchmark",
        },
        options=dict(FAST_PACING),
        subentries_data=[contact_subentry(c["jid"], c["name"]) for c in contacts],
    )


def contact_entity_id(hass: HomeAssistant, jid: str, domain: str, key: str) -> str:
    """The entity id of a contact's entity (``binary_sensor``/``online``, ``sensor``/``last_seen``)."""
    from homeassistant.helpers import entity_registry as er

    unique_id = f"{ACCOUNT_PHONE}_{jid.split('@', maxsplit=1)[0]}_{key}"
    entity_id = er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id)
    assert entity_id is not None, f"no entity for {unique_id}"
    return entity_id


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of a process from /proc (KiB)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text(encoding="ascii")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
