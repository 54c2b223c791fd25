"""Temporary files beside an output, named so that the next run can tell whose they are.

Every output is written to a temporary file beside it and renamed over it once
complete (scanner.io.outputs). A command killed outright (SIGKILL, a power cut)
never gets to remove its temporary, which for a store of 100 million rows is
about 6 GB. So a temporary is named ``.NAME.scanner-tmp.PID@HOST`` (a writer may
add a suffix, e.g. the store writer's ``.tmp``): a later command writing NAME
removes those of this host whose process is gone, and never one whose process
is alive (or may be: another user's, or one it cannot ask about). Temporaries
of other hosts (a shared file system) are left alone; ``scanner info`` names
them, as it names any leftover it finds.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from dataclasses import dataclass

MARK = "scanner-tmp"

PathLike = str | os.PathLike[str]


def this_host() -> str:
    """This machine's name, as it goes into temporaries' names (letters, digits, '-' and '_' only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "localhost"


def temporary_path(path: PathLike, suffix: str = "") -> str:
    """The temporary beside `path` that this process writes it to: ``DIR/.NAME.scanner-tmp.PID@HOST``."""
    name = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(name)
    return os.path.join(directory, f".{base}.{MARK}.{os.getpid()}@{this_host()}{suffix}")


def pid_alive(pid: int) -> bool:
    """Whether process `pid` (of this host) may still be running: only a sure 'no such process' says no."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's process, alive
        return True
    return True


@dataclass(frozen=True)
class Leftover:
    """A temporary found beside an output."""

    path: str
    size: int
    pid: int | None  # None: a temporary of a fixed name or of an earlier version (no owner recorded)
    host: str | None
    alive: bool | None  # None: cannot tell (no owner recorded, or another host)

    @property
    def stale(self) -> bool:
        """Its owner, a process of this host, is gone: safe to remove."""
        return self.alive is False


def _owner(name: str, base: str) -> tuple[int, str] | None:
    match = re.fullmatch(rf"\.{re.escape(base)}\.{MARK}\.(\d+)@([A-Za-z0-9_-]+)(?:\..*)?", name, re.DOTALL)
    return (int(match.group(1)), match.group(2)) if match else None


def _unowned(name: str, base: str) -> bool:
    """A temporary of a fixed name (a scan's checkpoint, a journal being rewritten) or of an earlier
    version of scanner (``.NAME.XXXXXXXX.tmp``, and its store writer's ``.tmp.tmp``)."""
    if name in (f"{base}.tmp", f"{base}.journal.tmp"):
        return True
    return re.fullmatch(rf"\.{re.escape(base)}\.[a-z0-9_]{{8}}\.tmp(?:\.tmp)?", name, re.DOTALL) is not None


def leftovers(path: PathLike) -> list[Leftover]:
    """The temporaries beside `path` (those named for it), whoever wrote them."""
    name = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(name)
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    host = this_host()
    found = []
    for entry in entries:
        owner = _owner(entry, base)
        if owner is None and not _unowned(entry, base):
            continue
        full = os.path.join(directory, entry)
        try:
            info = os.lstat(full)
        except OSError:
            continue
        if not os.path.isfile(full) or os.path.islink(full):
            continue
        if owner is None:
            found.append(Leftover(full, info.st_size, None, None, None))
        else:
            pid, where = owner
            found.append(Leftover(full, info.st_size, pid, where, pid_alive(pid) if where == host else None))
    return found


def remove_stale(path: PathLike) -> list[Leftover]:
    """Remove the temporaries beside `path` whose owner (a process of this host) is gone; those removed."""
    removed = []
    for leftover in leftovers(path):
        if leftover.stale:
            try:
                os.unlink(leftover.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                continue
            removed.append(leftover)
    return removed


def describe(path: PathLike) -> str | None:
    """One line about the temporaries beside `path` (for ``scanner info``), or None if there are none."""
    found = leftovers(path)
    if not found:
        return None
    size = sum(f.size for f in found)
    first = os.path.basename(found[0].path)
    what = f"{first}" if len(found) == 1 else f"{len(found)} of them, e.g. {first}"
    total = f"{size / 1e6:,.1f} MB"
    if any(f.alive for f in found):
        return f"note: a leftover temporary file is next to it ({what}, {total}), being written by a running process"
    if all(f.stale for f in found):
        return (
            f"note: a leftover temporary file is next to it ({what}, {total}) of a process that is gone "
            "(killed); the next scan or merge writing this store removes it, or delete it"
        )
    return (
        f"note: a leftover temporary file is next to it ({what}, {total}); unless a scanner on another "
        "machine or of an earlier version is writing this store, delete it"
    )
