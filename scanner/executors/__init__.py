"""Executors: they move chunks of walked files to extractors and bring rows back.

The scan (scanner.scan) lists files, keeps the store (scanner.lifecycle), and
hands an executor an iterator of chunks; the executor measures them wherever its
workers are and yields the rows of each finished chunk, in completion order.
Every executor builds its extractors from the same ``MeasureSpec`` and measures
with the same function (scanner.measure.measure_files), so where the work runs
never changes a row.

``LocalPool`` (worker processes on this machine) is the default; another engine
is a new module with a subclass of Executor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from scanner.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from scanner.extract import ExtractorSpec
from scanner.schema import Rows
from scanner.walk import Found

Chunk = list[Found]


@dataclass(frozen=True)
class MeasureSpec:
    """What every worker needs to measure files: how to build its extractor, the limits, the roots."""

    extractor: ExtractorSpec
    roots: tuple[bytes, ...]
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES

    @property
    def n_features(self) -> int:
        return self.extractor.measurement.n_features


class Executor(ABC):
    """Measures chunks of files; use as a context manager so that its workers are always stopped."""

    workers: int

    @abstractmethod
    def map(self, chunks: Iterator[Chunk]) -> Iterator[Rows | None]:
        """Rows of each finished chunk, in completion order.

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
