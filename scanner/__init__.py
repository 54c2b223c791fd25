"""scanner: find GAN-generated face images by the asynchrony of their colour spectra.

Implements the features and classifiers of Le and Woo, "Exploring the
Asynchronous of the Frequency Spectra of GAN-generated Facial Images" (2021).

The public names below (the 24 of the API, and the version) are loaded on first use, so `import scanner` (and the
command line's start) does not pay for numba, FFTW and OpenCV until needed.
docs/api.md shows them at work.
"""

from scanner.core import lazy
from scanner.core.version import __version__

__getattr__, _dir, _names = lazy.attach(
    __name__,
    {
        "core.constants": ["Status", "STATUSES", "SPECTRUM_MODES"],
        "core.featuresets": ["FEATURE_SETS", "FEATURE_NAMES"],
        "core.schema": ["Measurement", "FeatureTable"],
        "images.decode": ["read_image", "DecodedImage", "ImageInfo", "UnusableImage"],
        "features.spec": ["Extractor", "GreyImage"],
        "features.extract": ["make_extractor", "spectral_features"],
        "features.measure": ["measure_file", "features_of_file", "FileRecord"],
        "run.sweep": ["scan", "ScanOptions", "MeasureOptions"],
        "io.walk": ["Walk"],
        "store.hdf5": ["read_features"],
        "detect.model": ["load_model", "bundled_model"],
    },
)
__all__ = ["__version__", *_names]


def __dir__() -> list[str]:
    return sorted(__all__)
