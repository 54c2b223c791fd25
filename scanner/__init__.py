"""scanner: find GAN-generated face images by the asynchrony of their colour spectra.

Implements the features and classifiers of Le and Woo, "Exploring the
Asynchronous of the Frequency Spectra of GAN-generated Facial Images" (2021).

The public names below are loaded on first use, so `import scanner` (and the
command line's start) does not pay for numba, FFTW and OpenCV until needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "STATUSES": "scanner.decode",
    "DecodedImage": "scanner.decode",
    "ImageInfo": "scanner.decode",
    "UnusableImage": "scanner.decode",
    "read_image": "scanner.decode",
    "FEATURE_NAMES": "scanner.features",
    "SPECTRUM_MODES": "scanner.features",
    "FeatureExtractor": "scanner.features",
    "FileFeatures": "scanner.features",
    "GreyImage": "scanner.features",
    "features_of_file": "scanner.features",
    "spectral_features": "scanner.features",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scanner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
