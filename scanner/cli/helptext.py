"""How `--help` reads: metavars a user understands, no type tags, a plain usage line.

typer (0.29) shows each parameter's Python type in the help panels: `<bool>` on
every flag, `<list[Path]>` on a list argument, `<int>` on numbers, and wraps a
required argument in braces in the usage line. The command and group classes
below (passed to typer as ``cls``, its documented hook for custom command
classes) rewrite the parameters' display before the help is drawn:

- a flag shows no metavar (it takes no value);
- an argument shows its metavar (`IMAGE...`; by default its name in capitals)
  in the name column only, no type;
- an option without a metavar of its own gets one from its type: `N` for an
  integer, `X` for a number, `TEXT`, `PATH`, or its choices (`log|modulus`);
  the allowed range is left to the help text (`N`, not `N [x>=1]`);
- an option whose choices would make a long metavar (`all|binary|few-fakes|adaptation`,
  which rich cuts mid-word in a narrow column) shows its name instead (`PROTOCOL`): its
  help says what the choices are;
- the usage line reads `scanner classify [OPTIONS] INPUT...`, with `[NAME]` for
  an optional argument;
- a command's description flows: the single line breaks of a docstring's paragraphs
  are joined (typer 0.29 keeps them, so a paragraph broke mid-sentence wherever the
  source line ended), and rich wraps each paragraph to the terminal; a paragraph that
  begins with ``\b`` keeps its lines.

tests/cli/test_help.py renders every command's help at 80 and 120 columns and checks it.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer.core

_TYPE_METAVARS = {int: "N", float: "X", str: "TEXT"}
CHOICES_WIDTH = 20  # a metavar of choices longer than this shows the option's name instead


def flowing(text: str | None) -> str | None:
    """A docstring's paragraphs, each on one line (those beginning with \\b as they are)."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


class _Argument(typer.core.TyperArgument):
    """An argument whose metavar says it all: no type column."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Option(typer.core.TyperOption):
    """An option without the number range in its type column (the help text says what is allowed)."""

    def _get_number_range_help_str(self) -> str | None:
        return None


def _option_metavar(param: typer.core.TyperOption) -> str:
    if param.is_flag or param.count:
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:  # a typer without type descriptors: leave its own display
        return ""
    if descriptor.is_choice and descriptor.choices:
        choices = "|".join(str(getattr(c, "value", c)) for c in descriptor.choices)
        return choices if len(choices) <= CHOICES_WIDTH else (param.name or "value").upper()
    if descriptor.is_path:
        return "PATH"
    return _TYPE_METAVARS.get(descriptor.annotation, "VALUE")


def tidy(param: Any) -> None:
    """Give one parameter the display described above (idempotent)."""
    if isinstance(param, typer.core.TyperOption):
        if param.metavar is None:
            param.metavar = _option_metavar(param)
        if type(param) is typer.core.TyperOption:
            param.__class__ = _Option
    elif type(param) is typer.core.TyperArgument:
        if param.metavar is None:
            param.metavar = (param.name or "").upper() + ("..." if param.nargs != 1 else "")
        param.__class__ = _Argument


def _usage_piece(param: Any) -> str:
    return param.metavar if param.required else f"[{param.metavar}]"


class Command(typer.core.TyperCommand):
    """A command whose help follows the rules above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = flowing(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            tidy(param)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_usage_piece(p) for p in self.get_params(ctx) if isinstance(p, typer.core.TyperArgument)]


class Group(typer.core.TyperGroup):
    """The root command (`scanner --help`), with the same rules."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = flowing(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            tidy(param)
        return params
