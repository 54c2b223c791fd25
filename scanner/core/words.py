"""Words for counts in messages, written once for every layer."""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 worker', '2 workers', '1,000 files', plural(2, 'process', 'processes')."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
