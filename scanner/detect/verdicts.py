"""Verdicts: scores turned into real or fake, the thresholds that do it, and the verdicts file.

The verdicts file is what `scanner classify` writes and `scanner report` and
`scanner export` read: a UTF-8 CSV (or JSONL, or Parquet) with the columns
VERDICT_COLUMNS (path, status, verdict, score, threshold, probability, the file's
sha256, and declared: what its metadata declares about its making,
scanner.images.declared), then, on every row, the verdicts' Provenance
(PROVENANCE_COLUMNS: the model, its file's SHA-256, its method and feature set, how
the threshold was set, the scanner's version). write_verdicts writes it and
read_verdicts, the one reader, reads it back as a VerdictFile (files written before
the provenance, sha256 or declared columns still read, without them); a file's
rows are matched with a store's by the path as written, else by labels.path_key.

Light: numpy and the standard library only (export reads verdicts without numba
or scikit-learn).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from scanner.core.echo import echoed
from scanner.core.errors import DetectorError, ReportError
from scanner.core.schema import arrow_text
from scanner.core.version import __version__
from scanner.detect.labels import FAKE, MAX_TABLE_BYTES, REAL, check_table, path_key
from scanner.images.declared import generator_declarations
from scanner.images.declared import ordered as declaration_order
from scanner.io.outputs import output_file, output_path, table_format
from scanner.io.tables import read_parquet_records

# --- scores to verdicts ------------------------------------------------------------


def logistic(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1 / (1 + exp(-x)), without overflow; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])  # NaN lands here too, and stays NaN
    out[~positive] = e / (1.0 + e)
    return out


def verdicts_of(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.object_]:
    """'fake' for score > 0, 'real' for score <= 0, '' for NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    out = np.where(scores > 0, FAKE, REAL).astype(object)
    out[np.isnan(scores)] = ""
    return out


@dataclass(frozen=True)
class Threshold:
    """A decision threshold chosen from known-real images: scores above it are called fake."""

    value: float
    target_fpr: float  # the false-positive rate asked for
    reals: int  # known-real images scored
    above: int  # of them, how many score above the threshold (called fake)

    @property
    def achieved_fpr(self) -> float:
        return self.above / self.reals

    def describe(self) -> str:
        text = (
            f"threshold {self.value:.6g}: {self.above} of {self.reals} known-real images score above it "
            f"({self.achieved_fpr:.1%}, target at most {self.target_fpr:.1%})"
        )
        if self.reals * self.target_fpr < 1:
            text += (
                f"; with {self.reals} known reals no false-positive rate below {1 / self.reals:.1%} can be "
                "told apart from zero, so the threshold is their highest score: give more known reals"
            )
        return text


def threshold_at_fpr(real_scores: npt.NDArray[np.float64], fpr: float) -> Threshold:
    """The lowest threshold that calls at most `fpr` of the known-real images fake (score > threshold).

    With n finite scores, k = floor(fpr * n) of them may lie above it: the threshold
    is the (k+1)-th highest score, so ties at it count as real. DetectorError when
    no score is finite or fpr is outside [0, 1).
    """
    if not 0.0 <= fpr < 1.0:
        raise DetectorError(f"the false-positive rate must be at least 0 and below 1, not {fpr}")
    scores = np.asarray(real_scores, dtype=np.float64)
    scores = np.sort(scores[np.isfinite(scores)])[::-1]
    if not len(scores):
        raise DetectorError("none of the known-real images could be scored; a threshold needs at least one")
    allowed = math.floor(fpr * len(scores) + 1e-9)
    value = float(scores[min(allowed, len(scores) - 1)])
    return Threshold(value, fpr, len(scores), int(np.sum(scores > value)))


# --- where verdicts come from ----------------------------------------------------

UNSUPERVISED = "unsupervised"  # the model of verdicts from a mixture fitted on the batch itself
THRESHOLD_SOURCES = ("default", "--threshold", "--fpr")
UNCALIBRATED_WARNING = (
    "the bundled model is not calibrated on this collection: on generators it has not seen it is near chance "
    "(EVALUATION.md); calibrate it (--fpr F --real-anchor DIR) or train on your own images; see docs/detectors.md"
)


@dataclass(frozen=True)
class Provenance:
    """What produced a set of verdicts: the model, the threshold and how it was set, the scanner's version."""

    model: str  # 'bundled:' + a feature set (extended, paper, residual), a model file's path, or 'unsupervised'
    model_sha256: str  # of the model file's bytes ('' for a mixture fitted on the batch)
    method: str  # gmm, svm, logistic
    feature_set: str  # paper, extended, residual
    threshold: float
    threshold_set_by: str  # 'default' (the model's own boundary, 0), '--threshold' or '--fpr'
    target_fpr: float = math.nan  # with --fpr: the false-positive rate asked for
    real_anchors: int = 0  # known-real images used: to set the threshold (--fpr), or the mixture's side
    real_anchor_paths: tuple[str, ...] = ()  # the --real-anchor paths as given
    scanner_version: str = __version__

    @property
    def bundled(self) -> bool:
        return self.model.startswith("bundled:")

    @property
    def uncalibrated(self) -> bool:
        """A bundled model on its own boundary: nothing of this collection set the threshold."""
        return self.bundled and self.threshold_set_by == "default"

    def threshold_text(self) -> str:
        """How the threshold was set, in words: 'default', '--threshold', '--fpr 0.05 --real-anchor DIR (N anchors)'."""
        text = self.threshold_set_by
        if self.threshold_set_by == "--fpr":
            text += f" {self.target_fpr:g}"
        if self.real_anchor_paths or self.real_anchors:
            anchors = " ".join(f"--real-anchor {p}" for p in self.real_anchor_paths)
            text += f" {anchors} ({self.real_anchors} known-real images used)"
        if self.model == UNSUPERVISED:
            text += " (--unsupervised)"
        return text

    def cells(self) -> list[str]:
        """The values of PROVENANCE_COLUMNS, as the CSV holds them."""
        return [
            self.model,
            self.model_sha256,
            self.method,
            self.feature_set,
            self.threshold_set_by,
            "" if math.isnan(self.target_fpr) else repr(float(self.target_fpr)),
            str(self.real_anchors),
            json.dumps(list(self.real_anchor_paths), ensure_ascii=False),
            self.scanner_version,
        ]

    def rows(self) -> list[tuple[str, str]]:
        """(name, value) for a table that people read (the report's run table)."""
        return [
            ("model", self.model),
            ("model SHA-256", self.model_sha256 or "(none: fitted on this batch)"),
            ("method", self.method),
            ("feature set", self.feature_set),
            ("threshold", f"{self.threshold:.6g}"),
            ("threshold set by", self.threshold_text()),
            ("classified by", f"scanner {self.scanner_version}"),
        ]


# --- the verdicts file ----------------------------------------------------------


PROVENANCE_COLUMNS = (
    "model",
    "model_sha256",
    "method",
    "feature_set",
    "threshold_set_by",
    "target_fpr",
    "real_anchors",
    "real_anchor_paths",
    "scanner_version",
)
VERDICT_COLUMNS = (
    "path",
    "status",
    "verdict",
    "score",
    "threshold",
    "probability",
    "sha256",
    "declared",
    *PROVENANCE_COLUMNS,
)
VERDICT_FORMATS = ("csv", "jsonl", "parquet")  # by the output's suffix (scanner.io.outputs.table_format)
PARQUET_PROVENANCE_KEY = "scanner.verdicts.provenance"  # the Parquet file's key-value metadata: the provenance


def verdict_order(paths: Sequence[str]) -> list[int]:
    """The order of a verdicts file's rows: by path (its bytes), whatever order the inputs were measured in,
    so that two runs of one sweep diff cleanly; classify's table on the terminal follows it too."""
    keys = [os.fsencode(p) for p in paths]
    return sorted(range(len(keys)), key=keys.__getitem__)


def write_verdicts(
    path: str | os.PathLike[str],
    paths: Sequence[str],
    status: Iterable[str],
    verdicts: Iterable[str],
    scores: Iterable[float],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    threshold: float = 0.0,
    probability: Iterable[float] | None = None,
    provenance: Provenance | None = None,
    sha256: Iterable[str] | None = None,
    declared: Iterable[str] | None = None,
) -> None:
    """The verdicts file (`-`: standard output, CSV), its rows sorted by path (verdict_order): path, status,
    verdict (real, fake, or empty when unusable), score (full precision), the threshold the verdict compares
    the score with, the model's probability that the file is fake (empty where the model gives none), the
    file's SHA-256 as its row recorded it, what the file declares about its making (empty when nothing, or
    not given); then, on every row, the provenance (its threshold is the one
    given; without one the columns are empty). CSV, JSONL or Parquet by the suffix (.csv, .jsonl, .ndjson,
    .parquet, .pq; anything else is CSV): JSONL and Parquet write a missing value as null, the anchors'
    paths as a list, and Parquet also keeps the provenance as the file's key-value metadata. Written whole
    or not at all, never over one of `inputs`."""
    paths = list(paths)
    chances = [math.nan] * len(paths) if probability is None else list(probability)
    hashes = [""] * len(paths) if sha256 is None else [str(h) for h in sha256]
    claims = [""] * len(paths) if declared is None else [str(d) for d in declared]
    rows = list(zip(paths, status, verdicts, scores, chances, hashes, claims, strict=True))
    ordered = [rows[i] for i in verdict_order(paths)]
    chosen = table_format(path)
    if chosen == "csv":
        with output_file(path, inputs=inputs) as handle:
            _write_csv(handle, ordered, threshold, provenance)
    elif chosen == "jsonl":
        with output_file(path, inputs=inputs) as handle:
            for record in _records(ordered, threshold, provenance):
                handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
    else:
        with output_path(path, inputs=inputs) as tmp:
            _write_parquet(tmp, list(_records(ordered, threshold, provenance)), provenance)


_Row = tuple[str, str, str, float, float, str, str]  # path, status, verdict, score, probability, sha256, declared


def _write_csv(handle: Any, rows: list[_Row], threshold: float, provenance: Provenance | None) -> None:
    def number(value: float) -> str:
        return "" if math.isnan(value) else repr(float(value))

    origin = [""] * len(PROVENANCE_COLUMNS) if provenance is None else provenance.cells()
    writer = csv.writer(handle)
    writer.writerow(VERDICT_COLUMNS)
    for path, status, verdict, score, chance, digest, claim in rows:
        writer.writerow(
            [path, status, verdict, number(score), repr(float(threshold)), number(chance), digest, claim, *origin]
        )


def _records(rows: list[_Row], threshold: float, provenance: Provenance | None) -> Iterator[dict[str, Any]]:
    """The rows as typed values, a missing one as None: what JSONL and Parquet hold."""

    def number(value: float) -> float | None:
        return None if math.isnan(value) else float(value)

    origin: dict[str, Any] = dict.fromkeys(PROVENANCE_COLUMNS)
    if provenance is not None:
        origin.update(
            model=provenance.model,
            model_sha256=provenance.model_sha256 or None,
            method=provenance.method,
            feature_set=provenance.feature_set,
            threshold_set_by=provenance.threshold_set_by,
            target_fpr=number(provenance.target_fpr),
            real_anchors=provenance.real_anchors,
            real_anchor_paths=list(provenance.real_anchor_paths),
            scanner_version=provenance.scanner_version,
        )
    for path, status, verdict, score, chance, digest, claim in rows:
        yield {
            "path": path,
            "status": status,
            "verdict": verdict or None,
            "score": number(score),
            "threshold": float(threshold),
            "probability": number(chance),
            "sha256": digest or None,
            "declared": claim or None,
            **origin,
        }


def _write_parquet(path: str, records: list[dict[str, Any]], provenance: Provenance | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text, number, count = pa.string(), pa.float64(), pa.int64()
    kinds = {"score": number, "threshold": number, "probability": number, "target_fpr": number}
    kinds.update(real_anchors=count, real_anchor_paths=pa.list_(text))
    schema = pa.schema([pa.field(name, kinds.get(name, text)) for name in VERDICT_COLUMNS])
    if provenance is not None:
        described = dict(zip(PROVENANCE_COLUMNS, provenance.cells(), strict=True))
        described["threshold"] = repr(float(provenance.threshold))
        schema = schema.with_metadata({PARQUET_PROVENANCE_KEY: json.dumps(described, ensure_ascii=False)})
    columns = {name: [record[name] for record in records] for name in VERDICT_COLUMNS}
    columns["path"] = [arrow_text(p) for p in columns["path"]]
    table = pa.Table.from_pydict(columns, schema=schema)
    pq.write_table(table, path, compression="zstd")


@dataclass(frozen=True, eq=False)
class VerdictFile:
    """A verdicts file read back: its rows in file order, each path as written."""

    source: str  # the file's name
    paths: list[str]
    verdict: npt.NDArray[np.object_]  # (M,) object: 'real', 'fake', or '' (no verdict: the file could not be judged)
    score: npt.NDArray[np.float64]  # (M,) float64, NaN where empty
    threshold: npt.NDArray[np.float64]  # (M,) float64, NaN where empty or absent
    probability: npt.NDArray[np.float64]  # (M,) float64, NaN where empty or absent
    # What produced the verdicts: each distinct provenance of the rows, in the order first seen (one for a
    # file classify wrote; none for a file written before the provenance columns)
    provenance: tuple[Provenance, ...] = ()
    sha256: list[str] = field(default_factory=list)  # each row's file SHA-256 ('' where none; empty: no column)
    declared: list[str] = field(default_factory=list)  # what each row's file declares ('' when nothing; as sha256)
    _by_path: dict[str, int] = field(init=False, repr=False)
    _by_key: dict[str, int] = field(init=False, repr=False)  # built on the first path not written as here

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", {p: j for j, p in enumerate(self.paths)})
        object.__setattr__(self, "_by_key", {})

    def __len__(self) -> int:
        return len(self.paths)

    def find(self, path: str) -> int | None:
        """The row of `path`: written as here, else the same absolute normalised path (the last of repeats)."""
        row = self._by_path.get(path)
        if row is None and self.paths:
            if not self._by_key:
                self._by_key.update((path_key(p), j) for j, p in enumerate(self.paths))
            row = self._by_key.get(path_key(path))
        return row

    def rows_of(self, paths: Sequence[str]) -> tuple[npt.NDArray[np.int64], int]:
        """Each of `paths`' row in this file (-1 where none; a later row of the file wins), and how many rows
        of the file match none of `paths` (matched as written, else by the absolute normalised path)."""
        index = {p: i for i, p in enumerate(paths)}
        normalised: dict[str, int] = {}  # built only if some path is not written as in `paths`
        rows = np.full(len(paths), -1, dtype=np.int64)
        unmatched = 0
        for j, path in enumerate(self.paths):
            i = index.get(path)
            if i is None:
                if not normalised:
                    normalised = {path_key(p): i for i, p in enumerate(paths)}
                i = normalised.get(path_key(path))
            if i is None:
                unmatched += 1
            else:
                rows[i] = j
        return rows, unmatched


def read_verdicts(path: str | os.PathLike[str]) -> VerdictFile:
    """Read a verdicts file (as written by write_verdicts: CSV, JSONL or Parquet, told apart by their first
    bytes). The columns path, verdict and score are needed; threshold, probability, sha256, declared and the
    provenance columns are read where present. ReportError names what cannot be read."""
    name = os.fspath(path)
    paths: list[str] = []
    verdicts: list[str] = []
    hashes: list[str] = []
    claims: list[str] = []
    numbers: dict[str, list[float]] = {"score": [], "threshold": [], "probability": []}
    origins: dict[tuple[str, ...], Provenance | None] = {}
    try:
        with _verdict_rows(name) as (fieldnames, rows):
            if not fieldnames or not {"path", "verdict", "score"} <= set(fieldnames):
                raise ReportError(
                    f"{name}: a verdicts file needs the columns path,verdict,score (as written by scanner classify)"
                )
            with_origin = set(PROVENANCE_COLUMNS) <= set(fieldnames)
            for line, row in enumerate(rows, start=2):
                value = (row["verdict"] or "").strip().lower()
                if value not in (REAL, FAKE, ""):
                    raise ReportError(
                        f"{name}, line {line}: verdict {echoed(row['verdict'])} is not real, fake or empty"
                    )
                for column, values in numbers.items():
                    text = (row.get(column) or "").strip()
                    try:
                        values.append(float(text) if text else math.nan)
                    except ValueError:
                        raise ReportError(f"{name}, line {line}: {column} {echoed(text)} is not a number") from None
                if with_origin:
                    cells = (row.get("threshold") or "", *(row[c] or "" for c in PROVENANCE_COLUMNS))
                    if cells not in origins:
                        origins[cells] = _provenance_of(cells, numbers["threshold"][-1], f"{name}, line {line}")
                paths.append(row["path"] or "")
                verdicts.append(value)
                hashes.append((row.get("sha256") or "").strip())
                claims.append((row.get("declared") or "").strip())
    except OSError as exc:
        raise ReportError(f"cannot read verdicts file {name}: {exc.strerror or exc}") from None
    except (csv.Error, UnicodeError) as exc:
        raise ReportError(f"{name}: not a readable CSV file: {exc}") from None
    columns = {column: np.array(values, dtype=np.float64) for column, values in numbers.items()}
    provenance = tuple(p for p in origins.values() if p is not None)
    return VerdictFile(
        name,
        paths,
        np.array(verdicts, dtype=object),
        **columns,
        provenance=provenance,
        sha256=hashes,
        declared=claims,
    )


PARQUET_MAGIC = b"PAR1"


@contextmanager
def _verdict_rows(name: str) -> Iterator[tuple[list[str], Iterator[dict[str, str]]]]:
    """The file's column names and its rows as text, whatever its format: JSONL and Parquet values are
    written as the CSV holds them (null: empty; numbers: repr; the anchors' paths: a JSON list)."""
    check_table(name, "verdicts file")
    with open(name, "rb") as probe:
        start = probe.read(64)
    if start.startswith(PARQUET_MAGIC):
        fieldnames, records = _parquet_records(name)
        yield fieldnames, (_as_text(record) for record in records)
        return
    with open(name, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        if start.lstrip()[:1] == b"{":
            yield _jsonl_rows(name, handle)
        else:
            reader = csv.DictReader(handle)
            yield list(reader.fieldnames or []), iter(reader)


MAX_JSON_LINE = 1 << 24  # characters of one JSONL verdict: a path, a few numbers, the anchors' paths


def _jsonl_rows(name: str, handle: IO[str]) -> tuple[list[str], Iterator[dict[str, str]]]:
    def numbered() -> Iterator[tuple[int, str]]:
        """The lines that hold something, each read within MAX_JSON_LINE (a 300 MB line, whole, then
        parsed, took 2 GB)."""
        for number in itertools.count(1):
            line = handle.readline(MAX_JSON_LINE + 1)
            if not line:
                return
            if len(line) > MAX_JSON_LINE and not line.endswith("\n"):  # MAX_JSON_LINE and its newline pass
                raise ReportError(f"{name}, line {number}: longer than {MAX_JSON_LINE:,} characters")
            if line.strip():
                yield number, line

    lines = numbered()
    first_line = next(lines, None)
    if first_line is None:
        return [], iter(())
    first_number, first = first_line

    def record(line: str, number: int) -> dict[str, Any]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReportError(f"{name}, line {number}: not a JSON object ({exc.msg})") from None
        if not isinstance(value, dict):
            raise ReportError(f"{name}, line {number}: not a JSON object")
        return value

    head = record(first, first_number)

    def rows() -> Iterator[dict[str, str]]:
        yield _as_text(head)
        for number, line in lines:
            yield _as_text(record(line, number))

    return list(head), rows()


def _parquet_records(name: str) -> tuple[list[str], Iterator[dict[str, Any]]]:
    # half a CSV's bound: what is counted is held again as Python values, then as the CSV's text
    return read_parquet_records(name, MAX_TABLE_BYTES // 2, ReportError, VERDICT_COLUMNS)


def _as_text(record: dict[str, Any]) -> dict[str, str]:
    """A typed record's values as the CSV writes them."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, list):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    return {str(key): text(value) for key, value in record.items()}


def _provenance_of(cells: tuple[str, ...], threshold: float, where: str) -> Provenance | None:
    """A row's Provenance from its threshold and PROVENANCE_COLUMNS cells; None where they are all empty."""
    given = dict(zip(PROVENANCE_COLUMNS, cells[1:], strict=True))
    if not any(given.values()):
        return None
    if given["threshold_set_by"] not in THRESHOLD_SOURCES:
        raise ReportError(
            f"{where}: threshold_set_by {echoed(given['threshold_set_by'])} is not one of "
            + ", ".join(THRESHOLD_SOURCES)
        )
    try:
        fpr = float(given["target_fpr"]) if given["target_fpr"].strip() else math.nan
    except ValueError:
        raise ReportError(f"{where}: target_fpr {echoed(given['target_fpr'])} is not a number") from None
    try:
        anchors = int(given["real_anchors"] or "0")
    except ValueError:
        raise ReportError(f"{where}: real_anchors {echoed(given['real_anchors'])} is not a whole number") from None
    try:
        anchor_paths = json.loads(given["real_anchor_paths"] or "[]")
    except json.JSONDecodeError:
        anchor_paths = None
    if not isinstance(anchor_paths, list) or not all(isinstance(p, str) for p in anchor_paths):
        raise ReportError(
            f"{where}: real_anchor_paths {echoed(given['real_anchor_paths'])} is not a JSON list of paths"
        )
    return Provenance(
        model=given["model"],
        model_sha256=given["model_sha256"],
        method=given["method"],
        feature_set=given["feature_set"],
        threshold=threshold,
        threshold_set_by=given["threshold_set_by"],
        target_fpr=fpr,
        real_anchors=anchors,
        real_anchor_paths=tuple(anchor_paths),
        scanner_version=given["scanner_version"],
    )


# --- declarations against verdicts --------------------------------------------------------

DISAGREEMENTS_LISTED = 10  # files a disagreement line names


def declared_but_real(
    paths: Sequence[str], verdicts: Sequence[str] | npt.NDArray[Any], declared: Sequence[str] | npt.NDArray[Any]
) -> list[int]:
    """The rows whose file declares a generator (a synthetic IPTC source type, a generator's text or software
    name: scanner.images.declared.generator_declarations) but whose spectral verdict is real, in the verdicts
    file's order (by path). A C2PA manifest alone is no such declaration: cameras sign photographs too."""
    return [i for i in verdict_order(paths) if verdicts[i] == REAL and generator_declarations(str(declared[i]))]


def disagreement_line(
    paths: Sequence[str],
    verdicts: Sequence[str] | npt.NDArray[Any],
    declared: Sequence[str] | npt.NDArray[Any],
    shown: Callable[[str], str] = str,
) -> str | None:
    """e.g. "3 files declare a generator (iptc:trainedAlgorithmicMedia, png-text:parameters) but were judged
    real: a.jpg, b.png, c.png", naming DISAGREEMENTS_LISTED files at most and the declarations that name a
    generator; None when no file is in that case. The verdicts stand: a declaration is a second line of
    evidence, not a verdict (docs/detectors.md)."""
    rows = declared_but_real(paths, verdicts, declared)
    if not rows:
        return None
    kinds = declaration_order(kind for i in rows for kind in generator_declarations(str(declared[i])))
    named = ", ".join(shown(paths[i]) for i in rows[:DISAGREEMENTS_LISTED])
    more = f" and {len(rows) - DISAGREEMENTS_LISTED:,} more" if len(rows) > DISAGREEMENTS_LISTED else ""
    files, were = (f"{len(rows):,} files declare", "were") if len(rows) != 1 else ("1 file declares", "was")
    return f"{files} a generator ({', '.join(kinds)}) but {were} judged real: {named}{more}"
