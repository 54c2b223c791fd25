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
    "Status": "scanner.core.constants",
    "STATUSES": "scanner.core.constants",
    "SPECTRUM_MODES": "scanner.core.constants",
    "FEATURE_SETS": "scanner.core.featuresets",
    "FEATURE_NAMES": "scanner.core.featuresets",
    "Measurement": "scanner.core.schema",
    # images and features
    "read_image": "scanner.images.decode",
    "DecodedImage": "scanner.images.decode",
    "ImageInfo": "scanner.images.decode",
    "UnusableImage": "scanner.images.decode",
    "make_extractor": "scanner.features.extract",
    "Extractor": "scanner.features.extract",
    "GreyImage": "scanner.features.extract",
    "spectral_features": "scanner.features.extract",
    "measure_file": "scanner.features.measure",
    "features_of_file": "scanner.features.measure",
    "FileRecord": "scanner.features.measure",
    # sweeps and stores
    "scan": "scanner.run.sweep",
    "ScanOptions": "scanner.run.sweep",
    "Walk": "scanner.io.walk",
    "read_features": "scanner.store.hdf5",
    "FeatureTable": "scanner.core.schema",
    # detectors
    "load_model": "scanner.detect.model",
    "bundled_model": "scanner.detect.model",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scanner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
