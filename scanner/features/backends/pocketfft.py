"""numpy's own FFT (pocketfft) as a backend: always available, no planning, no wisdom.

Slower than FFTW on most CPUs, but it needs nothing beyond numpy, so it serves
as the reference backend the engine's tests run beside FFTW, and as a fallback.
"""

from __future__ import annotations

import numpy as np

from scanner.features.backends.base import FFTBackend, OutOfPlaceTransform, Transform


class NumpyTransform(OutOfPlaceTransform):
    def execute(self) -> None:
        np.fft.rfft2(self.pixels, axes=(1, 2), out=self.spectrum)


class NumpyBackend(FFTBackend):
    name = "numpy"

    def _plan(self, height: int, width: int, planes: int = 3) -> Transform:
        return NumpyTransform(height, width, self.dtype, planes)
