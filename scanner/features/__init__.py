"""Features: decoded images to the values of a feature set, through one FFT of the three channels.

spec declares what an extractor is (a plain, picklable ExtractorSpec and the
Extractor protocol); extract holds the one factory (build_extractor); engine,
kernels, percentile, paper, extended and extended_kernels compute; backends/
holds the FFT libraries; reference is the method in plain float64 numpy;
measure measures files into rows; notice announces numba's first compile.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "spec": ["Extractor", "ExtractorSpec", "GreyImage"],
        "extract": ["build_extractor", "extractor_spec", "make_extractor", "spectral_features"],
        "measure": ["FileRecord", "measure_file", "measure_files", "features_of_file"],
        "reference": ["reference_features", "reference_spectra", "reference_extended_features"],
        "notice": ["install_compile_notice"],
    },
)
