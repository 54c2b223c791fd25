"""Intel MKL's FFT (mkl_fft) as a backend, single-threaded.

Optional: it needs the mkl_fft package (and MKL), which scanner does not require.
MKL is held to one thread (MKL_NUM_THREADS=1 unless set before this module is
first imported): the parallelism is one process per core.
"""

from __future__ import annotations

import os

os.environ.setdefault("MKL_NUM_THREADS", "1")

import mkl_fft

from scanner.features.backends.base import FFTBackend, OutOfPlaceTransform, Transform


class MKLTransform(OutOfPlaceTransform):
    def execute(self) -> None:
        mkl_fft.rfft2(self.pixels, axes=(1, 2), out=self.spectrum)


class MKLBackend(FFTBackend):
    name = "mkl"

    def _plan(self, height: int, width: int, planes: int = 3) -> Transform:
        return MKLTransform(height, width, self.dtype, planes)
