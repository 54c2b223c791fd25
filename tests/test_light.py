"""Light commands stay light: no numba, pyFFTW or OpenCV before they are needed."""

import subprocess
import sys

import pytest

import scanner

HEAVY = ("numba", "pyfftw", "cv2", "sklearn", "matplotlib")


def imported_modules(*args):
    """Top-level modules a fresh `python -X importtime ARGS` imports (from its import-time log)."""
    result = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120)
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return result, names


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from scanner.core.schema import make_table
    from scanner.store.hdf5 import write_table

    path = tmp_path_factory.mktemp("light") / "s.h5"
    write_table(path, make_table(["/x/a.png", "/x/b.png"], [[0.1] * 6, [0.2] * 6]))
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["info", "STORE"],
        ["info", "STORE", "--json"],
        ["export", "STORE", "--out", "-"],
        ["export", "STORE", "--out", "-", "--format", "jsonl", "--status", "ok"],
        ["scan", "--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_light_commands_import_no_heavy_library(args, store):
    args = [str(store) if a == "STORE" else a for a in args]
    result, names = imported_modules("-m", "scanner", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scanner" in names
    assert not names & set(HEAVY), f"scanner {' '.join(args)} imported {sorted(names & set(HEAVY))}"


def test_import_scanner_is_light_and_every_public_name_resolves():
    result, names = imported_modules("-c", "import scanner")
    assert result.returncode == 0 and not names & set(HEAVY)
    for name in scanner.__all__:
        assert getattr(scanner, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        scanner.nothing  # noqa: B018
