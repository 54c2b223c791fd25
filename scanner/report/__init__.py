"""What people read: the HTML report (html, with classes and charts), figures of spectra
(figures), and exports of a store as CSV, JSON lines or Parquet (export).
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "html": ["build_report", "write_report", "ReportInputs"],
        "figures": ["spectrum_figure", "save_figure"],
        "export": ["export_csv", "write_csv", "write_jsonl", "write_parquet"],
    },
)
