"""Personal data out of free text: JIDs and phone numbers in the bridge's log lines."""

from __future__ import annotations

import re
from typing import Final

_JID: Final = re.compile(r"[\w.:+-]+@(?:s\.whatsapp\.net|c\.us|lid|g\.us|broadcast|newsletter)\b")
_NUMBER: Final = re.compile(r"\+?\d{7,}")


def redact_text(text: str) -> str:
    """``text`` with every JID and every run of seven or more digits (a phone number) masked."""
    return _NUMBER.sub("<number>", _JID.sub("<jid>", text))
