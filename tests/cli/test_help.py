"""`--help` reads well at 80 columns: no type tags, metavars a user understands, nothing cut off."""

import re

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
