"""Outputs are written whole or not at all, never over an input, and `-` is standard output."""

import csv
import io
import os

import pytest
from helpers import store
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.errors import FatalError, InputError
from scanner.io.outputs import output_file, output_path

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


def test_dash_is_standard_output_for_every_command_that_writes_data(tmp_path):
    path, _, _ = store(tmp_path, "s", n_real=12, n_fake=12)
    model = runner.invoke(app, ["train", str(path), "--out", "-"])
    assert model.exit_code == 0 and model.stdout_bytes[:4] == b"\x89HDF"
    assert "wrote the model to standard output: " in model.stderr
    adapted = runner.invoke(app, ["adapt", "--source", str(path), "--target", str(path), "--out", "-"])
    assert adapted.exit_code == 0 and adapted.stdout_bytes[:4] == b"\x89HDF" and "source: 12 real" in adapted.stderr
    report = runner.invoke(app, ["report", str(path), "--out", "-"])
    assert report.exit_code == 0 and report.stdout.startswith("<!DOCTYPE html>")
    assert "standard output: report of 24 files" in report.stderr
    exported = runner.invoke(app, ["export", str(path), "--out", "-"])
    assert exported.exit_code == 0 and len(exported.stdout.splitlines()) == 25 and "wrote 24 rows" in exported.stderr
    assert not (tmp_path / "-").exists() and not (tmp_path.parent / "-").exists()
    refused = runner.invoke(app, ["scan", str(tmp_path), "--out", "-"])
    assert refused.exit_code == 2 and "not '-'" in refused.output


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_honour_the_umask(tmp_path, umask):
    """Outputs were written 0600 whatever the umask (mkstemp): colleagues could not read a report."""
    previous = os.umask(umask)
    try:
        with output_file(tmp_path / "report.csv") as handle:
            handle.write("x")
        with output_path(tmp_path / "model.h5") as path, open(path, "w") as handle:
            handle.write("x")
    finally:
        os.umask(previous)
    for name in ("report.csv", "model.h5"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask, name


def test_merge_refuses_an_existing_output_without_overwrite(tmp_path):
    a, _, _ = store(tmp_path, "a", n_real=3, n_fake=3)
    b, _, _ = store(tmp_path, "b", n_real=3, n_fake=3, seed=1)
    out = tmp_path / "all.h5"
    out.write_bytes(b"a colleague's file")
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output, result.output
    assert out.read_bytes() == b"a colleague's file"
    result = runner.invoke(app, ["merge", str(a), str(b), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_an_hdf5_file_is_replaced_only_by_an_output_of_its_own_format(tmp_path):
    """`export --out STORE.h5` wrote a CSV over a feature store, `train --out STORE.h5` a model: computed rows
    lost without a word. An HDF5 file is now replaced only by an HDF5 output of its own `format` (a model by
    a model; a store, which has none, by a merge)."""
    from pathlib import Path

    import h5py

    store, model = tmp_path / "store.h5", tmp_path / "model.h5"
    with h5py.File(store, "w") as f:
        f["features"] = [1.0, 2.0]
    with h5py.File(model, "w") as f:
        f.attrs["format"] = "scanner-model"
    before = store.read_bytes()
    for replaces in (None, "scanner-model"):
        with pytest.raises(InputError, match="is an HDF5 file"), output_path(store, replaces=replaces):
            pass
    with pytest.raises(InputError, match="is a scanner-model"), output_path(model):
        pass
    with pytest.raises(InputError, match="is a scanner-model"), output_path(model, replaces=""):
        pass
    assert store.read_bytes() == before
    for path, replaces in ((model, "scanner-model"), (store, "")):
        with output_path(path, replaces=replaces) as tmp:
            Path(tmp).write_text("new")
        assert path.read_text() == "new"
