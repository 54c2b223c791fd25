"""The feature store's rows, declared once.

``COLUMNS`` is the row schema: every column's name, kind and meaning. Everything
that handles rows derives from it: ``Rows`` (a batch of rows as one array per
column, what workers send back and the journal records), the HDF5 writer and
readers (scanner.store.hdf5), the journal encoding (scanner.store.journal), ``FeatureTable``
(a whole store in memory) and the export. The width of ``features`` is that of
the feature set that measured the rows; its column names are recorded with the
store and checked whenever it is read.

``Measurement`` is what makes two sets of rows comparable: the feature set, the
spectrum mode, the precision, and whether images were canonicalised (re-encoded
as JPEG quality 90, 4:2:0, in memory) before measuring. A store, a journal and a model each record
theirs, and rows measured differently are never mixed.

Only numpy is imported here, so light commands stay light.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from scanner.core.constants import (
    DEFAULT_PRECISION,
    DEFAULT_SPECTRUM,
    PRECISIONS,
    SPECTRUM_MODES,
    STATUSES,
    Status,
)
from scanner.core.echo import echoed
from scanner.core.errors import InputError
from scanner.core.featuresets import DEFAULT_FEATURE_SET, get_feature_set

SCHEMA_VERSION = 3
# Schema 1 lacks the feature set and precision attributes (paper, double); schemas 1 and 2 lack the sha256
# and declared columns (read as '': not hashed, nothing declared). A resumed older store is rewritten as
# schema 3 at its first merge.
READABLE_SCHEMAS = (1, 2, 3)

# Kinds of column: file-name bytes and text are variable-length (object arrays in
# memory, UTF-8 strings in HDF5); the others are fixed-width numbers.
VARIABLE_KINDS = ("bytes", "text")
_DTYPES = {
    "bytes": object,
    "text": object,
    "int32": np.int32,
    "int64": np.int64,
    "float64": np.float64,
    "features": np.float64,
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # bytes, text, int32, int64, float64 or features (float64, one column per feature)
    default: Any
    meaning: str
    export: bool = True  # a column of `scanner export` (features: one column per feature name)
    since: int = 1  # the store schema that brought it: older stores lack it and read as its default

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(_DTYPES[self.kind])

    @property
    def variable(self) -> bool:
        return self.kind in VARIABLE_KINDS

    def filled(self, n: int, width: int) -> npt.NDArray[Any]:
        """n rows of the default value."""
        if self.kind == "features":
            return np.full((n, width), np.nan)
        out = np.empty(n, dtype=self.dtype)
        out[:] = [self.default] * n if self.variable else self.default
        return out

    def coerce(self, values: Any, n: int, width: int) -> npt.NDArray[Any]:
        """values as this column's array (a copy only where the type differs)."""
        array: npt.NDArray[Any]
        if self.kind == "features":
            array = np.asarray(values, dtype=np.float64).reshape(n, width) if n else np.zeros((0, width))
        elif self.variable:
            array = np.empty(n, dtype=object)
            array[:] = list(values)
        else:
            array = np.asarray(values, dtype=self.dtype)
        if len(array) != n:
            raise ValueError(f"column {self.name} has {len(array)} values for {n} rows")
        return array


COLUMNS: tuple[Column, ...] = (
    Column("path", "bytes", b"", "the file's path relative to its root: the file name's exact bytes"),
    Column(
        "root",
        "int32",
        0,
        "index into the roots attribute; 0 is '' (files named directly: path is absolute)",
        export=False,
    ),
    Column("status", "text", Status.OK.value, "what became of the file (see the statuses)"),
    Column("error", "text", "", "why the status is not ok ('' when ok)"),
    Column("features", "features", np.nan, "the feature set's values, one column each; NaN when not ok"),
    Column("height", "int64", 0, "pixels, 0 when unknown"),
    Column("width", "int64", 0, "pixels, 0 when unknown"),
    Column("format", "text", "", "the format judged from the content (JPEG, PNG, ...), '' when unknown"),
    Column("jpeg_subsampling", "text", "", "a JPEG's chroma subsampling (4:2:0, ...), '' otherwise"),
    Column("jpeg_quality", "int64", 0, "a JPEG's estimated libjpeg quality, 0 otherwise"),
    Column("size", "int64", 0, "bytes when scanned (what resume compares)"),
    Column("mtime", "float64", 0.0, "modification time when scanned (what resume compares)"),
    Column(
        "sha256",
        "text",
        "",
        "SHA-256 of the bytes read (lowercase hex); '' when the file could not be read",
        since=3,
    ),
    Column(
        "declared",
        "text",
        "",
        "what the file's metadata declares about its making, ';'-joined (c2pa, iptc:trainedAlgorithmicMedia, "
        "png-text:parameters, exif-software:NAME); '' when nothing (scanner.images.declared)",
        since=3,
    ),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
COLUMN_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}


class Rows:
    """A batch of rows: one array per column of COLUMNS, all of one length.

    Columns are read as attributes (``rows.status``) or by name (``rows["status"]``);
    bytes and text columns are object arrays, ``features`` is (N, width) float64.
    """

    __slots__ = ("_columns",)

    def __init__(self, columns: Mapping[str, Any], width: int | None = None) -> None:
        missing = [name for name in COLUMN_NAMES if name not in columns]
        unknown = sorted(set(columns) - set(COLUMN_NAMES))
        if missing or unknown:
            raise ValueError(f"rows need exactly the schema's columns (missing {missing}, unknown {unknown})")
        n = len(columns["path"])
        features = columns["features"]
        width = width if width is not None else np.shape(features)[1] if np.ndim(features) == 2 else 0
        self._columns = {c.name: c.coerce(columns[c.name], n, width) for c in COLUMNS}

    @classmethod
    def build(cls, n: int, n_features: int, /, **given: Any) -> Rows:
        """n rows of n_features features: the columns given, every other one at its default."""
        unknown = sorted(set(given) - set(COLUMN_NAMES))
        if unknown:
            raise ValueError(f"unknown columns: {', '.join(unknown)}")
        return cls({c.name: given[c.name] if c.name in given else c.filled(n, n_features) for c in COLUMNS}, n_features)

    @classmethod
    def empty(cls, width: int) -> Rows:
        return cls.build(0, width)

    def __reduce__(self) -> tuple[type[Rows], tuple[dict[str, npt.NDArray[Any]]]]:
        return (Rows, (self._columns,))

    def __getattr__(self, name: str) -> npt.NDArray[Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._columns[name]
        except KeyError:
            raise AttributeError(f"rows have no column {name!r}") from None

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self._columns[name]

    def __len__(self) -> int:
        return len(self._columns["path"])

    @property
    def n_features(self) -> int:
        return int(self._columns["features"].shape[1])

    def replace(self, **columns: Any) -> Rows:
        """The same rows with these columns replaced."""
        return Rows({**self._columns, **columns}, self.n_features)

    def take(self, index: Any) -> Rows:
        """The rows at these positions (an int array or a boolean mask)."""
        positions = np.asarray(index)
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        return Rows({name: column[positions] for name, column in self._columns.items()}, self.n_features)

    @staticmethod
    def concat(batches: Sequence[Rows], width: int | None = None) -> Rows:
        if not batches:
            if width is None:
                raise ValueError("concatenating no batches needs the feature width")
            return Rows.empty(width)
        return Rows({name: np.concatenate([b[name] for b in batches]) for name in COLUMN_NAMES}, batches[0].n_features)


# --- paths: a root index plus the bytes relative to it -------------------------


def split_path(path: str | bytes, roots: Sequence[str]) -> tuple[int, bytes]:
    """(root index, path bytes relative to it): the longest root the path lies under, else the '' root."""
    encoded = os.fsencode(path)
    best, rel, best_len = (0 if roots and roots[0] == "" else -1), encoded, -1
    for i, root in enumerate(roots):
        prefix = os.fsencode(root).rstrip(b"/") + b"/"
        if root and len(prefix) > best_len and encoded.startswith(prefix):
            best, rel, best_len = i, encoded[len(prefix) :], len(prefix)
    if best < 0:
        raise ValueError(f"{path!r} lies under none of the roots and there is no '' root")
    return best, rel


def full_paths(rows: Rows, roots: Sequence[str | bytes]) -> list[bytes]:
    """Each row's path as bytes: its root joined with its relative path."""
    encoded = [os.fsencode(r) for r in roots]
    return [os.path.join(encoded[r], rel) for r, rel in zip(rows.root.tolist(), rows.path.tolist(), strict=True)]


def joined_paths(rows: Rows, roots: Sequence[str | bytes]) -> list[str]:
    """Usable paths (str): root joined with the relative bytes, decoded losslessly."""
    return [os.fsdecode(p) for p in full_paths(rows, roots)]


# --- what rows were measured with ------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """What makes rows comparable: the feature set, the spectrum mode, the transform's precision, and
    whether each image was canonicalised (re-encoded as JPEG quality 90, 4:2:0, in memory) first."""

    feature_set: str = DEFAULT_FEATURE_SET
    spectrum: str = DEFAULT_SPECTRUM
    precision: str = DEFAULT_PRECISION
    canonical: bool = False

    def __post_init__(self) -> None:
        get_feature_set(self.feature_set)
        if self.spectrum not in SPECTRUM_MODES:
            raise InputError(f"spectrum must be one of {', '.join(SPECTRUM_MODES)}, not {echoed(self.spectrum)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {echoed(self.precision)}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return get_feature_set(self.feature_set).names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def attrs(self) -> dict[str, str]:
        attrs = {"feature_set": self.feature_set, "spectrum": self.spectrum, "precision": self.precision}
        if self.canonical:  # written only when set: files measured as found read the same as before
            attrs["canonical"] = "true"
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Measurement:
        """From a store's, journal's or model's attributes. Files of scanner 0.1 lack the feature set
        and the precision: they hold the paper's features, measured in double precision."""
        canonical = attrs.get("canonical", "false")
        if isinstance(canonical, bytes):
            canonical = canonical.decode("utf-8", "replace")
        if str(canonical) not in ("true", "false"):
            raise InputError(f"the canonical attribute must be true or false, not {echoed(canonical)}")
        return cls(
            str(attrs.get("feature_set", "paper")),
            str(attrs.get("spectrum", "log")),
            str(attrs.get("precision", "double")),
            str(canonical) == "true",
        )

    def describe(self) -> str:
        canonical = ", canonicalised (JPEG q90 4:2:0)" if self.canonical else ""
        return f"{self.feature_set} features, {self.spectrum} spectrum, {self.precision} precision{canonical}"

    def difference(self, other: Measurement) -> tuple[str, str, str] | None:
        """The first option in which `other` differs, as (option, this value, its value); None when they match.

        For canonicalising the option is empty and the values are the flags (--canonical, --no-canonical)."""
        for name in ("feature_set", "spectrum", "precision"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                return f"--{name.replace('_', '-')}", mine, theirs
        if self.canonical != other.canonical:
            flag = {True: "--canonical", False: "--no-canonical"}
            return "", flag[self.canonical], flag[other.canonical]
        return None


# --- a whole store in memory ------------------------------------------------------------


@dataclass(eq=False)
class FeatureTable:
    """A whole store in memory: its rows, their usable paths and how they were measured.

    Row columns are attributes too: ``table.status``, ``table.features``, ``table.height``...
    ``table.path`` is the usable path of each row (root joined with the stored relative path).
    """

    rows: Rows
    roots: list[str]
    measurement: Measurement = field(default_factory=Measurement)
    attrs: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.path = joined_paths(self.rows, self.roots)
        if self.rows.n_features != self.measurement.n_features:
            raise ValueError(
                f"{self.rows.n_features} feature columns for the {self.measurement.n_features} of "
                f"the {self.measurement.feature_set} set"
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getattr__(self, name: str) -> npt.NDArray[Any]:
        if name.startswith("_") or name in ("rows", "roots", "measurement", "attrs", "path"):
            raise AttributeError(name)
        column: npt.NDArray[Any] = getattr(self.rows, name)
        return column

    @property
    def spectrum(self) -> str:
        return self.measurement.spectrum

    @property
    def feature_set(self) -> str:
        return self.measurement.feature_set

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.measurement.feature_names

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        """The exported columns (those of `scanner export`): see export_arrays."""
        return export_arrays(self.rows, self.roots, self.measurement)

    def to_arrow(self) -> Any:
        """A pyarrow Table of the exported columns: path as a string, one float column per feature, and null
        where a value is missing (NaN, and the store's 0 or '' that stand for unknown: ``missing``), as in
        `scanner export`'s Parquet.

        A file name that is not UTF-8 cannot be an Arrow string: its undecodable bytes
        read as backslash escapes (``\\xff``); ``table.path`` keeps them exactly.
        """
        import pyarrow as pa

        columns = missing(self.columns())
        columns["path"] = np.array([arrow_text(p) for p in columns["path"]], dtype=object)
        arrays = {name: pa.array(values, from_pandas=True) for name, values in columns.items()}
        return pa.table(arrays, metadata={"scanner.measurement": self.measurement.describe()})

    def to_pandas(self) -> Any:
        """A pandas DataFrame of the exported columns (needs pandas: ``pip install pandas``): NaN where a feature
        is missing; the integer and text columns keep the store's 0 and '' for unknown (``missing`` names them),
        so that they stay numeric.

        ``path`` holds the usable paths exactly; where one is not UTF-8 the column is of
        dtype object (pandas' string dtype cannot hold it).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("FeatureTable.to_pandas needs pandas: pip install pandas") from None
        columns: dict[str, Any] = dict(self.columns())
        if any(arrow_text(p) != p for p in columns["path"]):
            columns["path"] = pd.Series(columns["path"], dtype=object)
        return pd.DataFrame(columns)


def arrow_text(text: str) -> str:
    """A str Arrow (UTF-8) can hold: a path's undecodable bytes (surrogate escapes) as backslash escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def export_columns_of(measurement: Measurement) -> tuple[str, ...]:
    """The exported columns' names: the columns marked export in schema order, then one per feature."""
    plain = [c.name for c in COLUMNS if c.export and c.kind != "features"]
    return (*plain, *measurement.feature_names)


def export_arrays(rows: Rows, roots: Sequence[str | bytes], measurement: Measurement) -> dict[str, npt.NDArray[Any]]:
    """The exported columns of these rows, by name (export_columns_of's order): ``path`` as usable paths
    (str, a non-UTF-8 name as surrogate escapes), every other column as stored, then the features, one
    float64 array each."""
    out: dict[str, npt.NDArray[Any]] = {}
    for column in COLUMNS:
        if column.name == "path":
            out["path"] = np.array(joined_paths(rows, roots), dtype=object)
        elif column.export and column.kind != "features":
            out[column.name] = rows[column.name]
    for k, name in enumerate(measurement.feature_names):
        out[name] = np.ascontiguousarray(rows.features[:, k])
    return out


# Columns whose value in the store stands for "missing": text '' and these integers' 0 (and "verdict", the
# column an export joins from a verdicts file). NaN needs no mapping: every writer writes it as null.
MISSING_TEXT = ("error", "format", "jpeg_subsampling", "sha256", "declared", "verdict")
MISSING_ZERO = ("height", "width", "jpeg_quality")


def missing(columns: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """The columns with the store's sentinels of a missing value as None (object arrays); NaN stays NaN."""
    out = dict(columns)
    for name, values in columns.items():
        if name in MISSING_TEXT:
            gone = values == ""
        elif name in MISSING_ZERO:
            gone = values == 0
        else:
            continue
        if np.any(gone):
            nullable = values.astype(object)
            nullable[gone] = None
            out[name] = nullable
    return out


def make_table(
    paths: Sequence[str | os.PathLike[str]],
    features: Any = None,
    *,
    measurement: Measurement | None = None,
    spectrum: str | None = None,
    status: Iterable[str] | None = None,
    roots: Sequence[str] = (),
    attrs: Mapping[str, Any] | None = None,
    **columns: Any,
) -> FeatureTable:
    """A FeatureTable of these files: every column not given at its default.

    Paths are stored relative to the longest of `roots` they lie under, the
    others as given (under the '' root). Features are NaN where the status is
    not ok (or where none are given).
    """
    measurement = measurement or Measurement(spectrum=spectrum or DEFAULT_SPECTRUM)
    n, width = len(paths), measurement.n_features
    values = np.full((n, width), np.nan) if features is None else np.array(features, dtype=np.float64)
    if values.shape != (n, width):
        raise ValueError(f"{n} paths need an ({n}, {width}) feature array, not {values.shape}")
    status_column = np.array(list(status) if status is not None else [Status.OK.value] * n, dtype=object)
    if len(status_column) != n:
        raise ValueError(f"{n} paths need {n} statuses")
    unknown = set(status_column.tolist()) - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown statuses {sorted(unknown)}")
    values[status_column != Status.OK.value] = np.nan
    all_roots = ["", *(r for r in roots if r)]
    split = [split_path(os.fspath(p), all_roots) for p in paths]
    rows = Rows.build(
        n,
        width,
        root=[r for r, _ in split],
        path=[rel for _, rel in split],
        status=status_column,
        features=values,
        **columns,
    )
    return FeatureTable(rows, all_roots, measurement, dict(attrs or {}))
