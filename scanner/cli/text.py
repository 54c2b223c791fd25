"""Text for a terminal: what commands print for people never carries raw control sequences.

A file name may hold anything but '/' and NUL, including the escape sequences
that move a terminal's cursor, change its title or colours, or hide text, and the
Unicode controls that reverse the order text is shown in. Every line a command
prints for people goes through ``say`` (the errors too, through
scanner.cli.base.fail), which shows such characters as escapes: ``\\x1b``,
``\\u202e``, and ``\\xe9`` for a byte of a name that is not UTF-8. A line that
needs no escape is printed as it is; one that does also has its backslashes
doubled, so that the escapes cannot be confused with a name's own characters.
Data outputs (CSV, JSON) are not changed: they are exact, and JSON escapes on
its own.
"""

from __future__ import annotations

import logging
import re

import typer

from scanner.core.logs import ROOT

# C0 and C1 controls, DEL, bidirectional formatting characters, and the lone
# surrogates that stand for the bytes of a name that is not UTF-8.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object) -> str:
    """`text` safe for a terminal, one line of it: control characters as escapes (a newline too)."""
    value = str(text)
    if not _UNSAFE.search(value):
        return value
    return _UNSAFE.sub(_escape, value.replace("\\", "\\\\"))


def say(text: object = "", *, err: bool = False, nl: bool = True) -> None:
    """Print text for people (stdout, or stderr with err=True), each of its lines made safe by `shown`."""
    typer.echo("\n".join(shown(line) for line in str(text).split("\n")), err=err, nl=nl)


def chatty() -> bool:
    """Whether the command's words for people are wanted: not under --quiet (nor --log-level warning or error)."""
    return logging.getLogger(ROOT).isEnabledFor(logging.INFO)


def chatter(text: object = "", *, err: bool = False, nl: bool = True) -> None:
    """`say` what a command did (a summary, "wrote N rows"), unless --quiet: errors and warnings are said
    with `say`, whatever the level."""
    if chatty():
        say(text, err=err, nl=nl)


def counts_lines(counts: dict[str, int]) -> list[str]:
    """A store's rows per status, one indented line each, ok first."""
    return [f"  {status:<11} {n:>12,}" for status, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))]
