"""The errors the library raises for the user to read, each with the exit code the command line gives it.

The command line maps them to ``scanner COMMAND: message`` and the exit code in
one place (scanner.cli.base); messages say what is wrong and what to do about it.
"""

from __future__ import annotations

from scanner.core.constants import ExitCode


class ScannerError(Exception):
    """An error whose message is meant for the user; ``exit_code`` is what the command exits with."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(ScannerError, ValueError):
    """An input (store, model, labels or list file, option value) that cannot be used."""

    exit_code = ExitCode.USAGE


class FatalError(ScannerError):
    """The work cannot be done or go on (an output that cannot be written, workers that keep dying)."""

    exit_code = ExitCode.FATAL


class StoreError(InputError):
    """A file that is not a usable feature store, with what to do about it."""


class ScanError(FatalError):
    """The scan cannot start or go on (for example an unwritable output)."""


class StoreMismatch(InputError):
    """The output exists but cannot be resumed with these options; the message says what to do."""


class DetectorError(InputError):
    """Training or classifying cannot go on; the message says why and what to do."""


class ModelError(DetectorError):
    """A model file that cannot be used: not a model, another schema, other features."""


class ReportError(InputError):
    """Input the report cannot be made from, with what to do about it."""
