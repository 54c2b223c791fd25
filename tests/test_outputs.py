"""Outputs are written whole or not at all, never over an input, and `-` is standard output."""

import csv
import io
import os

import pytest
from test_cli_detect import store
from typer.testing import CliRunner

from scanner.cli import app
from scanner.errors import FatalError, InputError
from scanner.outputs import output_file, output_path

runner = CliRunner()


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("old")
    with pytest.raises(RuntimeError), output_file(out) as handle:
        handle.write("half of it")
        raise RuntimeError("stopped")
    assert out.read_text() == "old" and leftovers(tmp_path) == []
    with output_file(out) as handle:
        handle.write("new")
    assert out.read_text() == "new" and leftovers(tmp_path) == []


def test_an_output_that_is_an_input_is_refused_before_writing(tmp_path):
    source = tmp_path / "in.h5"
    source.write_bytes(b"data")
    os.symlink(source, tmp_path / "link.h5")
    for name in ("in.h5", "link.h5", "./in.h5"):
        with pytest.raises(InputError, match="is also an input"), output_path(tmp_path / name, inputs=[source]):
            pass
    assert source.read_bytes() == b"data"


def test_an_unwritable_output_is_fatal(tmp_path):
    with pytest.raises(FatalError, match="cannot write"), output_file(tmp_path / "absent" / "o.csv"):
        pass


@pytest.mark.parametrize(
    "command",
    [
        ["export", "{store}", "--out", "{store}"],
        ["classify", "{store}", "--out", "{store}"],
        ["train", "{store}", "--out", "{store}"],
        ["report", "{store}", "--out", "{store}"],
    ],
    ids=lambda c: c[0],
)
def test_commands_refuse_to_overwrite_their_input(tmp_path, command):
    path, _, _ = store(tmp_path, "s")
    before = path.read_bytes()
    result = runner.invoke(app, [a.format(store=path) for a in command])
    assert result.exit_code == 2 and "is also an input" in result.output
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_a_failed_command_leaves_no_output(tmp_path):
    path, _, _ = store(tmp_path, "s")
    (tmp_path / "bad-model.h5").write_text("not a model")
    result = runner.invoke(
        app, ["classify", str(path), "--model", str(tmp_path / "bad-model.h5"), "--out", str(tmp_path / "v.csv")]
    )
    assert result.exit_code == 2 and not (tmp_path / "v.csv").exists()
    result = runner.invoke(app, ["export", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and not (tmp_path / "x.csv").exists() and leftovers(tmp_path) == []


def test_verdicts_to_standard_output(tmp_path):
    path, _, _ = store(tmp_path, "s", n_real=3, n_fake=3)
    result = runner.invoke(app, ["classify", str(path), "--out", "-"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 6 and not (tmp_path / "-").exists()
