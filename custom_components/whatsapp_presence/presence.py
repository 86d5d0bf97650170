"""The presence model: who is tracked, what is known of each contact, and what is shown.

No bridge, no timers, no entities: the coordinator feeds it presence and trust and tells the
entities what changed. Its rules: nothing is guessed (``None`` is unknown), a state is shown
only while it can be trusted, and a contact tracked on its own keeps its own device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.util import dt as dt_util

from .bridge.protocol import Contact, jid_to_phone
from .const import CONF_JID, CONF_PRIORITY, SUBENTRY_CONTACT, SUBENTRY_GROUP
from .manager import Priority


@dataclass(slots=True)
class TrackedContact:
    """A contact whose presence is followed, and the subentry that owns its device."""

    jid: str
    name: str | None
    priority: int
    subentry_id: str


@dataclass(slots=True)
class ContactPresence:
    """What is known of a contact's presence. ``None`` means unknown, never a guess."""

    online: bool | None = None
    last_seen: datetime | None = None
    last_seen_source: str | None = None  # "whatsapp", "observed", "sampled" or "restored"


def wanted_contacts(
    subentries: Iterable[ConfigSubentry],
    group_members: Mapping[str, list[Contact]],
    account_jid: str,
    limit: int,
) -> tuple[dict[str, TrackedContact], bool]:
    """The contacts the subentries ask for, and whether groups asked for more than ``limit``.

    Contact subentries come first: a contact tracked on its own keeps its own device, with
    the higher of its priorities. Group members after them, up to ``limit`` contacts; the
    linked account itself is never one.
    """
    subentries = list(subentries)
    wanted: dict[str, TrackedContact] = {}
    for subentry in subentries:
        priority = int(subentry.data.get(CONF_PRIORITY, Priority.MEDIUM))
        if subentry.subentry_type == SUBENTRY_CONTACT:
            jid = subentry.data[CONF_JID]
            wanted[jid] = TrackedContact(jid, subentry.title, priority, subentry.subentry_id)
    over_limit = False
    for subentry in subentries:
        if subentry.subentry_type != SUBENTRY_GROUP:
            continue
        priority = int(subentry.data.get(CONF_PRIORITY, Priority.MEDIUM))
        for member in group_members.get(subentry.data[CONF_JID], []):
            jid = member.jid
            if jid == account_jid:
                continue
            if jid in wanted:
                wanted[jid].priority = min(wanted[jid].priority, priority)
                continue
            if len(wanted) >= limit:
                over_limit = True
                continue
            wanted[jid] = TrackedContact(jid, member.name, priority, subentry.subentry_id)
    return wanted, over_limit


def ranked_first(contacts: Iterable[TrackedContact], count: int) -> set[str]:
    """The ``count`` contacts of highest priority (1 is the highest)."""
    ranked = sorted(contacts, key=lambda contact: contact.priority)
    return {contact.jid for contact in ranked[: max(0, count)]}


class PresenceModel:
    """The tracked contacts, what is known of their presence, and what is shown of it.

    ``trusted(jid)`` says whether a contact's last reported state may still be shown (the
    subscription manager decides: a live subscription, or a short enough outage).
    """

    def __init__(self, trusted: Callable[[str], bool]) -> None:
        """Start with nobody tracked."""
        self._trusted = trusted
        self.tracked: dict[str, TrackedContact] = {}
        self.presence: dict[str, ContactPresence] = {}
        self.shown: dict[str, bool | None] = {}
        """Each contact's online state as last shown (None: unknown), to notice changes."""

    def shown_online(self, jid: str) -> bool | None:
        """The online state to show: the last one reported while it can be trusted, else None.

        After a reconnect or a lost link, a contact's last state stays shown only while its
        subscription is live or within the manager's trust gap of losing it (a short outage
        changes nothing); past that it may be wrong, so it is unknown until presence comes.
        """
        presence = self.presence.get(jid)
        if presence is None or presence.online is None or not self._trusted(jid):
            return None
        return presence.online

    def changed_shown(self, jids: Iterable[str]) -> Iterator[tuple[str, bool | None]]:
        """The contacts among ``jids`` whose shown state changed, each recorded as shown."""
        for jid in jids:
            shown = self.shown_online(jid)
            if self.shown.get(jid) == shown:
                continue
            self.shown[jid] = shown
            yield jid, shown

    def forget_online(self) -> None:
        """Nothing is seen any more (switched off): every online state becomes unknown."""
        for presence in self.presence.values():
            presence.online = None
        self.shown.clear()

    def track(self, wanted: dict[str, TrackedContact]) -> tuple[list[str], list[TrackedContact]]:
        """Follow ``wanted``; returns the contacts dropped, and those new or re-prioritised.

        A dropped contact's presence is forgotten; a kept one's stays.
        """
        dropped = [jid for jid in self.tracked if jid not in wanted]
        for jid in dropped:
            self.presence.pop(jid, None)
            self.shown.pop(jid, None)
        queued = [
            contact
            for jid, contact in wanted.items()
            if (previous := self.tracked.get(jid)) is None or previous.priority != contact.priority
        ]
        for jid in wanted:
            self.presence.setdefault(jid, ContactPresence())
        self.tracked = wanted
        return dropped, queued

    def restore(self, saved: Mapping[Any, Any]) -> int:
        """Take back saved last seen figures; returns how many records were of the wrong shape."""
        skipped = 0
        for jid, record in saved.items():
            restored = restore_presence(record)
            if restored is None:
                skipped += 1
            elif restored.last_seen is not None:
                self.presence[jid] = restored
        return skipped

    def to_store(self) -> dict[str, dict[str, str | None]]:
        """The tracked contacts' last seen and its source (presence itself is never kept)."""
        return {
            jid: {"last_seen": p.last_seen.isoformat(), "source": p.last_seen_source}
            for jid, p in self.presence.items()
            if p.last_seen is not None and jid in self.tracked
        }


def valid_members(members: Any) -> list[Contact] | None:
    """A group's saved members, or None when they are of the wrong shape."""
    if not isinstance(members, list):
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("jid"), str) for m in members):
        return None
    return [
        Contact(
            m["jid"],
            phone if isinstance(phone := m.get("phone"), str) else jid_to_phone(m["jid"]),
            name if isinstance(name := m.get("name"), str) else None,
        )
        for m in members
    ]


def restore_presence(saved: Any) -> ContactPresence | None:
    """A contact's saved last seen, or None when the record is of the wrong shape."""
    if not isinstance(saved, dict):
        return None
    last_seen, source = saved.get("last_seen"), saved.get("source")
    if last_seen is None:
        return ContactPresence()
    if not isinstance(last_seen, str) or not (source is None or isinstance(source, str)):
        return None
    try:
        parsed = dt_util.parse_datetime(last_seen)
    except ValueError:
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return ContactPresence(last_seen=parsed, last_seen_source=source)
