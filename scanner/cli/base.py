"""The typer application, its root options, and the one place where errors become exit codes.

Every command is registered with ``command``: it runs the command and turns the
library's ScannerError (whose exit_code says which code: 2 for bad input, 3 for
work that cannot be done) into ``scanner COMMAND: message`` on stderr. A
command never shows a Python traceback for a user's mistake or a bad file.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from scanner.cli.helptext import Command, Group
from scanner.cli.text import say
from scanner.core import logs
from scanner.core.constants import ExitCode
from scanner.core.errors import ScannerError
from scanner.core.version import __version__

app = typer.Typer(
    name="scanner",
    help="Find GAN-generated face images by the asynchrony of their colour spectra (Le & Woo, 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
)

# Options every command takes: how much it says (the library's messages go through logging; the words a
# command prints for people, through scanner.cli.text.chatter, follow the same level).
MESSAGES = "Messages"
QUIET_HELP = "Say less: warnings and errors only (no progress, summary or notes of what was written)."
# --quiet as a command that needs its value declares it (the same option as every other command's).
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP, rich_help_panel=MESSAGES)]


def _keyword(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_MESSAGE_OPTIONS = {
    "verbose": _keyword(
        "verbose",
        False,
        Annotated[
            bool, typer.Option("--verbose", "-v", help="Say more: debug messages too.", rich_help_panel=MESSAGES)
        ],
    ),
    "quiet": _keyword("quiet", False, Quiet),
    "log_level": _keyword(
        "log_level",
        None,
        Annotated[
            logs.LogLevel | None,
            typer.Option(
                "--log-level",
                help="Show messages of this level and up: debug, info, warning or error (default: info).",
                show_default=False,
                rich_help_panel=MESSAGES,
            ),
        ],
    ),
}

F = TypeVar("F", bound=Callable[..., Any])


def fail(command: str, message: str, code: int = ExitCode.USAGE) -> NoReturn:
    """Say what went wrong, as `scanner COMMAND: message` on stderr, and exit with code."""
    say(f"scanner {command}: {message}", err=True)
    raise typer.Exit(int(code))


def command(name: str, panel: str | None = None) -> Callable[[F], F]:
    """Register a command (under a heading of `scanner --help`); a ScannerError it raises becomes
    its one-line message and exit code."""

    def register(function: F) -> F:
        signature = inspect.signature(function, eval_str=True)
        added = [p for key, p in _MESSAGE_OPTIONS.items() if key not in signature.parameters]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            values = {p.name: kwargs.pop(p.name) for p in added}
            values.update({key: kwargs[key] for key in _MESSAGE_OPTIONS if key in signature.parameters})
            try:
                logs.configure(message_level(**values))
                return function(*args, **kwargs)
            except ScannerError as exc:
                fail(name, str(exc), exc.exit_code)
            except MemoryError:  # an input larger than its bounds foresaw, or a machine short of memory
                fail(name, "ran out of memory (no output is left half-written)", ExitCode.FATAL)
            except KeyboardInterrupt:  # before click's own handler, which would only print a blank line
                say("interrupted", err=True)
                raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

        run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *added])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}  # type: ignore[attr-defined]
        app.command(name, rich_help_panel=panel, cls=Command)(run)
        return function

    return register


def message_level(verbose: bool = False, quiet: bool = False, log_level: str | None = None) -> str:
    """The log level the message options ask for: --log-level, else --verbose (debug) or --quiet (warning)."""
    if verbose and quiet:
        from scanner.core.errors import InputError

        raise InputError("give --verbose or --quiet, not both")
    return log_level or ("debug" if verbose else "warning" if quiet else logs.DEFAULT_LEVEL)


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
    """Entry point of the `scanner` console script. A mistake in the command line (an unknown option,
    a value of the wrong kind) is one line too, `scanner COMMAND: what is wrong (scanner COMMAND
    --help)`, exit code 2, rather than a usage block and a boxed message; an output that cannot be
    written (standard output on a full disk) is one line and exit code 3."""
    try:
        code = app(standalone_mode=False)
        sys.stdout.flush()  # here, not at exit, where a failure is printed as an ignored exception
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except OSError as exc:  # typer handles a closed pipe (EPIPE) itself; this is any other write error
        _quiet_stdout()
        say(f"scanner: cannot write: {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.FATAL)
    except Exception as exc:  # click's usage errors, whichever click typer brings (it vendors one now)
        format_message = getattr(exc, "format_message", None)
        if not callable(format_message):
            raise
        if type(exc).__name__ != "NoArgsIsHelpError":  # for that one the help, printed already, is the message
            where = _command_path(exc)
            say(f"{where}: {' '.join(str(format_message()).split())} ({where} --help)", err=True)
        sys.exit(getattr(exc, "exit_code", ExitCode.USAGE))
    # typer.Exit gives its code; a command that returns normally, None
    sys.exit(code if isinstance(code, int) else 0)


def _command_path(exc: Exception) -> str:
    """`scanner COMMAND` for a usage error: from its context, or (an option missing its value is
    raised before the command's context exists) the first word of the command line that names one."""
    path = getattr(getattr(exc, "ctx", None), "command_path", None)
    if path:
        return str(path)
    names = {info.name for info in app.registered_commands}
    word = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    return f"scanner {word}" if word in names else "scanner"


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that the flush at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
