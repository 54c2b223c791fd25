"""The bottom layer: what every other layer shares, importing nothing heavy.

Statuses and exit codes (constants), the errors users read with their exit code
(errors), the feature sets' declarations (featuresets), the store's row schema
(schema), the library's messages (logs), the cache directory, the version, the
test fault hooks (faults) and the lazy faces of the folders (lazy).
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "constants": ["Status", "ExitCode", "ReadLimits", "DEFAULT_LIMITS", "STATUSES", "SPECTRUM_MODES", "PRECISIONS"],
        "errors": [
            "ScannerError",
            "InputError",
            "FatalError",
            "StoreError",
            "ScanError",
            "StoreMismatch",
            "DetectorError",
            "ModelError",
            "ReportError",
        ],
        "featuresets": [
            "FeatureSet",
            "FEATURE_SETS",
            "FEATURE_NAMES",
            "PAPER",
            "EXTENDED",
            "RESIDUAL",
            "get_feature_set",
        ],
        "schema": ["Column", "COLUMNS", "Measurement", "FeatureTable", "Rows", "make_table"],
        "logs": ["configure"],
        "cachedir": ["cache_dir"],
        "version": ["__version__"],
    },
)
