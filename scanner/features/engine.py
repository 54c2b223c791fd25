"""The spectral extractor: one FFT of the three colour channels, then a feature set's kernels.

Built only through scanner.features.extract.build_extractor (make_extractor builds the spec). It
validates the image, copies it into the backend's transform buffer as three
scaled planes (finding a grey image in the same pass), runs the transform and
hands the half spectrum to the feature set's implementation.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from scanner.core.constants import MIN_SIDE
from scanner.core.featuresets import get_feature_set
from scanner.core.schema import Measurement
from scanner.features import kernels
from scanner.features.backends.base import Transform, make_backend
from scanner.features.spec import ExtractorSpec, GreyImage, Picture
from scanner.images.canonical import canonical_bgr


class FeatureSetEngine(Protocol):
    """What computes one feature set from a transformed image (e.g. scanner.features.paper.PaperFeatures)."""

    input_scale: float  # the transform's input is the 0..255 pixels times this

    def compute(self, transform: Transform, picture: Picture | None = None) -> np.ndarray:
        """The set's values from the image's transform (and, for a set that needs them, its pixels)."""
        ...


def _feature_set_engine(name: str, spectrum: str) -> FeatureSetEngine:
    module, _, cls = get_feature_set(name).engine.partition(":")
    engine: FeatureSetEngine = getattr(importlib.import_module(module), cls)(spectrum)
    return engine


class SpectralExtractor:
    """Computes a feature set's values of decoded images; one per process, not thread-safe.

    Plans and buffers are kept per image shape (a few shapes at a time) and
    reused image after image.
    """

    def __init__(self, spec: ExtractorSpec) -> None:
        self.spec = spec
        m = spec.measurement
        self.backend = make_backend(spec.backend, m.precision, **spec.options)
        self.features = _feature_set_engine(m.feature_set, m.spectrum)

    @property
    def measurement(self) -> Measurement:
        return self.spec.measurement

    @property
    def names(self) -> tuple[str, ...]:
        return self.measurement.feature_names

    @property
    def spectrum(self) -> str:
        return self.measurement.spectrum

    def describe(self) -> str:
        return f"{self.measurement.describe()}, {self.backend.describe()}"

    def from_bgr(self, image: np.ndarray) -> np.ndarray:
        return self._extract(image, red_index=2)

    def from_rgb(self, image: np.ndarray) -> np.ndarray:
        return self._extract(image, red_index=0)

    def _extract(self, image: np.ndarray, red_index: int) -> np.ndarray:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise TypeError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        if min(height, width) < MIN_SIDE:
            raise ValueError(f"image is {width}x{height}; the method needs at least {MIN_SIDE} px a side")
        if self.measurement.canonical:
            image, red_index = canonical_bgr(image, red_index), 2
        transform = self.backend.transform(height, width)
        scale = transform.pixels.dtype.type(self.features.input_scale)
        image = np.ascontiguousarray(image)
        flags = int(kernels.to_planar(image, transform.rows, scale, red_index))
        if flags & 1:
            raise GreyImage("the three colour channels are identical (a grey image)")
        transform.execute()
        for c in range(3):
            if flags & (2 << c):
                # The exact DFT of a constant plane: its sum at DC, zero elsewhere. Rounding in the
                # transform (a float32 one above all) can leave noise in those bins, which the log
                # spectrum's percentile normalisation would amplify.
                pixel = image[0, 0, (red_index, 1, 2 - red_index)[c]]
                plane = transform.spectrum[c]
                plane[...] = 0.0
                plane[0, 0] = float(pixel * scale) * height * width
        for bit, source, target in kernels.IDENTICAL_PAIRS:
            if flags & (1 << bit):
                # Identical planes have identical spectra, bit for bit: an FFT library free to
                # transform the planes of a batch by different code paths (SIMD lanes, a scalar
                # tail) could round them apart, and d of the pair would not be exactly 0.
                transform.spectrum[target][...] = transform.spectrum[source]
        values: np.ndarray = self.features.compute(transform, Picture(image, red_index, self.backend))
        return values
