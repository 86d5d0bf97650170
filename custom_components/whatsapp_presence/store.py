"""What one account keeps across restarts, in its private store.

The switch, the manager's state, the groups' members, the tracked contacts' presence (last
seen and its source) and the online times. A saved record of the wrong shape is skipped, with
one warning, and the rest is set up: bad saved data never stops an entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .activity import ActivityTracker
from .bridge.protocol import Contact
from .const import DOMAIN, LOGGER, SAVE_DELAY, STORE_VERSION
from .manager import SubscriptionManager
from .presence import PresenceModel, valid_members


class AccountStore:
    """Loads the account's parts from the entry's store and saves them, soon after a change."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        *,
        manager: SubscriptionManager,
        model: PresenceModel,
        activity: ActivityTracker,
        group_members: dict[str, list[Contact]],
        presence_enabled: Callable[[], bool],
    ) -> None:
        """Keep the parts whose state is saved (they are filled in place on restore)."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORE_VERSION, f"{DOMAIN}.{entry_id}", private=True
        )
        self._manager = manager
        self._model = model
        self._activity = activity
        self._group_members = group_members
        self._presence_enabled = presence_enabled
        self._save_pending = False

    async def async_restore(self) -> bool | None:
        """Load the saved state into the parts; return the saved switch (``None``: none)."""
        data = await self._store.async_load()
        skipped = restore_skipped = 0
        if not isinstance(data, dict):
            skipped += data is not None
            data = {}
        enabled = data.get("presence_enabled")
        if manager_state := data.get("manager"):
            if isinstance(manager_state, dict):
                self._manager.restore(manager_state)
            else:
                restore_skipped += 1
        groups = data.get("groups", {})
        if not isinstance(groups, dict):
            groups, skipped = {}, skipped + 1
        for group_jid, members in groups.items():
            valid = valid_members(members)
            skipped += valid is None
            if isinstance(group_jid, str) and valid is not None:
                self._group_members[group_jid] = valid
        saved_presence = data.get("presence", {})
        if not isinstance(saved_presence, dict):
            saved_presence, skipped = {}, skipped + 1
        skipped += self._model.restore(saved_presence)
        if skipped or restore_skipped:
            LOGGER.warning(
                "Skipped %d saved records of the wrong shape; set up with the rest",
                skipped + restore_skipped,
            )
        try:
            self._activity.restore(data.get("activity", {}))
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            LOGGER.warning("Saved online times could not be read, counting afresh: %r", err)
            self._activity.contacts.clear()
        return enabled if isinstance(enabled, bool) else None

    def to_dict(self) -> dict[str, Any]:
        """What survives a restart, the tracked contacts' last seen included.

        Last seen is kept here only, not also by its sensor as a restore entity: the store
        keeps each figure's source with it, is saved within ``SAVE_DELAY`` of a change (a
        restore state is written every 15 minutes), and keeps the figure of a contact whose
        sensor is disabled. Every version saved it here, so no upgrade finds a last seen only
        in a sensor's restore state (those figures, shown as ``restored``, were saved here too).
        """
        return {
            "presence_enabled": self._presence_enabled(),
            "manager": self._manager.to_dict(),
            "groups": {
                jid: [member.to_payload() for member in members]
                for jid, members in self._group_members.items()
            },
            "presence": self._model.to_store(),
            "activity": self._activity.to_dict(),
        }

    @callback
    def schedule_save(self) -> None:
        """Save within SAVE_DELAY of the first change.

        Store.async_delay_save restarts its timer on every call, so calling it per presence
        event would postpone the save for as long as presence keeps changing.
        """
        if not self._save_pending:
            self._save_pending = True
            self._store.async_delay_save(self._data_for_delayed_save, SAVE_DELAY)

    def _data_for_delayed_save(self) -> dict[str, Any]:
        self._save_pending = False
        return self.to_dict()

    async def async_save(self) -> None:
        """Save now (on shutdown)."""
        await self._store.async_save(self.to_dict())
