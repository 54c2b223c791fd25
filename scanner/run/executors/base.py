"""Executors: they move chunks of walked files to extractors and bring rows back.

The scan (scanner.run.sweep) lists files, keeps the store (scanner.store.session), and
hands an executor an iterator of chunks; the executor measures them wherever its
workers are and yields the rows of each finished chunk, in completion order.
Every executor builds its extractors from the same ``MeasureSpec`` and measures
with the same function (scanner.features.measure.measure_files), so where the work runs
never changes a row.

``LocalPool`` (worker processes on this machine) is the default; another engine
is a new module with a subclass of Executor. An engine whose workers write their
rows to part files themselves (``dask.DaskExecutor``) yields ``PartDone`` (the
part file and its counts) instead of the rows, so that rows never travel through
its scheduler.

Every executor holds one file to ``MeasureSpec.file_timeout`` seconds of reading
and decoding: a worker stuck in a decoder is stopped and replaced, and the file
gets an ``unreadable`` row (``timed_out_error``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

from scanner.core.constants import DEFAULT_FILE_TIMEOUT, DEFAULT_LIMITS, ReadLimits
from scanner.core.schema import Rows
from scanner.features.extract import ExtractorSpec
from scanner.io.walk import Found

Chunk = list[Found]


@dataclass(frozen=True)
class MeasureSpec:
    """What every worker needs to measure files: how to build its extractor, the limits, the roots."""

    extractor: ExtractorSpec
    roots: tuple[bytes, ...]
    limits: ReadLimits = DEFAULT_LIMITS
    file_timeout: float = DEFAULT_FILE_TIMEOUT  # seconds of reading and decoding per file; 0: no limit

    @property
    def n_features(self) -> int:
        return self.extractor.measurement.n_features


def timed_out_error(seconds: float) -> str:
    """The error of a file whose reading and decoding did not end within the time limit."""
    return f"timed out: reading and decoding took over {seconds:g} s (--file-timeout); the worker was stopped"


@dataclass(frozen=True)
class PartDone:
    """A finished task whose rows a worker wrote to a part file (scanner.store.parts), not sent back."""

    path: str
    rows: int
    counts: dict[str, int] = field(default_factory=dict)  # rows per status


class Executor(ABC):
    """Measures chunks of files; use as a context manager so that its workers are always stopped."""

    workers: int

    # Files, and bytes of files, per chunk this executor wants from the scan (None: the scan's own).
    chunk_files: int | None = None
    chunk_bytes: int | None = None

    @abstractmethod
    def map(self, chunks: Iterator[Chunk]) -> Iterator[Rows | PartDone | None]:
        """Rows of each finished chunk (or the part file holding them), in completion order.

        Chunks are taken from the iterator only as workers have room, so memory
        stays bounded however many files there are; an empty chunk is skipped.
        ``None`` is yielded now and then while waiting, so that the caller can
        commit and report on time.
        """

    def close(self) -> None:  # noqa: B027 - executors without workers have nothing to stop
        """Stop the workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
