"""Values read from a file, echoed in a message: cut to a bounded length.

A model attribute, a store's status, a label or a verdict can be any length; a
message that repeats one says what it was in at most ``ECHO_LIMIT`` characters,
an ellipsis marking the cut, so that a crafted file cannot make an error line of
60 KB (or of a terminal's escape sequences: the repr shows them escaped).
"""

from __future__ import annotations

ECHO_LIMIT = 80  # characters of a value from a file shown in a message, the ellipsis included


def echoed(value: object, limit: int = ECHO_LIMIT) -> str:
    """repr(value), cut to `limit` characters with '…' at the cut."""
    text = repr(value[: limit + 1] if isinstance(value, str | bytes) else value)  # never the repr of 60 KB
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
