"""The seam between images and features: the one factory that builds an extractor.

What an extractor is (``Extractor``, ``ExtractorSpec``) is declared in
scanner.features.spec. ``build_extractor(spec)`` is the only place that builds
one (``make_extractor`` takes the spec's fields), so a new precision, FFT
library or accelerator is an option here, not an edit of every caller.

This module is light: it imports the engine (numba, the FFT library) only when
an extractor is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scanner.core.constants import DEFAULT_PRECISION, DEFAULT_SPECTRUM
from scanner.core.featuresets import DEFAULT_FEATURE_SET
from scanner.core.schema import Measurement
from scanner.features.backends.base import DEFAULT_BACKEND
from scanner.features.spec import Extractor, ExtractorSpec, GreyImage

__all__ = ["Extractor", "ExtractorSpec", "GreyImage", "build_extractor", "extractor_spec", "make_extractor"]


def build_extractor(spec: ExtractorSpec) -> Extractor:
    """The extractor of `spec`, in this process (plans and buffers of its own; not thread-safe)."""
    from scanner.core.allocator import keep_freed_memory
    from scanner.features.engine import SpectralExtractor
    from scanner.features.notice import install_compile_notice

    install_compile_notice()  # "compiling kernels, first run only", when numba does
    keep_freed_memory()  # each image's buffers reuse the last one's pages (scanner.core.allocator)
    return SpectralExtractor(spec)


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
    return build_extractor(extractor_spec(feature_set, spectrum, precision, backend, canonical=canonical, **options))


_SHARED: dict[tuple[str, str, str, bool], Extractor] = {}


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
