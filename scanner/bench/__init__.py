"""`scanner bench`: what the user's benchmark measures and prints, nothing more.

images makes the synthetic photo-like images (also the tests'); files writes and
lists image sets; stages times decoding and the feature step; scans times whole
`scanner scan` runs; memory samples a process tree's memory; machine describes
the machine; timing runs the benchmark; text formats its report.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "timing": ["run_bench", "BenchReport"],
        "text": ["format_report"],
        "images": ["natural_image"],
    },
)
