"""Labels: real or fake, from a file's directories or from a labels CSV, and the key paths are matched by.

A path is labelled by its innermost directory named real/0_real or fake/1_fake;
a labels file (columns path,label) overrides that. Files named in different
places (labels, anchors, verdicts) are matched by path_key: the absolute,
normalised path.
"""

from __future__ import annotations

import csv
import os
from pathlib import PurePath

import numpy as np
import numpy.typing as npt

from scanner.core.echo import echoed
from scanner.core.errors import DetectorError
from scanner.io import safeio

REAL = "real"
FAKE = "fake"

_REAL_NAMES = {"real", "0_real"}
_FAKE_NAMES = {"fake", "1_fake"}


def label_from_path(path: str) -> str:
    """'real' or 'fake' from the innermost path component named real/0_real or fake/1_fake, else ''."""
    for part in reversed(PurePath(path).parts[:-1]):
        name = part.lower()
        if name in _REAL_NAMES:
            return REAL
        if name in _FAKE_NAMES:
            return FAKE
    return ""


def _label_value(text: str) -> str:
    value = text.strip().lower()
    if value in ("real", "0", "0_real"):
        return REAL
    if value in ("fake", "1", "1_fake"):
        return FAKE
    raise DetectorError(f"label {echoed(text)} is neither real (real, 0) nor fake (fake, 1)")


MAX_TABLE_BYTES = 1 << 30  # a labels or verdicts file: 10 million rows of 100-byte paths


def check_table(path: str | os.PathLike[str], what: str) -> None:
    """DetectorError when `path` is not a regular file (a FIFO or a device is never opened for reading,
    /dev/zero never read) or is over MAX_TABLE_BYTES; any other OSError (no such file) as the system gives it."""
    try:
        safeio.check_regular(path, MAX_TABLE_BYTES)
    except safeio.NotRegularFile as exc:
        raise DetectorError(f"{os.fspath(path)}: the {what} is {exc.kind}, not a regular file") from None
    except safeio.TooManyBytes as exc:
        raise DetectorError(
            f"{os.fspath(path)}: the {what} has {exc.size:,} bytes, over the {MAX_TABLE_BYTES:,} read at most"
        ) from None


def path_key(path: str) -> str:
    """A path as the key files are matched by: absolute and normalised (labels, anchors, verdicts)."""
    return os.path.normpath(os.path.abspath(path))


def read_labels_csv(path: str | os.PathLike[str]) -> dict[str, str]:
    """Labels from a CSV file with columns path,label (label real/fake or 0/1), keyed by absolute path."""
    try:
        check_table(path, "labels file")
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
                raise DetectorError(f"{path}: a labels file needs a header with the columns path,label")
            labels = {}
            for line, row in enumerate(reader, start=2):
                try:
                    labels[path_key(row["path"])] = _label_value(row["label"] or "")
                except DetectorError as exc:
                    raise DetectorError(f"{path}, line {line}: {exc}") from None
    except OSError as exc:
        raise DetectorError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    except (UnicodeError, csv.Error) as exc:
        raise DetectorError(f"{path}: not a UTF-8 CSV labels file ({exc})") from None
    return labels


def labels_of(paths: list[str], labels_csv: dict[str, str] | None = None) -> npt.NDArray[np.object_]:
    """'real', 'fake' or '' per path: from the labels file when given, else from the path."""
    if labels_csv is None:
        return np.array([label_from_path(p) for p in paths], dtype=object)
    return np.array([labels_csv.get(path_key(p), "") for p in paths], dtype=object)
