"""SciPy's FFT (its own pocketfft build, C++ with SIMD) as a backend, single-threaded.

Optional: it needs scipy, which scanner does not require. SciPy's rfft2 has no
output argument, so the half spectrum is copied into the transform's buffer: one
more pass over it than FFTW's in-place plan.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from scanner.backends import FFTBackend, Transform


class SciPyTransform(Transform):
    def __init__(self, height: int, width: int, dtype: np.dtype) -> None:
        self.height = height
        self.width = width
        self.pixels = np.empty((3, height, width), dtype=dtype)
        self.spectrum = np.empty((3, height, width // 2 + 1), dtype=np.result_type(dtype, np.complex64))
        self.interleaved = self.spectrum.view(dtype).reshape(-1)

    def execute(self) -> None:
        self.spectrum[...] = scipy.fft.rfft2(self.pixels, axes=(1, 2), workers=1, overwrite_x=True)


class SciPyBackend(FFTBackend):
    name = "scipy"

    def _plan(self, height: int, width: int) -> Transform:
        return SciPyTransform(height, width, self.dtype)
