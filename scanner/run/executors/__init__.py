"""Executors: they move chunks of walked files to extractors and bring rows back.

base declares the seam (Executor, MeasureSpec, PartDone); local is the process
pool on this machine (the default), inline measures in this process, and dask
runs on a Dask cluster.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "base": ["Executor", "MeasureSpec", "PartDone", "Chunk"],
        "local": ["LocalPool", "default_workers"],
        "inline": ["InProcess"],
        "dask": ["DaskExecutor"],
    },
)
