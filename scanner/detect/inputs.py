"""What a detector command reads: feature stores, or a few images measured on the spot.

`scanner classify` and `scanner train` take feature stores (written by `scanner
scan`) and also image files and directories, which are measured here, in this
process, the way the model (or the default) measures. That is for a few images:
"is this one fake?" needs no sweep. Beyond ``MAX_IMAGES`` files the user is sent
to `scanner scan`, which measures in parallel and can resume.

An input is a store when it is a file named .h5 or .hdf5, or one that starts as an
HDF5 file does (an HDF5 file that is not a store, or a .h5 file that is not HDF5 at
all, is an error, not an image); everything else is an image or a directory
of images (walked as `scan` walks: recursively, the common image extensions).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from scanner.core.constants import DEFAULT_LIMITS, ReadLimits
from scanner.core.errors import InputError
from scanner.core.schema import FeatureTable, Measurement

MAX_IMAGES = 200  # images measured in-process at most; more go through `scanner scan`

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


STORE_SUFFIXES = (".h5", ".hdf5")  # a file named so is a store, or refused as one (never an image)


def is_store(path: str | os.PathLike[str]) -> bool:
    """True for an existing file named .h5 or .hdf5 (any case) that is not a directory, or a regular file
    that starts as HDF5 does: a store, or something refused as one (empty, text or damaged, a FIFO: the
    store reader refuses it in one line, exit code 2). Never opens a FIFO or a device: another file that
    is not a regular one is left to the walk, which records it."""
    try:
        mode = os.stat(path).st_mode
        if os.fsdecode(path).lower().endswith(STORE_SUFFIXES) and not stat.S_ISDIR(mode):
            return True
        if not stat.S_ISREG(mode):
            return False
        with open(path, "rb") as handle:
            return handle.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


def image_table(
    paths: Sequence[str | os.PathLike[str]],
    measurement: Measurement,
    *,
    max_images: int | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> FeatureTable:
    """Image files and directories measured in this process, as a FeatureTable (a row per file found).

    InputError when a path does not exist, or when there are more than `max_images`
    files (then `scanner scan` is the tool: parallel, resumable).
    """
    from scanner.core.schema import Rows
    from scanner.features.extract import ExtractorSpec, build_extractor
    from scanner.features.measure import measure_files, problem_rows
    from scanner.io.walk import Walk

    max_images = MAX_IMAGES if max_images is None else max_images
    missing = [os.fspath(p) for p in paths if not os.path.lexists(p)]
    if missing:
        raise InputError(f"no such file or directory: {', '.join(missing)}")
    walk = Walk(paths)
    found = []
    for entry in walk:
        found.append(entry)
        if len(found) > max_images:
            named = " ".join(os.fspath(p) for p in paths)
            raise InputError(
                f"more than {max_images} images: measure them with 'scanner scan {named} --out FEATURES.h5' "
                "(parallel, resumable), then classify FEATURES.h5"
            )
    width = measurement.n_features
    roots = [os.fsencode(r) for r in walk.roots]
    if not found:
        return FeatureTable(Rows.empty(width), walk.roots, measurement)
    extractor = build_extractor(ExtractorSpec(measurement))
    batches = [  # in the walk's order; what the walk found unusable keeps its status
        problem_rows([f], width)
        if f.status
        else measure_files([f], roots, extractor, limits.max_pixels, limits.max_bytes)
        for f in found
    ]
    return FeatureTable(Rows.concat(batches, width), walk.roots, measurement)


def feature_tables(
    inputs: Sequence[str | os.PathLike[str]],
    measurement: Measurement,
    *,
    max_images: int | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> list[FeatureTable]:
    """The stores among `inputs`, read whole, and one table of the other inputs (images) measured now."""
    from scanner.store.hdf5 import read_features

    stores = [p for p in inputs if is_store(p)]
    images = [p for p in inputs if not is_store(p)]
    tables = [read_features(p) for p in stores]
    if images:
        tables.append(image_table(images, measurement, max_images=max_images, limits=limits))
    return tables
