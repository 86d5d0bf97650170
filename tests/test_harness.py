"""The pinned stack loads together: Home Assistant loads the integration, neonize imports."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
import pytest

import custom_components.whatsapp_presence as package
from custom_components.whatsapp_presence.const import DOMAIN


async def test_home_assistant_loads_this_integration(hass: HomeAssistant) -> None:
    """Home Assistant finds our package (not phcc's placeholder) and sets it up."""
    integration = await async_get_integration(hass, DOMAIN)
    assert Path(integration.file_path) == Path(package.__file__).parent
    assert integration.manifest["iot_class"] == "cloud_push"
    assert await async_setup_component(hass, DOMAIN, {})
    assert DOMAIN in hass.config.components


async def test_config_flow_starts(hass: HomeAssistant) -> None:
    """Adding the integration from the UI opens the first step."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"


@pytest.mark.usefixtures("neonize_loaded")
async def test_neonize_client_constructs_offline(tmp_path: Path) -> None:
    """neonize 0.5.2 imports beside Home Assistant's protobuf and builds a client with no network."""

    def build() -> tuple[str, bool]:
        import google.protobuf
        from neonize.aioze.client import NewAClient

        database = tmp_path / "session.sqlite3"
        client = NewAClient(str(database), uuid="harness-test")
        return google.protobuf.__version__, client.uuid == b"harness-test"

    protobuf_version, uuid_ok = await asyncio.to_thread(build)
    assert protobuf_version.startswith("7.")
    assert uuid_ok


@pytest.mark.parametrize(
    ("logger", "level", "message", "problem"),
    [
        ("custom_components.whatsapp_presence.launcher", logging.WARNING, "bridge exited", True),
        ("custom_components.whatsapp_presence", logging.ERROR, "failed", True),
        ("custom_components.whatsapp_presence.coordinator", logging.INFO, "connected", False),
        ("custom_components.whatsapp_presence_other", logging.ERROR, "not ours", False),
        ("homeassistant.loader", logging.WARNING, "We found a custom integration", False),
        (
            "homeassistant.helpers.frame",
            logging.WARNING,
            "Detected that custom integration 'whatsapp_presence' calls async_forward...",
            True,
        ),
    ],
)
def test_end_to_end_log_check_reads_home_assistant_lines(
    logger: str, level: int, message: str, problem: bool
) -> None:
    """The e2e log check finds this integration's warnings in hass's console format, and
    nothing else."""
    from homeassistant.const import FORMAT_DATETIME

    from .e2e.hass_api import LOG_PROBLEM

    # Home Assistant's console format (homeassistant.bootstrap.async_enable_logging).
    fmt = "%(asctime)s.%(msecs)03d %(levelname)s (%(threadName)s) [%(name)s] %(message)s"
    formatter = logging.Formatter(fmt, datefmt=FORMAT_DATETIME)
    record = logging.LogRecord(logger, level, __file__, 1, message, None, None)
    line = formatter.format(record)
    assert bool(LOG_PROBLEM.search(line)) is problem, line
