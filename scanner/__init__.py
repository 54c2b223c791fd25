"""scanner: find GAN-generated face images by the asynchrony of their colour spectra.

Implements the features and classifiers of Le and Woo, "Exploring the
Asynchronous of the Frequency Spectra of GAN-generated Facial Images" (2021).
"""

from scanner.decode import STATUSES, DecodedImage, ImageInfo, UnusableImage, read_image
from scanner.features import (
    FEATURE_NAMES,
    SPECTRUM_MODES,
    FeatureExtractor,
    FileFeatures,
    GreyImage,
    features_of_file,
    spectral_features,
)

__version__ = "0.1.0"

__all__ = [
    "FEATURE_NAMES",
    "SPECTRUM_MODES",
    "STATUSES",
    "DecodedImage",
    "FeatureExtractor",
    "FileFeatures",
    "GreyImage",
    "ImageInfo",
    "UnusableImage",
    "__version__",
    "features_of_file",
    "read_image",
    "spectral_features",
]
