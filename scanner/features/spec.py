"""What an extractor is, as plain values: the spec that builds one in any process, and its protocol.

An extractor turns a decoded (H, W, 3) uint8 image into the values of one
feature set. What it computes is fixed by a ``Measurement`` (feature set,
spectrum mode, precision, canonical); how is the ``backend`` (the FFT library)
and the backend's own options (FFTW's planner effort). An ``ExtractorSpec`` is a
value (it pickles, and building from it is ``scanner.features.extract.build_extractor``):
this module imports no engine, so every layer may hold one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from scanner.core.schema import Measurement
from scanner.features.backends.base import DEFAULT_BACKEND, FFTBackend, check_backend


class GreyImage(ValueError):
    """The three channels are identical: the method has nothing to measure."""


@dataclass(frozen=True)
class Picture:
    """The image being measured, for a feature set that needs more than its transform (the residual
    set's windows): the (H, W, 3) uint8 pixels, C-contiguous, where red is (2 for OpenCV's B, G, R
    order, 0 for R, G, B), and the extractor's FFT backend (for transforms of its own)."""

    pixels: np.ndarray
    red_index: int
    backend: FFTBackend


@dataclass(frozen=True)
class ExtractorSpec:
    """Everything needed to build an extractor, in any process (it pickles)."""

    measurement: Measurement = field(default_factory=Measurement)
    backend: str = DEFAULT_BACKEND
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_backend(self.backend, self.options)


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
