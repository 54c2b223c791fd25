"""`-q/--quiet` means the same on every command: warnings and errors only, no summary or "wrote" line."""

import re

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from scanner.cli import app
from scanner.cli.base import QUIET_HELP
from scanner.core.schema import make_table
from scanner.store.hdf5 import read_features, write_table

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def panels(text):
    """The help's panels: title -> the text inside its box."""
    found, title = {}, None
    for line in text.splitlines():
        head = re.match(r"╭─ (.+?) ─", line)
        if head:
            title = head.group(1)
            found[title] = ""
        elif line.startswith("╰"):
            title = None
        elif title:
            found[title] += line.strip("│ ") + "\n"
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_quiet_is_one_option_in_the_messages_panel(command):
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    quiet = [p for p in cmd.params if "--quiet" in p.opts]
    assert [(p.opts, p.help, p.rich_help_panel) for p in quiet] == [(["--quiet", "-q"], QUIET_HELP, "Messages")]
    text = runner.invoke(app, [command, "--help"]).output
    boxes = panels(text)
    assert "--quiet" in boxes["Messages"] and QUIET_HELP in " ".join(boxes["Messages"].split()), text
    assert all("--quiet" not in body for title, body in boxes.items() if title != "Messages"), text


def store(path, n=5):
    write_table(path, make_table([f"/nowhere/{i}.jpg" for i in range(n)], np.zeros((n, 6))))
    return path


def test_quiet_silences_export_and_merge_but_not_their_errors(tmp_path):
    a, b = store(tmp_path / "a.h5"), store(tmp_path / "b.h5", 3)
    loud = runner.invoke(app, ["export", str(a), "--out", str(tmp_path / "a.csv")])
    assert loud.exit_code == 0 and "wrote 5 rows" in loud.output
    quiet = runner.invoke(app, ["export", str(a), "--out", str(tmp_path / "q.csv"), "-q"])
    assert quiet.exit_code == 0 and quiet.output == "" and len((tmp_path / "q.csv").read_text().splitlines()) == 6
    to_stdout = runner.invoke(app, ["export", str(a), "--out", "-", "--quiet"])
    assert to_stdout.exit_code == 0 and len(to_stdout.stdout.splitlines()) == 6 and to_stdout.stderr == ""

    merged = runner.invoke(app, ["merge", str(a), str(b), "--out", str(tmp_path / "all.h5"), "-q"])
    assert merged.exit_code == 0 and merged.output == "" and len(read_features(tmp_path / "all.h5")) == 5
    loud = runner.invoke(app, ["merge", str(a), str(b), "--out", str(tmp_path / "all2.h5")])
    assert loud.exit_code == 0 and "5 rows from 2 stores" in loud.output
    refused = runner.invoke(app, ["merge", str(a), str(b), "--out", str(tmp_path / "all.h5"), "-q"])
    assert refused.exit_code == 2 and "exists: give --overwrite" in refused.output
