"""Measuring files: read, decode, extract. Every failure becomes a status, never an exception.

``measure_file`` is the unit of work for one file; ``measure_files`` measures a
chunk of walked files into rows of the store's schema, in whatever process runs
it (a local worker, a Dask task, the command line itself).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from scanner.core.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Status
from scanner.core.faults import decode_point
from scanner.core.schema import Rows
from scanner.features.extract import Extractor, GreyImage
from scanner.images.declared import declared as declared_by
from scanner.images.decode import ImageInfo, UnusableImage, decode_bytes, read_file
from scanner.io.walk import Found


@dataclass(frozen=True)
class FileRecord:
    """One file's outcome: its status ("ok" or why not), the header facts, the features and the SHA-256 of
    the bytes read."""

    path: str
    status: Status
    error: str
    info: ImageInfo
    features: np.ndarray | None  # float64, the feature set's width, when status is ok
    sha256: str = ""  # lowercase hex of the bytes read ('' when the file could not be read)
    declared: str = ""  # what the file's metadata declares (scanner.images.declared), '' when nothing


def measure_file(
    path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
    extractor: Extractor,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    follow: bool = True,
    decoded: Callable[[], None] | None = None,
) -> FileRecord:
    """Read, decode and measure one file; failures become statuses, never exceptions.

    The file is read once (bounded, scanner.images.decode.read_file); its SHA-256 and what its metadata
    declares (scanner.images.declared; a C2PA manifest store validated from the same bytes when the optional
    extra is installed) are taken from the bytes read, also when they do not decode. follow=False refuses a
    symbolic link in the path's last component; ``decoded`` is called once reading, hashing, the metadata's
    declarations (C2PA validation included) and decoding are over (a time limit's clock stops there).
    """
    name = os.fsdecode(path)
    digest = declared = ""
    try:
        decode_point(name)
        data = read_file(path, max_bytes, follow=follow)
        digest = hashlib.sha256(data).hexdigest()
        declared = declared_by(data, validate=True)  # bounded, never raises; a C2PA store validated with the extra
        image = decode_bytes(data, max_pixels)
    except UnusableImage as exc:
        return FileRecord(name, exc.status, exc.reason, exc.info, None, digest, declared)
    finally:
        if decoded is not None:
            decoded()
    try:
        values = extractor.from_bgr(image.pixels)
    except GreyImage as exc:
        return FileRecord(name, Status.GRAYSCALE, str(exc), image.info, None, digest, declared)
    return FileRecord(name, Status.OK, "", image.info, values, digest, declared)


# The same function under the name the first versions of the library gave it.
features_of_file = measure_file


class FileClock(Protocol):
    """What an executor's time limit watches: which file of a chunk is being read and decoded, and since when."""

    def start(self, index: int) -> None:
        """File `index` of the chunk starts being read and decoded."""

    def stop(self) -> None:
        """Reading and decoding are over (the measurement of decoded pixels is not limited)."""


def _measured(
    path: bytes,
    extractor: Extractor,
    max_pixels: int,
    max_bytes: int,
    follow: bool,
    decoded: Callable[[], None] | None = None,
) -> FileRecord:
    """measure_file, with an unexpected error (a bug, MemoryError) as that file's row rather than the sweep's end."""
    try:
        return measure_file(path, extractor, max_pixels, max_bytes, follow=follow, decoded=decoded)
    except Exception as exc:
        return FileRecord(os.fsdecode(path), Status.UNREADABLE, f"internal error: {exc!r}", ImageInfo(), None)


def rows_of(files: Sequence[Found], records: Sequence[FileRecord], width: int) -> Rows:
    """Store rows of walked files and their records (size and mtime from the walk)."""
    n = len(files)
    features = np.full((n, width), np.nan)
    for i, record in enumerate(records):
        if record.status == Status.OK and record.features is not None:
            features[i] = record.features
    infos = [r.info for r in records]
    return Rows.build(
        n,
        width,
        path=[f.relpath for f in files],
        root=[f.root for f in files],
        status=[str(r.status) for r in records],
        error=[r.error for r in records],
        features=features,
        height=[i.height or 0 for i in infos],
        width=[i.width or 0 for i in infos],
        format=[i.format or "" for i in infos],
        jpeg_subsampling=[i.jpeg_subsampling or "" for i in infos],
        jpeg_quality=[i.jpeg_quality or 0 for i in infos],
        size=[f.size for f in files],
        mtime=[f.mtime for f in files],
        sha256=[r.sha256 for r in records],
        declared=[r.declared for r in records],
    )


def measure_files(
    files: Sequence[Found],
    roots: Sequence[bytes],
    extractor: Extractor,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    clock: FileClock | None = None,
) -> Rows:
    """Measure a chunk of walked files (paths relative to `roots`) into store rows.

    A ``clock`` is told when each file starts being read and when its decode is over.
    """
    records = []
    for i, f in enumerate(files):
        path = os.path.join(roots[f.root], f.relpath)
        if clock is None:
            records.append(_measured(path, extractor, max_pixels, max_bytes, f.follow))
            continue
        clock.start(i)
        records.append(_measured(path, extractor, max_pixels, max_bytes, f.follow, clock.stop))
        clock.stop()  # also when the decode raised something unexpected
    return rows_of(files, records, extractor.measurement.n_features)


def problem_rows(files: Sequence[Found], width: int) -> Rows:
    """Rows for what the walk itself could not read, or a worker could not measure (status and error set)."""
    return rows_of(files, [FileRecord("", Status(f.status), f.error, ImageInfo(), None) for f in files], width)
