"""The seam between images and features: what an extractor is, and the one factory that builds one.

An extractor turns a decoded (H, W, 3) uint8 image into the values of one
feature set. What it computes is fixed by a ``Measurement`` (feature set,
spectrum mode, precision); how is the ``backend`` (the FFT library) and the
backend's own options (FFTW's planner effort). ``make_extractor`` is the only
place that builds one, so a new precision, FFT library or accelerator is an
option here, not an edit of every caller.

This module is light: it imports the engine (numba, the FFT library) only when
an extractor is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from scanner.core.constants import DEFAULT_PRECISION, DEFAULT_SPECTRUM
from scanner.core.featuresets import DEFAULT_FEATURE_SET
from scanner.core.schema import Measurement
from scanner.features.backends import DEFAULT_BACKEND, check_backend


class GreyImage(ValueError):
    """The three channels are identical: the method has nothing to measure."""


@dataclass(frozen=True)
class ExtractorSpec:
    """Everything needed to build an extractor, in any process (it pickles)."""

    measurement: Measurement = field(default_factory=Measurement)
    backend: str = DEFAULT_BACKEND
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_backend(self.backend, self.options)

    def build(self) -> Extractor:
        from scanner.features.engine import SpectralExtractor
        from scanner.run.warmup import install_compile_notice

        install_compile_notice()  # "compiling kernels, first run only", when numba does
        return SpectralExtractor(self)


@runtime_checkable
class Extractor(Protocol):
    """Computes one feature set's values of decoded images, reusing plans and buffers (not thread-safe)."""

    spec: ExtractorSpec

    @property
    def measurement(self) -> Measurement: ...

    @property
    def names(self) -> tuple[str, ...]: ...

    def from_bgr(self, image: np.ndarray) -> np.ndarray:
        """Features of an (H, W, 3) uint8 image in OpenCV's B, G, R order (GreyImage, ValueError, TypeError)."""
        ...

    def from_rgb(self, image: np.ndarray) -> np.ndarray:
        """Features of an (H, W, 3) uint8 image in R, G, B order."""
        ...

    def describe(self) -> str: ...


def extractor_spec(
    feature_set: str = DEFAULT_FEATURE_SET,
    spectrum: str = DEFAULT_SPECTRUM,
    precision: str = DEFAULT_PRECISION,
    backend: str = DEFAULT_BACKEND,
    *,
    canonical: bool = False,
    **options: Any,
) -> ExtractorSpec:
    """The spec of an extractor, checked now: InputError names what is wrong and the choices."""
    return ExtractorSpec(Measurement(feature_set, spectrum, precision, canonical), backend, dict(options))


def make_extractor(
    feature_set: str = DEFAULT_FEATURE_SET,
    spectrum: str = DEFAULT_SPECTRUM,
    precision: str = DEFAULT_PRECISION,
    backend: str = DEFAULT_BACKEND,
    *,
    canonical: bool = False,
    **options: Any,
) -> Extractor:
    """An extractor for this feature set, spectrum mode and precision, on this FFT backend; with
    `canonical`, each image is re-encoded as JPEG quality 90, 4:2:0 in memory before it is measured.

    Backend options go to the backend (fftw: ``planner``, ``use_wisdom``).
    """
    return extractor_spec(feature_set, spectrum, precision, backend, canonical=canonical, **options).build()


_SHARED: dict[ExtractorSpec | tuple, Extractor] = {}


def spectral_features(
    image: np.ndarray,
    spectrum: str = DEFAULT_SPECTRUM,
    feature_set: str = DEFAULT_FEATURE_SET,
    precision: str = DEFAULT_PRECISION,
    canonical: bool = False,
) -> np.ndarray:
    """The features of an (H, W, 3) uint8 RGB image (the feature set's order), with a shared extractor.

    Raises GreyImage when the three channels are identical, ValueError when a side is under 8 px.
    """
    key = (feature_set, spectrum, precision, canonical)
    extractor = _SHARED.get(key)
    if extractor is None:
        extractor = _SHARED[key] = make_extractor(feature_set, spectrum, precision, canonical=canonical)
    return extractor.from_rgb(image)
