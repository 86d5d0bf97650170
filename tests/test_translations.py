"""Every string the code can show has English words, and every string in en.json is shown.

The keys come from the integration's source (``tests/code_strings.py`` reads it), so a new abort
reason, error, progress action, menu option, exception, entity, repair issue, selector option
or action is covered the day it is written: a user never sees a raw key such as
``rate_limited``, and en.json keeps no text nobody sees.
"""

from __future__ import annotations

from .translation_keys import PRODUCED, STRINGS, UNRESOLVED, covered, leaves


def test_the_code_is_readable_for_the_check() -> None:
    """Every key-bearing value in the code could be followed (or the check would miss it)."""
    assert UNRESOLVED == []


def test_the_check_finds_what_is_known_to_be_there() -> None:
    """The collector is not vacuous: keys of every kind are found (a broken reader fails)."""
    for key in (
        "config.abort.neonize_unavailable",
        "config.error.invalid_auth",  # returned by a helper, assigned through a variable
        "config.progress.scan_qr",
        "config.step.pair_retry.menu_options.pair_phone",
        "config_subentries.contact.abort.rate_limited",  # a helper's return, per subentry type
        "config_subentries.group.abort.no_groups",
        "exceptions.contact_in_group.message",
        "entity.sensor.active",  # translation_key=key in a helper called per key
        "entity.binary_sensor.online",
        "issues.stream_replaced",  # a name narrowed by `elif name in (...)`
        "issues.account_banned",  # payload["reason"] narrowed by `if payload.get("reason") in`
        "selector.preset.options.mission_critical",
        "selector.pair_failure.options.bridge_lost",
        "services.add_contacts.fields.numbers",
    ):
        assert key in PRODUCED, key


def test_every_string_the_code_can_show_has_words() -> None:
    """No raw key in the UI: each produced key has English text."""
    assert sorted(k for k in PRODUCED if not covered(k)) == []


def _used(leaf: str) -> bool:
    """Whether Home Assistant can show this en.json leaf for what the code produces."""
    parts = leaf.split(".")
    # Read by Home Assistant itself: the integration's name, discovery titles, subentry buttons.
    if leaf == "title" or parts[:2] == ["config", "flow_title"]:
        return True
    if parts[0] == "config_subentries" and parts[2] in ("entry_type", "initiate_flow"):
        return True
    if parts[0] in ("config", "options") or parts[0] == "config_subentries":
        base = parts[:2] if parts[0] == "config_subentries" else parts[:1]
        rest = parts[len(base) :]
        section = ".".join(base)
        if rest[0] == "step":
            step = f"{section}.step.{rest[1]}"
            if step not in PRODUCED:
                return False
            if len(rest) > 3 and rest[2] in ("menu_options", "menu_option_descriptions"):
                return f"{step}.menu_options.{rest[3]}" in PRODUCED
            return True  # title, description, data, data_description, sections of a shown step
        return f"{section}.{rest[0]}.{rest[1]}" in PRODUCED
    if parts[0] == "exceptions":
        return f"exceptions.{parts[1]}.message" in PRODUCED
    if parts[0] == "entity":
        return f"entity.{parts[1]}.{parts[2]}" in PRODUCED
    if parts[0] == "issues":
        return f"issues.{parts[1]}" in PRODUCED
    if parts[0] == "selector":
        return f"selector.{parts[1]}.options.{parts[3]}" in PRODUCED
    if parts[0] == "services":
        if parts[2] == "fields":
            return f"services.{parts[1]}.fields.{parts[3]}" in PRODUCED
        return f"services.{parts[1]}" in PRODUCED
    return False


def test_every_string_in_en_json_is_shown() -> None:
    """No dead text: each string in en.json belongs to something the code can produce."""
    assert sorted(leaf for leaf in leaves(STRINGS) if not _used(leaf)) == []
