"""One writer per store: the lock file ``STORE.lock`` and the flock on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from scanner.core.errors import ScanError


def lock_path(out: str) -> str:
    return f"{out}.lock"


@contextmanager
def locked(out: str) -> Iterator[None]:
    """One writer per store at a time: an flock on STORE.lock, which is removed when released.

    Removing a lock file that others may open needs care: after taking the lock,
    the file we locked must still be the one at the path (a writer that was
    releasing may have just removed it); if not, take the lock again on the new
    file. The holder removes the path before it lets the lock go.
    """
    import fcntl  # imported here: importing scanner must not need it

    lock = lock_path(out)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ScanError(f"{out} is being written by another scan (lock {lock} is held)") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        finally:
            os.close(fd)
