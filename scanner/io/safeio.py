"""Opening input files safely: regular files only, never blocking, never reading without a bound.

Everything the tool reads from a path it did not create (images, feature stores,
models) is opened here. A FIFO, a socket or a device is refused without being
opened: on Linux the path is first opened with ``O_PATH``, which reaches the
inode without calling any driver (no FIFO rendezvous, no device side effect),
``fstat`` says what it is, and only a regular file is then opened for reading,
through ``/proc/self/fd`` so that it is the very file just checked, whatever
happens to the path meanwhile. Where ``O_PATH`` is missing (macOS) the path is
checked with ``stat``, opened with ``O_NONBLOCK | O_NOCTTY`` and the opened file
checked again (same inode, still regular).

Reads are bounded twice: by a byte cap checked against the opened file's size
before anything is read, and by that size itself, so a file that grows while it
is read (or a file whose size is not its content, such as those of /proc) is
never read further than its size said. Nothing here imports more than the
standard library.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat

_HAS_O_PATH = hasattr(os, "O_PATH") and os.path.isdir("/proc/self/fd")
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
READ_BLOCK = 1 << 20
PATH_TOO_LONG = "path too long for the system (File name too long): not read"
AnyPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]  # what os.open takes


class NotRegularFile(OSError):
    """The path names something other than a regular file; ``kind`` says what, in words ("a FIFO")."""

    def __init__(self, path: AnyPath, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file ({kind})", os.fsdecode(path))
        self.kind = kind


class TooManyBytes(OSError):
    """The file is larger than the byte cap: ``size`` and ``cap`` in bytes."""

    def __init__(self, path: AnyPath, size: int, cap: int) -> None:
        super().__init__(errno.EFBIG, f"{size:,} bytes is over the {cap:,}-byte cap", os.fsdecode(path))
        self.size = size
        self.cap = cap


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, in words: 'a regular file', 'a FIFO', 'a directory', ..."""
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a file"


def not_regular(kind: str) -> str:
    """The reason recorded for a file that is not a regular file (the walk and the reader say it alike)."""
    return f"not a regular file ({kind}), never opened"


def open_regular(path: AnyPath, *, follow: bool = True) -> int:
    """A descriptor open for reading on the regular file at `path` (close it yourself).

    Raises NotRegularFile for anything else, never having opened it for reading;
    OSError as the system gives it otherwise (FileNotFoundError, PermissionError,
    ENAMETOOLONG, ELOOP for a link loop). With follow=False a symbolic link in the
    last component is not followed: it is refused as 'a symbolic link'.
    """
    nofollow = 0 if follow else os.O_NOFOLLOW
    if _HAS_O_PATH:
        handle = os.open(path, os.O_PATH | os.O_CLOEXEC | nofollow)
        try:
            mode = os.fstat(handle).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegularFile(path, kind_of(mode))
            # The magic link reopens this inode, not whatever the path names now.
            fd = os.open(f"/proc/self/fd/{handle}", _READ_FLAGS)
        finally:
            os.close(handle)
    else:  # pragma: no cover - systems without O_PATH
        before = os.stat(path, follow_symlinks=follow)
        if not stat.S_ISREG(before.st_mode):
            raise NotRegularFile(path, kind_of(before.st_mode))
        fd = os.open(path, _READ_FLAGS | nofollow)
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            os.close(fd)
            raise NotRegularFile(path, "a file replaced while it was being opened")
    return fd


def read_bounded(path: AnyPath, max_bytes: int, *, follow: bool = True) -> bytearray:
    """The whole content of the regular file at `path`, if it is at most `max_bytes` long.

    Raises TooManyBytes (before reading anything) when the file's size is over
    the cap, and what open_regular raises. A file that shrinks while it is read
    gives what it still had; one that grows is read up to the size it had.
    """
    fd, size = _open_within(path, max_bytes, follow)
    try:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            n = os.readv(fd, [view[got : got + READ_BLOCK]])
            if n == 0:
                break
            got += n
        view.release()
        del buffer[got:]  # a file that shrank meanwhile: what it still had
        return buffer
    finally:
        os.close(fd)


def check_regular(path: AnyPath, max_bytes: int, *, follow: bool = True) -> int:
    """The size of the regular file at `path` when it is at most `max_bytes` long; NotRegularFile (never
    having opened it for reading) or TooManyBytes otherwise, and what open_regular raises. For a reader
    that must open the file by name (csv, pyarrow) after this check."""
    fd, size = _open_within(path, max_bytes, follow)
    os.close(fd)
    return size


def _open_within(path: AnyPath, max_bytes: int, follow: bool) -> tuple[int, int]:
    """open_regular, and the file's size: TooManyBytes (the descriptor closed) when it is over `max_bytes`."""
    fd = open_regular(path, follow=follow)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise TooManyBytes(path, size, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, size


def sha256_of(fd: int) -> str:
    """The SHA-256 (hex) of the whole file open at `fd`, read from its start in blocks (the offset is kept)."""
    digest = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, READ_BLOCK, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def reopen_path(fd: int, path: AnyPath) -> str:
    """A path that opens the very file of `fd` (for libraries that open by name, like HDF5): the
    descriptor's /proc entry where there is one, else `path` itself."""
    return f"/proc/self/fd/{fd}" if _HAS_O_PATH else os.fsdecode(path)
