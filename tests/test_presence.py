"""The presence model on its own: which contacts are tracked, and what is shown of them."""

from __future__ import annotations

from types import MappingProxyType

from homeassistant.config_entries import ConfigSubentry

from custom_components.whatsapp_presence.bridge.protocol import Contact
from custom_components.whatsapp_presence.const import (
    CONF_JID,
    CONF_PRIORITY,
    SUBENTRY_CONTACT,
    SUBENTRY_GROUP,
)
from custom_components.whatsapp_presence.presence import (
    PresenceModel,
    TrackedContact,
    ranked_first,
    wanted_contacts,
)

ACCOUNT = "100@s.whatsapp.net"
GROUP = "555@g.us"


def _subentry(kind: str, jid: str, title: str, priority: int) -> ConfigSubentry:
    return ConfigSubentry(
        data=MappingProxyType({CONF_JID: jid, CONF_PRIORITY: priority}),
        subentry_type=kind,
        title=title,
        unique_id=jid,
    )


def test_a_contact_tracked_on_its_own_keeps_its_device_and_the_higher_priority() -> None:
    """Group members come after contact subentries, never the account, up to the limit."""
    own = _subentry(SUBENTRY_CONTACT, "1@s.whatsapp.net", "Ann", 3)
    group = _subentry(SUBENTRY_GROUP, GROUP, "Family", 1)
    members = {
        GROUP: [
            Contact("1@s.whatsapp.net", "1", "Ann in the group"),
            Contact(ACCOUNT, "100", "Me"),
            Contact("2@s.whatsapp.net", "2", "Bo"),
            Contact("3@s.whatsapp.net", "3", None),
        ]
    }
    wanted, over = wanted_contacts([group, own], members, ACCOUNT, limit=3)
    assert wanted == {
        "1@s.whatsapp.net": TrackedContact("1@s.whatsapp.net", "Ann", 1, own.subentry_id),
        "2@s.whatsapp.net": TrackedContact("2@s.whatsapp.net", "Bo", 1, group.subentry_id),
        "3@s.whatsapp.net": TrackedContact("3@s.whatsapp.net", None, 1, group.subentry_id),
    }
    assert not over
    wanted, over = wanted_contacts([group, own], members, ACCOUNT, limit=2)
    assert list(wanted) == ["1@s.whatsapp.net", "2@s.whatsapp.net"]
    assert over


def test_ranked_first_takes_the_highest_priorities() -> None:
    """Insights go to the most important contacts first; no room, nobody."""
    contacts = [TrackedContact(f"{n}@s.whatsapp.net", None, n % 3 + 1, "s") for n in range(6)]
    assert ranked_first(contacts, 2) == {"0@s.whatsapp.net", "3@s.whatsapp.net"}
    assert ranked_first(contacts, -4) == set()


def test_shown_only_while_trusted_and_each_change_once() -> None:
    """A state is shown while trusted; a change of what is shown is reported once."""
    trusted = {"a": True, "b": True}
    model = PresenceModel(lambda jid: trusted[jid])
    dropped, queued = model.track({jid: TrackedContact(jid, None, 2, "s") for jid in ("a", "b")})
    assert (dropped, [c.jid for c in queued]) == ([], ["a", "b"])
    model.presence["a"].online = True
    assert list(model.changed_shown(["a", "b"])) == [("a", True)]
    assert list(model.changed_shown(["a", "b"])) == []
    trusted["a"] = False
    assert model.shown_online("a") is None
    assert list(model.changed_shown(["a", "b"])) == [("a", None)]

    dropped, queued = model.track({"b": TrackedContact("b", None, 1, "s")})
    assert (dropped, [c.jid for c in queued]) == (["a"], ["b"])
    assert "a" not in model.presence
    assert "a" not in model.shown
