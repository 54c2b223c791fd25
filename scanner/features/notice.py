"""numba's compile notice: the first compilation of each group of kernels in a process is announced once.

``install_compile_notice`` (called whenever an extractor is built, and before
scoring) listens to numba's compile events; the command line shows the notice
on a first run, when compiling takes tens of seconds, and says nothing when the
kernels load from numba's cache. The notice names what compiles ("compiling the
feature kernels, first run only ..."): the README's first commands, ``scanner
train ... && scanner scan ... && scanner classify ...``, compile different
kernels (the feature kernels, then the SVM's scoring kernels), and a notice that
said only "compiling kernels, first run only" each time would look like a lie.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

COMPILING = "compiling {what}, first run only (later runs load them from the cache)"
# The kernels' modules, and what the notice calls them; a kernel elsewhere (a user's) is "kernels".
KERNEL_GROUPS = {
    "scanner.features.kernels": "the feature kernels",
    "scanner.features.extended_kernels": "the extended feature kernels",
    "scanner.detect.decisions": "the scoring kernels of the model",
}


def kernel_group(dispatcher: Any) -> str | None:
    """What the notice calls the kernel being compiled; None for numba's own pieces compiled inside one."""
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", None) or ""
    if module in KERNEL_GROUPS:
        return KERNEL_GROUPS[module]
    if not module or module == "numba" or module.startswith("numba."):
        return None
    return "kernels"


class _Notice:
    """Counts numba's compilations in this process and announces the first one of each group of kernels."""

    def __init__(self) -> None:
        self.compiled = 0
        self.announced: set[str] = set()

    def on_start(self, event: Any) -> None:
        self.compiled += 1
        dispatcher = (event.data or {}).get("dispatcher")
        group = kernel_group(dispatcher)
        if group is not None and group not in self.announced:
            self.announced.add(group)
            log.info(COMPILING.format(what=group))
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
