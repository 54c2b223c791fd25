"""Streaming the files to scan out of directory trees, lists and paths.

The walk is a generator over os.scandir, so the scan starts on the first files
long before a million-file tree has been listed, and only the directories still
to visit are held in memory. Names stay bytes throughout, so a name that is not
valid UTF-8 is carried losslessly.

What it yields, one `Found` per file:

* files under a directory whose extension is in the filter (case-insensitive;
  a file whose content is an image but whose extension is not in the filter is
  not found; ``extensions=None`` takes every file);
* every file named directly (argument or list line), whatever its extension;
* problems as rows with a status: a broken symbolic link or a link loop
  (``unreadable``), an unreadable directory (``permission``), a FIFO, socket or
  device (``not_image``: never read, a FIFO would block), an entry that is gone
  by the time it is looked at (``vanished``), a path too long for the system
  (``unreadable``).

Symbolic links met inside the directories are not followed by default
(``follow_links=False``, like find, du and grep -r): a tree prepared by someone
else, a mounted disk image above all, may hold links that lead anywhere on the
machine reading it, and their files are not the tree's. Each such link gets a
``not_image`` row saying it was not followed, and the file found as a regular
file is later opened with O_NOFOLLOW, so that one replaced by a link after the
walk is not followed either. Paths named directly (arguments, list lines) are
followed: the user chose them. With ``follow_links=True`` links are followed; a
link back to one of its own ancestors is reported as a loop, and a directory
reached a second time by another route is not walked again (so no file gets two
rows).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import BinaryIO, NamedTuple

from scanner.core.constants import DEFAULT_FOLLOW_LINKS, Status
from scanner.io.safeio import PATH_TOO_LONG, kind_of, not_regular

DEFAULT_EXTENSIONS = frozenset(
    {
        "jpg",
        "jpeg",
        "jpe",
        "jfif",
        "png",
        "bmp",
        "dib",
        "webp",
        "tif",
        "tiff",
        "jp2",
        "j2k",
        "ppm",
        "pgm",
        "pbm",
        "pnm",
        "exr",
        "hdr",
        "pic",
    }
)


class Found(NamedTuple):
    """One file to scan, or one problem to record (status set, error says why)."""

    root: int  # index into Walk.roots
    relpath: bytes  # path relative to that root ("" root: the path as given, made absolute)
    size: int
    mtime: float
    status: str = ""  # "" when the file is to be read; otherwise the row's status
    error: str = ""
    follow: bool = True  # whether reading it may follow a symbolic link in its last component


def parse_extensions(text: str | None) -> frozenset[str] | None:
    """'jpg,PNG,.webp' -> {'jpg', 'png', 'webp'}; '*' -> None (every file)."""
    if text is None:
        return DEFAULT_EXTENSIONS
    if text.strip() == "*":
        return None
    names = frozenset(part.strip().lstrip(".").lower() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("--ext needs at least one extension (or '*' for every file)")
    return names


def _problem(exc: OSError, is_link: bool) -> tuple[str, str]:
    """The row status and reason for an error looking at an entry."""
    if isinstance(exc, FileNotFoundError):
        return (
            (Status.UNREADABLE, "broken symbolic link")
            if is_link
            else (Status.VANISHED, "no such file (moved or deleted?)")
        )
    if isinstance(exc, PermissionError):
        return Status.PERMISSION, "permission denied"
    if exc.errno == errno.ELOOP:
        return Status.UNREADABLE, "symbolic link loop"
    if exc.errno == errno.ENAMETOOLONG:
        return Status.UNREADABLE, PATH_TOO_LONG
    return Status.UNREADABLE, exc.strerror or str(exc)


NOT_FOLLOWED = "a symbolic link, not followed (--follow-links follows links)"
DIRECTORY_NOT_FOLLOWED = "a symbolic link to a directory, not followed (--follow-links follows links)"


def _file_row(root: int, rel: bytes, info: os.stat_result) -> Found:
    if stat.S_ISREG(info.st_mode):
        return Found(root, rel, info.st_size, info.st_mtime)
    return Found(root, rel, 0, info.st_mtime, Status.NOT_IMAGE, not_regular(kind_of(info.st_mode)))


MAX_LIST_ENTRY = 1 << 16  # bytes: far beyond any path the system accepts (4096 on Linux)
MAX_LIST_GAP = 1 << 26  # bytes a list may hold between two paths (separators, or one path cut short)
FIRST_ENTRY_BYTES = 4096  # PATH_MAX on Linux: a NUL-separated list has its first NUL within this many bytes
_LINE_SEPARATORS = re.compile(rb"\r?\n")
_NUL = re.compile(rb"\0")


class EmptyListError(OSError):
    """A list that goes on and on without giving a path."""


def list_entries(handle: BinaryIO, null: bool = False, block: int = 1 << 16) -> Iterator[bytes]:
    """The paths of a list file, streamed as they arrive (stdin from find works as it runs).

    One path a line (a trailing carriage return is dropped), unless the list holds
    a NUL byte: no path can hold one, so such a list is NUL-separated, as ``find
    -print0`` writes it, and from its first NUL on only NUL ends an entry (names
    that hold a newline survive). The first FIRST_ENTRY_BYTES bytes are read before
    any entry is given, so that a ``find -print0`` list is known as one before its
    first name, which may hold a newline, is cut. With null=True only NUL ends an
    entry from the start (like xargs -0). Empty entries are skipped; an entry
    longer than MAX_LIST_ENTRY bytes is cut there (no system accepts such a path:
    it gets its row saying so) and the rest of it is skipped.
    """
    read = getattr(handle, "read1", handle.read)
    nul_only = decided = null
    pending, skipping = b"", False
    idle = 0  # bytes read since the last entry given

    def entries(parts: list[bytes]) -> Iterator[bytes]:
        nonlocal skipping, idle
        for part in parts:
            if part and not skipping:
                idle = 0
                yield part
            skipping = False

    while True:
        chunk = read(block)
        idle += len(chunk)
        if idle > MAX_LIST_GAP:  # /proc/self/pagemap: a "regular file" of size 0 that reads NULs for ever
            raise EmptyListError(f"{MAX_LIST_GAP:,} bytes read without a path in them")
        data = pending + chunk
        if not decided:
            if b"\0" in data:
                nul_only = decided = True
            elif chunk and len(data) <= FIRST_ENTRY_BYTES:
                pending = data  # not known yet whether the list is NUL-separated: read on
                continue
            decided = True
        if not nul_only and b"\0" in data:  # lines, then NULs: NUL-separated from the first NUL on
            head, data = data.split(b"\0", 1)
            nul_only = True
            yield from entries(_LINE_SEPARATORS.split(head))
        parts = (_NUL if nul_only else _LINE_SEPARATORS).split(data)
        pending = parts.pop()
        yield from entries(parts)
        if len(pending) > MAX_LIST_ENTRY:
            if not skipping:
                yield pending[:MAX_LIST_ENTRY]
            pending, skipping = b"", True
        if not chunk:
            break
    if pending and not skipping:
        yield pending if nul_only else pending.rstrip(b"\r")


class Walk:
    """Iterates the files under paths (and the lines of a list file), streaming.

    ``roots`` is "" (files named directly, stored with absolute paths) followed
    by each directory argument, absolute.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] = (),
        *,
        recursive: bool = True,
        extensions: frozenset[str] | None = DEFAULT_EXTENSIONS,
        from_list: Iterable[str | bytes] | None = None,
        follow_links: bool = DEFAULT_FOLLOW_LINKS,
    ) -> None:
        self.paths = [os.fsencode(os.path.abspath(p)) for p in paths]
        self.recursive = recursive
        self.follow_links = follow_links
        self.extensions = None if extensions is None else frozenset(e.encode() for e in extensions)
        self.from_list = from_list
        self.roots: list[str] = [""]
        for path in self.paths:
            if os.path.isdir(path) and os.fsdecode(path) not in self.roots:
                self.roots.append(os.fsdecode(path))
        self._visited: set[tuple[int, int]] = set()

    def __iter__(self) -> Iterator[Found]:
        self._visited = set()
        for path in self.paths:
            yield from self._named(path, directory_root=True)
        if self.from_list is not None:
            for entry in self.from_list:  # paths as they are: list_entries has parsed a list file
                if entry:
                    yield from self._named(os.path.abspath(os.fsencode(entry)), directory_root=False)

    def _named(self, path: bytes, directory_root: bool) -> Iterator[Found]:
        """A path given by the user: a file is taken whatever its extension."""
        try:
            info = os.stat(path)
        except OSError as exc:
            status, error = _problem(exc, os.path.islink(path))
            return iter((Found(0, path, 0, 0.0, status, error),))
        if not stat.S_ISDIR(info.st_mode):
            return iter((_file_row(0, path, info),))
        root = self.roots.index(os.fsdecode(path)) if directory_root else 0
        return self._tree(path, root, b"" if directory_root else path + b"/", info)

    def _tree(self, top: bytes, root: int, prefix: bytes, info: os.stat_result) -> Iterator[Found]:
        """Depth-first over one tree, each directory in its own (stable) listing order.

        The extension is checked first: most entries are files, and for a wanted
        one the stat that gives its size and mtime also says whether it is a
        directory, so each entry costs at most one system call. (This loop is
        the walk's hot path, hence one function and a plain tuple constructor.)
        """
        top_id = (info.st_dev, info.st_ino)
        if top_id in self._visited:
            return
        self._visited.add(top_id)
        wanted, recursive, new = self.extensions, self.recursive, tuple.__new__
        follow = self.follow_links
        stack: list[tuple[bytes, bytes, tuple[tuple[int, int], ...]]] = [(top, prefix, (top_id,))]
        while stack:
            directory, rel_prefix, ancestors = stack.pop()
            subdirs: list[os.DirEntry[bytes]] = []
            try:
                with os.scandir(directory) as it:
                    for entry in it:
                        name = entry.name
                        if wanted is not None and name.rpartition(b".")[2].lower() not in wanted:
                            if recursive and _is_dir(entry, follow):
                                subdirs.append(entry)
                            elif recursive and not follow and entry.is_symlink() and _is_dir(entry, True):
                                yield Found(root, rel_prefix + name, 0, 0.0, Status.NOT_IMAGE, DIRECTORY_NOT_FOLLOWED)
                            continue
                        try:
                            st = entry.stat(follow_symlinks=follow)
                        except OSError as exc:
                            if not (recursive and _is_dir(entry, follow)):
                                status, error = _problem(exc, entry.is_symlink())
                                yield Found(root, rel_prefix + name, 0, 0.0, status, error)
                            continue
                        if S_ISREG(st.st_mode):
                            yield new(Found, (root, rel_prefix + name, st.st_size, st.st_mtime, "", "", follow))
                        elif S_ISDIR(st.st_mode):
                            if recursive:
                                subdirs.append(entry)
                        elif S_ISLNK(st.st_mode):
                            yield Found(root, rel_prefix + name, 0, st.st_mtime, Status.NOT_IMAGE, NOT_FOLLOWED)
                        else:
                            yield _file_row(root, rel_prefix + name, st)
            except OSError as exc:
                status, error = _problem(exc, False)
                yield Found(root, rel_prefix.rstrip(b"/") or b".", 0, 0.0, status, f"directory: {error}")
                continue
            for entry in reversed(subdirs):  # popped in listing order
                rel = rel_prefix + entry.name
                try:
                    sub = entry.stat()
                except OSError as exc:
                    status, error = _problem(exc, entry.is_symlink())
                    yield Found(root, rel, 0, 0.0, status, f"directory: {error}")
                    continue
                sub_id = (sub.st_dev, sub.st_ino)
                if sub_id in ancestors:
                    yield Found(
                        root,
                        rel,
                        0,
                        sub.st_mtime,
                        Status.UNREADABLE,
                        "symbolic link loop (links to a directory that contains it)",
                    )
                elif sub_id not in self._visited:
                    self._visited.add(sub_id)
                    stack.append((entry.path, rel + b"/", ancestors + (sub_id,)))


def _is_dir(entry: os.DirEntry[bytes], follow: bool) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False
