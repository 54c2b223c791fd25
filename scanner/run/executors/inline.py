"""The in-process executor: every chunk measured here, one after another.

No worker processes: for a few files, for notebooks and embedding (nothing to
guard with ``if __name__ == "__main__"``), and for debugging. A file that
crashes the decoder takes this process with it, so sweeps of untrusted files
belong to the process pool (scanner.run.executors.local).
"""

from __future__ import annotations

from collections.abc import Iterator

from scanner.core.schema import Rows
from scanner.features.extract import Extractor, build_extractor
from scanner.features.measure import measure_files
from scanner.run.executors.base import Chunk, Executor, MeasureSpec


class InProcess(Executor):
    def __init__(self, spec: MeasureSpec, workers: int | None = None) -> None:
        self.spec = spec
        self.workers = 1
        self._extractor: Extractor | None = None

    def map(self, chunks: Iterator[Chunk]) -> Iterator[Rows | None]:
        if self._extractor is None:
            self._extractor = build_extractor(self.spec.extractor)
        spec = self.spec
        for chunk in chunks:
            yield (
                measure_files(chunk, spec.roots, self._extractor, spec.limits.max_pixels, spec.limits.max_bytes)
                if chunk
                else None
            )
