"""The package's version: one declaration, read by the build (pyproject.toml) and every layer."""

__version__ = "0.2.0"
