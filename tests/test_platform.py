"""Where scanner runs: importing it needs nothing POSIX-only, and its cache follows the platform's rules."""

import subprocess
import sys

import pytest

from scanner.core.schema import make_table
from scanner.store.hdf5 import write_table

WITHOUT_FCNTL = "import sys; sys.modules['fcntl'] = None  # as on Windows: `import fcntl` fails\n"


def run(code, *args):
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_FCNTL + code, *args], capture_output=True, text=True, timeout=120
    )


def test_import_scanner_and_light_commands_need_no_fcntl(tmp_path):
    store = tmp_path / "s.h5"
    write_table(store, make_table(["/x/a.png"], [[0.1] * 6]))
    result = run(
        "import scanner, scanner.cli, scanner.store.session, scanner.run.sweep, scanner.store.hdf5; print('imported')"
    )
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr
    for args in (["--help"], ["info", str(store)], ["export", str(store), "--out", "-"]):
        result = run("import sys; from scanner.__main__ import main; sys.argv[0] = 'scanner'; main()", *args)
        assert result.returncode == 0, (args, result.stderr)
    # Only taking a store's lock needs it, and says so.
    result = run("from scanner.store.lock import locked\nwith locked(sys.argv[1]): pass", str(tmp_path / "t.h5"))
    assert result.returncode != 0 and "fcntl" in result.stderr


def test_cache_directory(monkeypatch, tmp_path):
    from scanner.features.backends.fftw import cache_dir

    monkeypatch.setenv("SCANNER_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("SCANNER_CACHE_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache_dir() == tmp_path / "xdg" / "scanner"
    else:  # pragma: no cover - the suite runs on Linux
        pytest.skip("the XDG rule is Linux's")
