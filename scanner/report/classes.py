"""What the report compares: files by label or by verdict, their counts and their encoding mix.

Light: numpy only (the figures of these classes are scanner.report.charts).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scanner.core.constants import Status
from scanner.core.schema import FeatureTable
from scanner.detect.labels import FAKE, REAL, label_from_path
from scanner.detect.verdicts import Provenance, VerdictFile

NO_VERDICT = "no verdict"
NOT_CLASSIFIED = "not in verdicts"
UNLABELLED = "unlabelled"
# Share of files that would have to change encoding for two classes' mixes to
# match (total variation distance) above which the report warns.
ENCODING_GAP_WARNING = 0.10
CLASS_COLOURS = {REAL: "#2b6cb0", FAKE: "#c53030"}
OTHER_COLOURS = ("#718096", "#b7791f", "#2f855a", "#6b46c1")


@dataclass(frozen=True)
class AlignedVerdicts:
    """A verdicts file (scanner.detect.verdicts.VerdictFile) aligned with a store's rows."""

    source: str
    verdict: np.ndarray  # (N,) object: 'real', 'fake', NO_VERDICT or NOT_CLASSIFIED
    score: np.ndarray  # (N,) float64, NaN where there is none
    unmatched: int  # rows of the file whose path is not in the store
    provenance: tuple[Provenance, ...] = ()  # what produced the verdicts (VerdictFile.provenance)


def align_verdicts(verdicts: VerdictFile, table: FeatureTable) -> AlignedVerdicts:
    """Each store row's verdict and score (matched by path as written, else absolute and normalised)."""
    rows, unmatched = verdicts.rows_of(table.path)
    found = rows >= 0
    verdict = np.full(len(table), NOT_CLASSIFIED, dtype=object)
    verdict[found] = np.where(verdicts.verdict[rows[found]] == "", NO_VERDICT, verdicts.verdict[rows[found]])
    score = np.full(len(table), np.nan)
    score[found] = verdicts.score[rows[found]]
    return AlignedVerdicts(verdicts.source, verdict, score, unmatched, verdicts.provenance)


def labels_from_paths(paths: Sequence[str]) -> np.ndarray:
    """'real', 'fake' or '' per path, from its directories; computed once per directory."""
    by_directory: dict[str, str] = {}
    out = np.empty(len(paths), dtype=object)
    for i, path in enumerate(paths):
        directory = path.rpartition(os.sep)[0]
        label = by_directory.get(directory)
        if label is None:
            # label_from_path looks at the directories only, so any file name will do.
            label = by_directory[directory] = label_from_path(os.path.join(directory, "_"))
        out[i] = label
    return out


@dataclass(frozen=True)
class Classes:
    """What the histograms, scatter and encoding mix compare: labels or verdicts."""

    kind: str  # "label", "verdict" or "all"
    names: tuple[str, ...]
    of_row: np.ndarray  # (N,) object: each row's class name


def classes_of(table: FeatureTable, labels: np.ndarray, verdicts: AlignedVerdicts | None) -> Classes:
    """Compare by label when the paths carry labels, else by verdict, else one class."""
    ok = np.array(table.status, dtype=object) == Status.OK
    if (labels[ok] != "").any():
        of_row = np.where(labels == "", UNLABELLED, labels).astype(object)
        return Classes("label", _present((REAL, FAKE, UNLABELLED), of_row[ok]), of_row)
    if verdicts is not None:
        return Classes(
            "verdict", _present((REAL, FAKE, NO_VERDICT, NOT_CLASSIFIED), verdicts.verdict[ok]), verdicts.verdict
        )
    return Classes("all", ("all files",), np.full(len(table), "all files", dtype=object))


def _present(order: tuple[str, ...], values: np.ndarray) -> tuple[str, ...]:
    found = set(np.unique(values.astype(str)).tolist()) if len(values) else set()
    return tuple(name for name in order if name in found)


def class_colour(name: str, position: int) -> str:
    """The colour a class is drawn in: its own for real and fake, else one of OTHER_COLOURS by position."""
    return CLASS_COLOURS.get(name, OTHER_COLOURS[position % len(OTHER_COLOURS)])


# --- counting --------------------------------------------------------------


def counts(values: np.ndarray, order: Sequence[str] = ()) -> dict[str, int]:
    """How many of each value, in the given order first, then the others sorted."""
    names, n = np.unique(np.asarray(values, dtype=str), return_counts=True)
    found = dict(zip(names.tolist(), n.tolist(), strict=True))
    ordered = {k: found.pop(k) for k in order if k in found}
    ordered.update(sorted(found.items()))
    return ordered


def encoding_of(table: FeatureTable) -> np.ndarray:
    """Each row's encoding: format, JPEG subsampling and quality band ('JPEG 4:2:0 q70-79')."""
    quality = np.asarray(table.jpeg_quality)
    bands = np.where(quality >= 90, 9, quality // 10)
    band_names = [f"q{10 * b}-{10 * b + 9}" if b < 9 else "q90-100" for b in range(10)]
    keys, inverse = np.unique(
        np.char.add(
            np.char.add(np.asarray(table.format, dtype=str), "|"), np.asarray(table.jpeg_subsampling, dtype=str)
        ),
        return_inverse=True,
    )
    labels = np.empty(len(table), dtype=object)
    for k, key in enumerate(keys.tolist()):
        fmt, sampling = key.split("|", 1)
        rows = inverse == k
        base = " ".join(part for part in (fmt or "unknown format", sampling) if part)
        if fmt == "JPEG":
            for b in np.unique(bands[rows]).tolist():
                in_band = rows & (bands == b)
                labels[in_band] = f"{base} {band_names[b]}" if quality[in_band][0] > 0 else f"{base} quality unknown"
        else:
            labels[rows] = base
    return labels


def encoding_gap(mix_a: dict[str, int], mix_b: dict[str, int]) -> float:
    """Total variation distance of two encoding mixes: the share of files that would have to change encoding."""
    total_a, total_b = sum(mix_a.values()), sum(mix_b.values())
    if not total_a or not total_b:
        return 0.0
    keys = set(mix_a) | set(mix_b)
    return 0.5 * sum(abs(mix_a.get(k, 0) / total_a - mix_b.get(k, 0) / total_b) for k in keys)
