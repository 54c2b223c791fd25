"""`--help` reads well at 80 columns: no type tags, metavars a user understands, nothing cut off."""

import functools
import inspect
import json
import os
import re
import subprocess
import sys

import click
import pytest
import typer
from typer.testing import CliRunner

from scanner.cli import app

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
TYPE_TAGS = re.compile(r"<(bool|int|float|text|path|str|list\[[^]]*\])>|list\[", re.IGNORECASE)


def help_text(*args):
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_at_80_columns(command):
    text = help_text(*([command] if command else []))
    assert not TYPE_TAGS.search(text), TYPE_TAGS.search(text)
    assert "…" not in text, "something was cut off"
    assert all(len(line) <= 80 for line in text.splitlines())
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    if command:
        assert "--verbose" in text and "--log-level" in text  # every command says how much to say


def test_metavars_are_consistent():
    assert "Usage: scanner features [OPTIONS] IMAGE..." in help_text("features")
    assert "Usage: scanner spectrum [OPTIONS] IMAGE..." in help_text("spectrum")
    assert "Usage: scanner scan [OPTIONS] [PATH...]" in help_text("scan")
    assert "Usage: scanner info [OPTIONS] FEATURES.h5" in help_text("info")
    assert "Usage: scanner evaluate [OPTIONS] SET.h5..." in help_text("evaluate")
    flags = help_text("report")
    assert re.search(r"--thumbnails\s+Embed", flags), flags  # a flag has no metavar


def test_message_options():
    result = runner.invoke(app, ["info", "x.h5", "--verbose", "--quiet"])
    assert result.exit_code == 2 and "not both" in result.output
    assert runner.invoke(app, ["info", "x.h5", "--log-level", "loud"]).exit_code == 2


WIDTHS = [80, 120]
WORD = re.compile(r"[A-Za-z]+")


RENDER_ALL = """
import json, sys, typer
from typer.testing import CliRunner
from scanner.cli import app
commands = ["", *sorted(typer.main.get_command(app).commands)]
shown = {}
for command in commands:
    result = CliRunner().invoke(app, [*([command] if command else []), "--help"])
    assert result.exit_code == 0, result.output
    shown[command] = result.output
print(json.dumps(shown))
"""


@functools.cache
def rendered_all(width):
    """Every command's --help at this width, rendered in a fresh interpreter (typer reads TERMINAL_WIDTH
    when it is imported)."""
    env = {**os.environ, "COLUMNS": str(width), "TERMINAL_WIDTH": str(width)}
    done = subprocess.run([sys.executable, "-c", RENDER_ALL], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def rendered(command, width):
    return rendered_all(width)[command]


def click_command(command):
    root = typer.main.get_command(app)
    return root if not command else root.commands[command]  # type: ignore[attr-defined]


def description(text):
    """The paragraphs shown between the usage line and the first panel, each a list of its lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))
    paragraphs, current = [], []
    for line in lines[start:end]:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(current)
            current = []
    return paragraphs + ([current] if current else [])


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_the_description_flows_as_the_docstring_means(command, width):
    """Each paragraph of the docstring is one paragraph on screen, its lines broken only where the next word
    would not fit (a docstring's hard line breaks are not the screen's)."""
    shown = description(rendered(command, width))
    wanted = [" ".join(p.split()) for p in inspect.cleandoc(click_command(command).help or "").split("\n\n")]
    assert [" ".join(" ".join(lines).split()) for lines in shown] == wanted
    for lines in shown:
        for line, following in zip(lines, lines[1:], strict=False):
            assert len(line) + 1 + len(following.split()[0]) > width - 2, (line, following)


def vocabulary(command):
    """Every word the help may show: the command's and its parameters' texts, names, metavars and defaults."""
    cmd = click_command(command)
    ctx = click.Context(cmd, info_name="scanner")
    texts = [command, cmd.help or "", "Usage scanner OPTIONS COMMAND ARGS Arguments Options Commands default required"]
    for param in cmd.get_params(ctx):
        default = param.default if isinstance(param.default, list | tuple) else [param.default]
        metavar = param.make_metavar(ctx) if param.metavar is None else param.metavar
        texts += [getattr(param, "help", None) or "", metavar]
        texts += [*param.opts, *param.secondary_opts, getattr(param, "rich_help_panel", None) or ""]
        texts += [str(getattr(d, "value", d)) for d in default]
    for name, sub in getattr(cmd, "commands", {}).items():
        texts += [name, sub.help or "", sub.short_help or "", getattr(sub, "rich_help_panel", None) or ""]
    return {word for text in texts for word in WORD.findall(str(text))}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_no_word_is_split_across_lines(command, width):
    """A word cut in two ('adapta' / 'tion' in a column too narrow) shows halves that are no word of the help."""
    halves = set(WORD.findall(rendered(command, width))) - vocabulary(command)
    assert not halves, halves
