"""Writing outputs: whole or not at all, never over an input, `-` for standard output.

Every file a command writes (CSV, model, report, figure) goes through here: it is
written to a temporary file beside its destination and renamed over it only once
complete, so a failure (a full disk, Ctrl-C, a bad input found half-way) leaves
the old file or nothing, never a partial or 0-byte one (the temporary of a run killed
outright, which cannot remove it, is named for its process, and the next run writing
the same file removes it: scanner.io.temporaries); an output that is also one
of the command's inputs is refused before anything is written; and `-` means
standard output.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from scanner.core.errors import FatalError, InputError
from scanner.io.safeio import kind_of
from scanner.io.temporaries import remove_stale, temporary_path

STDOUT = "-"

PathLike = str | os.PathLike[str]


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_inputs(path: PathLike, inputs: Iterable[PathLike | None]) -> None:
    """InputError when `path` names the same file as one of `inputs` (writing it would destroy the input),
    or something other than a regular file (a device, a FIFO, a symbolic link, a directory: renaming the
    output over it would replace it, not write to it)."""
    name = os.fspath(path)
    if name == STDOUT:
        return
    for given in inputs:
        if given is not None and os.fspath(given) != STDOUT and _same_file(name, os.fspath(given)):
            raise InputError(f"the output {name} is also an input ({os.fspath(given)}); write it elsewhere")
    try:
        mode = os.lstat(name).st_mode
    except OSError:
        mode = None  # nothing there yet (or nothing that can be looked at): written as a new file
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(
            f"the output {name} is {kind_of(mode)}, not a regular file: give a file's path, or - for standard output"
        )


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _hdf5_format(name: str) -> str | None:
    """The root attribute `format` of the HDF5 file at `name` ('' when it has none or cannot be read), or
    None when the file is not HDF5 (or not there)."""
    try:
        with open(name, "rb") as handle:
            if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                return None
    except OSError:
        return None
    from scanner.io.h5safe import CheckedFile  # h5py only where an HDF5 file is there

    try:
        with CheckedFile(name, "HDF5 file", InputError) as f:
            return str(f.attributes(f.file, ("format",)).get("format", ""))
    except InputError:  # a damaged or foreign HDF5 file: not one this command may replace
        return ""


def refuse_hdf5(name: str, replaces: str | None) -> None:
    """InputError when `name` is an HDF5 file (a feature store, a model) that this output may not replace:
    any, for outputs that are not HDF5 (replaces None); else one whose `format` attribute differs from
    `replaces` (a model replaces a model, never a feature store)."""
    found = _hdf5_format(name)
    if found is None or (replaces is not None and found == replaces):
        return
    what = f"a {found}" if found else "an HDF5 file (a feature store?)"
    raise InputError(f"the output {name} is {what}: this command never replaces it; remove it, or write elsewhere")


@contextmanager
def output_path(
    path: PathLike, *, inputs: Iterable[PathLike | None] = (), replaces: str | None = None
) -> Iterator[str]:
    """A temporary path beside `path` to write the output to (for writers that take a path, like h5py);
    renamed over `path` when the block ends without error, removed otherwise. For `-` it is a
    temporary file whose bytes go to standard output once complete. An existing HDF5 file at `path` is
    replaced only by an HDF5 output whose `format` attribute it shares (`replaces`; refuse_hdf5)."""
    name = os.fspath(path)
    if name == STDOUT:
        with _to_stdout() as tmp:
            yield tmp
        return
    refuse_inputs(name, inputs)
    refuse_hdf5(name, replaces)
    tmp = temporary_path(name)
    try:
        remove_stale(name)  # what a run of this command that was killed outright left
        # 0o666 less the umask, as any program's new file: colleagues and a case system read what is shared
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666))
    except OSError as exc:
        raise FatalError(f"cannot write {name}: {exc.strerror or exc}") from None
    try:
        yield tmp
        _durable_replace(tmp, name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def _to_stdout() -> Iterator[str]:
    """A temporary file (in the system's temporary directory) copied to standard output when complete."""
    fd, tmp = tempfile.mkstemp(prefix=".scanner-stdout.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            shutil.copyfileobj(handle, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    finally:
        os.unlink(tmp)


def _durable_replace(tmp: str, name: str) -> None:
    try:
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, name)
    except OSError as exc:
        raise FatalError(f"cannot write {name}: {exc.strerror or exc}") from None


@contextmanager
def output_file(path: PathLike, *, binary: bool = False, inputs: Iterable[PathLike | None] = ()) -> Iterator[IO[Any]]:
    """An open file for the output (`-`: standard output). Text is UTF-8, and a file name that is
    not UTF-8 is written back as its original bytes (surrogateescape)."""
    name = os.fspath(path)
    if name == STDOUT:
        stream: IO[Any] = sys.stdout.buffer if binary else sys.stdout
        if not binary:
            sys.stdout.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
        yield stream
        stream.flush()
        return
    with output_path(name, inputs=inputs) as tmp, _opened(name, tmp, binary) as handle:
        try:
            yield handle
            handle.flush()
        except OSError as exc:
            raise FatalError(f"cannot write {name}: {exc.strerror or exc}") from None


@contextmanager
def _opened(name: str, tmp: str, binary: bool) -> Iterator[IO[Any]]:
    encoding, errors, newline = (None, None, None) if binary else ("utf-8", "surrogateescape", "")
    try:
        handle: IO[Any] = open(tmp, "wb" if binary else "w", encoding=encoding, errors=errors, newline=newline)  # noqa: SIM115
    except OSError as exc:
        raise FatalError(f"cannot write {name}: {exc.strerror or exc}") from None
    with handle:
        yield handle


# The table formats that outputs of rows come in (exports, verdicts files), by the output's suffix.
TABLE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def table_format(out: PathLike, given: str | None = None) -> str:
    """The table format asked for, else the one the output's suffix names, else CSV (also for `-`)."""
    if given:
        return given
    return TABLE_SUFFIXES.get(os.path.splitext(os.fspath(out))[1].lower(), "csv")
