"""The typer application, its root options, and the one place where errors become exit codes.

Every command is registered with ``command``: it runs the command and turns the
library's ScannerError (whose exit_code says which code: 2 for bad input, 3 for
work that cannot be done) into ``scanner COMMAND: message`` on stderr. A
command never shows a Python traceback for a user's mistake or a bad file.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from scanner import __version__
from scanner.cli.text import say
from scanner.constants import ExitCode
from scanner.errors import ScannerError

app = typer.Typer(
    name="scanner",
    help="Find GAN-generated face images by the asynchrony of their colour spectra (Le & Woo, 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(command: str, message: str, code: int = ExitCode.USAGE) -> NoReturn:
    """Say what went wrong, as `scanner COMMAND: message` on stderr, and exit with code."""
    say(f"scanner {command}: {message}", err=True)
    raise typer.Exit(int(code))


def command(name: str, panel: str | None = None) -> Callable[[F], F]:
    """Register a command (under a heading of `scanner --help`); a ScannerError it raises becomes
    its one-line message and exit code."""

    def register(function: F) -> F:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except ScannerError as exc:
                fail(name, str(exc), exc.exit_code)
            except KeyboardInterrupt:  # before click's own handler, which would only print a blank line
                say("interrupted", err=True)
                raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

        app.command(name, rich_help_panel=panel)(run)
        return function

    return register


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scanner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Find GAN-generated face images by the asynchrony of their colour spectra (Le & Woo, 2021)."""


def main() -> None:
    """Entry point of the `scanner` console script."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
