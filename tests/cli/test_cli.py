import json
import subprocess
import sys

import cv2
import numpy as np
from helpers import natural_image, sha256sum
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.featuresets import FEATURE_NAMES
from scanner.core.version import __version__
from scanner.features.reference import reference_features

runner = CliRunner()


def write_images(tmp_path):
    rgb = natural_image(40, 56, seed=2)
    good = tmp_path / "face.png"
    cv2.imwrite(str(good), rgb[..., ::-1])
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    return rgb, good, bad


def test_features_json_matches_reference(tmp_path):
    rgb, good, bad = write_images(tmp_path)
    for mode in ("log", "modulus"):
        result = runner.invoke(
            app, ["features", "--json", "--spectrum", mode, "--planner", "estimate", "--strict", str(good), str(bad)]
        )
        assert result.exit_code == 1, result.output  # --strict: some file unusable
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["status"] for r in rows] == ["ok", "not_image"]
        assert (rows[0]["height"], rows[0]["width"]) == (40, 56)
        ours = np.array([rows[0][name] for name in FEATURE_NAMES])
        np.testing.assert_allclose(ours, reference_features(rgb, mode), rtol=1e-5)
        assert all(rows[1][name] is None for name in FEATURE_NAMES)
        assert rows[1]["error"]
        assert [r["sha256"] for r in rows] == [sha256sum(good), sha256sum(bad)]  # read, if not decoded


def test_features_table(tmp_path):
    _, good, bad = write_images(tmp_path)
    result = runner.invoke(app, ["features", "--planner", "estimate", str(good), str(bad)])
    assert result.exit_code == 0, result.output  # without --strict, an unusable file is reported, not fatal
    header, row, problem = result.stdout.splitlines()
    assert header.split()[:4] == ["path", "status", "size", "sha256"] and header.split()[4:] == list(FEATURE_NAMES)
    assert row.split()[1:3] == ["ok", "56x40"] and problem.split()[1] == "not_image"
    assert row.split()[3] == sha256sum(good)[:12]


def test_features_shows_what_a_file_declares(tmp_path):
    """A PNG with a generator's text chunk and a C2PA box: 'declared' in the table (a line of its own) and in
    --json; a file that declares nothing has no such line and null."""
    from declared_files import CRAFTED_C2PA, c2pa_store, chunk, png, text_chunk, with_chunks

    made = tmp_path / "made.png"
    made.write_bytes(with_chunks(png(), chunk(b"caBX", c2pa_store()), text_chunk("parameters", "a face")))
    plain = tmp_path / "plain.png"
    plain.write_bytes(png(1))
    table = runner.invoke(app, ["features", "--planner", "estimate", str(made), str(plain)])
    assert table.exit_code == 0, table.output
    header, made_row, declared, plain_row = table.stdout.splitlines()
    assert made_row.split()[1] == "ok" and plain_row.split()[1] == "ok"
    assert declared.split() == ["declared:", f"{CRAFTED_C2PA};png-text:parameters"]
    as_json = runner.invoke(app, ["features", "--json", "--planner", "estimate", str(made), str(plain)])
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["declared"] for r in rows] == [f"{CRAFTED_C2PA};png-text:parameters", None]


def test_version_and_usage_errors():
    assert runner.invoke(app, ["--version"]).output.strip() == f"scanner {__version__}"
    assert runner.invoke(app, ["features", "--spectrum", "power", "x.png"]).exit_code == 2


def test_a_mistake_in_the_command_line_is_one_line_and_exit_code_2(tmp_path):
    """Click's usage errors came as a usage line, a hint and a box drawn around the message; the
    console script says what is wrong in one line, as every other error is said."""
    cases = {
        ("scan", "-o", str(tmp_path / "s.h5"), "--workers", "0", str(tmp_path)): (
            "scanner scan: Invalid value for '--workers' / '-j': Input should be greater than or equal to 1"
        ),
        ("classify", "--threshold", "abc", "x.h5"): "scanner classify: Invalid value for '--threshold'",
        ("--bogus",): "scanner: No such option: --bogus",
        ("scann",): "scanner: No such command 'scann'.",
        ("spectrum",): "scanner spectrum: Missing argument 'IMAGE...'.",
        ("scan", "-o"): "scanner scan: Option '-o' requires an argument.",  # raised before scan's context
    }
    for args, start in cases.items():
        result = subprocess.run(
            [sys.executable, "-m", "scanner", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        said = result.stderr.replace("python -m scanner", "scanner")  # the name it was called by
        assert result.returncode == 2, args
        assert result.stdout == "", args
        assert len(said.splitlines()) == 1 and said.startswith(start), said
        assert said.rstrip().endswith("--help)"), said
    # with no command at all the help is the message, still exit code 2; --version and --help exit 0
    bare = subprocess.run([sys.executable, "-m", "scanner"], capture_output=True, text=True, timeout=120)
    assert bare.returncode == 2 and "Usage: python -m scanner" in bare.stdout
    for args in (("--version",), ("info", "--help")):
        result = subprocess.run([sys.executable, "-m", "scanner", *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stderr == "", args


def test_an_output_that_cannot_be_written_is_one_line_and_exit_code_3(tmp_path):
    """Standard output on a full disk (/dev/full) ended in an OSError traceback."""
    for args in (("--version",), ("--help",), ("info", "--help")):
        with open("/dev/full", "w") as full:
            result = subprocess.run(
                [sys.executable, "-m", "scanner", *args], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120
            )
        assert (result.returncode, result.stderr) == (3, "scanner: cannot write: No space left on device\n"), args


def test_a_ctrl_c_caught_in_a_callback_is_delivered_not_printed():
    """A Ctrl-C landing in a weakref callback (as in an import lock's, at start-up) was printed as
    'Exception ignored ... Traceback ... KeyboardInterrupt' and lost; the command line delivers it."""
    code = (
        "import sys, time, weakref\n"
        "from scanner.__main__ import _ctrl_c_in_a_callback\n"
        "sys.unraisablehook = _ctrl_c_in_a_callback\n"
        "class Thing: pass\n"
        "def callback(ref): raise KeyboardInterrupt\n"
        "thing = Thing(); ref = weakref.ref(thing, callback); del thing\n"
        "try:\n"
        "    for _ in range(200): time.sleep(0.01)\n"
        "    print('lost')\n"
        "except KeyboardInterrupt:\n"
        "    print('delivered')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.stdout, result.stderr) == ("delivered\n", "")
