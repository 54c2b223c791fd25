"""The library's messages: every module logs to a child of the ``scanner`` logger.

The library never prints. What it has to say while it works (kernels being
compiled, FFTs being planned, a worker replaced) goes to ``logging``, so an
application that embeds it decides what is shown. The command line calls
``configure`` once per command: messages go to standard error, ``info`` and up
by default, as it is at the time of writing (so a progress display that catches
stderr can show them above its bar). Worker processes send their records to the
parent (scanner.run.executors.local), which logs them again here.

Light: nothing beyond the standard library.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, get_args

ROOT = "scanner"

LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
DEFAULT_LEVEL: LogLevel = "info"


def level_number(level: str) -> int:
    """The logging module's number of a level name (debug, info, warning, error)."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    number: int = getattr(logging, level.upper())
    return number


class _Words(logging.Formatter):
    """Info as it is; other levels named first ('warning: ...'), as a user reads them."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and record.levelno <= logging.DEBUG:
            text += "\n" + self.formatException(record.exc_info)
        return text if record.levelno == logging.INFO else f"{record.levelname.lower()}: {text}"


class StderrHandler(logging.Handler):
    """Writes each message to sys.stderr as it is when the message comes (never a stream fixed in advance)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            stream = sys.stderr
            stream.write(text + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def configure(level: str = DEFAULT_LEVEL) -> logging.Logger:
    """Show the library's messages of `level` and up on standard error (the command line's set-up)."""
    logger = logging.getLogger(ROOT)
    logger.setLevel(level_number(level))
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(_Words())
        logger.addHandler(handler)
    logger.propagate = False  # one copy of each message, whatever the root logger does
    return logger
