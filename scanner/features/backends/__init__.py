"""FFT backends: the real 2-D transform of an image's three colour planes, one library a module.

base declares what a backend is (FFTBackend, Transform) and the registry
(BACKENDS) that names each backend's class; fftw, pocketfft (numpy), scipy_fft
and mkl implement it. A new library is one small module and a line in BACKENDS.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "base": [
            "FFTBackend",
            "Transform",
            "BACKENDS",
            "DEFAULT_BACKEND",
            "DEFAULT_PLANNER",
            "PLANNER_EFFORTS",
            "available_backends",
            "make_backend",
            "backend_options",
        ],
    },
)
