"""Running a sweep: the walk, the store session and an executor joined (sweep), on a local pool,
in process or on a Dask cluster (executors/), with the first run's compiling (warmup) and the
progress display (progress).
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "sweep": ["scan", "ScanOptions", "MeasureOptions", "ScanSummary", "Progress", "parse_shard", "shard_files"],
        "warmup": ["warm_up"],
        "progress": ["ScanDisplay", "TotalCount", "format_rate"],
    },
)
