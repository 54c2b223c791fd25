"""scanner: find GAN-generated face images by the asynchrony of their colour spectra.

Implements the features and classifiers of Le and Woo, "Exploring the
Asynchronous of the Frequency Spectra of GAN-generated Facial Images" (2021).

The public names below are loaded on first use, so `import scanner` (and the
command line's start) does not pay for numba, FFTW and OpenCV until needed.
docs/api.md shows them at work.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    # what every layer shares
    "Status": "scanner.constants",
    "STATUSES": "scanner.constants",
    "SPECTRUM_MODES": "scanner.constants",
    "FEATURE_SETS": "scanner.featuresets",
    "FEATURE_NAMES": "scanner.featuresets",
    "Measurement": "scanner.schema",
    # images and features
    "read_image": "scanner.decode",
    "DecodedImage": "scanner.decode",
    "ImageInfo": "scanner.decode",
    "UnusableImage": "scanner.decode",
    "make_extractor": "scanner.extract",
    "Extractor": "scanner.extract",
    "GreyImage": "scanner.extract",
    "spectral_features": "scanner.extract",
    "measure_file": "scanner.measure",
    "features_of_file": "scanner.measure",
    "FileRecord": "scanner.measure",
    # sweeps and stores
    "scan": "scanner.scan",
    "ScanOptions": "scanner.scan",
    "Walk": "scanner.walk",
    "read_features": "scanner.store",
    "FeatureTable": "scanner.schema",
    # detectors
    "load_model": "scanner.detect",
    "bundled_model": "scanner.detect",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scanner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
