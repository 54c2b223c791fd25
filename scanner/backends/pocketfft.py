"""numpy's own FFT (pocketfft) as a backend: always available, no planning, no wisdom.

Slower than FFTW on most CPUs, but it needs nothing beyond numpy, so it serves
as the reference backend the engine's tests run beside FFTW, and as a fallback.
"""

from __future__ import annotations

import numpy as np

from scanner.backends import FFTBackend, Transform


class NumpyTransform(Transform):
    def __init__(self, height: int, width: int, dtype: np.dtype) -> None:
        self.height = height
        self.width = width
        complex_dtype = np.result_type(dtype, np.complex64)
        self.pixels = np.empty((3, height, width), dtype=dtype)
        self.spectrum = np.empty((3, height, width // 2 + 1), dtype=complex_dtype)
        self.interleaved = self.spectrum.view(dtype).reshape(-1)

    def execute(self) -> None:
        np.fft.rfft2(self.pixels, axes=(1, 2), out=self.spectrum)


class NumpyBackend(FFTBackend):
    name = "numpy"

    def _plan(self, height: int, width: int) -> Transform:
        return NumpyTransform(height, width, self.dtype)
