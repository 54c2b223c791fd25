"""numba's compile notice: the first compilation of a kernel in a process is announced once.

``install_compile_notice`` (called whenever an extractor is built, and before
scoring) listens to numba's compile events; the command line shows the notice
("compiling kernels, first run only ...") on a first run, when compiling takes
tens of seconds, and says nothing when the kernels load from numba's cache.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

COMPILING = "compiling kernels, first run only (later runs load them from the cache)"


class _Notice:
    """Counts numba's compilations in this process and announces the first one."""

    def __init__(self) -> None:
        self.compiled = 0

    def on_start(self, event: Any) -> None:
        self.compiled += 1
        if self.compiled == 1:
            log.info(COMPILING)
        dispatcher = (event.data or {}).get("dispatcher")
        log.debug("compiling %s%s", getattr(dispatcher, "__qualname__", dispatcher), (event.data or {}).get("args"))

    def on_end(self, event: Any) -> None:
        pass


_NOTICE: _Notice | None = None


def install_compile_notice() -> _Notice:
    """Announce numba's first compilation in this process (idempotent); the listener counts them."""
    global _NOTICE
    if _NOTICE is None:
        from numba.core import event

        class Listener(_Notice, event.Listener):
            pass

        _NOTICE = Listener()
        event.register("numba:compile", _NOTICE)  # type: ignore[no-untyped-call, unused-ignore]
    return _NOTICE
