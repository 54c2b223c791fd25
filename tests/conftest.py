"""Fixtures for every test; the helpers the tests import are in tests/helpers.py."""

import os

import pytest

# Every test and the commands they start inherit these. A BLAS library starts a thread per core at
# import and reserves address space for each: on a machine of 8 or more cores the commands that
# hostile-input tests run under an address-space limit failed before they began. Colour forced on by
# the environment puts escape codes inside the help texts the tests read.
for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
for _colour in ("FORCE_COLOR", "TTY_COMPATIBLE", "CLICOLOR_FORCE", "PY_COLORS"):
    os.environ.pop(_colour, None)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep FFTW wisdom written by the tests out of the user's cache."""
    os.environ["SCANNER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
