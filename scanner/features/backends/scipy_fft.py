"""SciPy's FFT (its own pocketfft build, C++ with SIMD) as a backend, single-threaded.

Optional: it needs scipy, which scanner does not require. SciPy's rfft2 has no
output argument, so the half spectrum is copied into the transform's buffer: one
more pass over it than FFTW's in-place plan.
"""

from __future__ import annotations

import scipy.fft

from scanner.features.backends.base import FFTBackend, OutOfPlaceTransform, Transform


class SciPyTransform(OutOfPlaceTransform):
    def execute(self) -> None:
        self.spectrum[...] = scipy.fft.rfft2(self.pixels, axes=(1, 2), workers=1, overwrite_x=True)


class SciPyBackend(FFTBackend):
    name = "scipy"

    def _plan(self, height: int, width: int, planes: int = 3) -> Transform:
        return SciPyTransform(height, width, self.dtype, planes)
