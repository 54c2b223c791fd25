"""Fixtures for every test; the helpers the tests import are in tests/helpers.py."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep FFTW wisdom written by the tests out of the user's cache."""
    os.environ["SCANNER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
