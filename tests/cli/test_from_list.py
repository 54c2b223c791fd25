"""`find -print0 | scanner scan --from-list -` without --null keeps a name that holds a newline whole."""

import json
import os
import subprocess
import sys

import cv2
import pytest
from helpers import natural_image

from scanner.store.hdf5 import read_features


def test_find_print0_without_null_keeps_a_name_with_a_newline(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    names = [photos / "two\nlines.png", photos / "plain.png"]
    for i, name in enumerate(names):
        cv2.imwrite(str(tmp_path / "tmp.png"), natural_image(32, 32, seed=i)[..., ::-1])
        os.replace(tmp_path / "tmp.png", name)
    listing = subprocess.run(["find", str(photos), "-type", "f", "-print0"], capture_output=True, check=True).stdout
    out = tmp_path / "s.h5"
    scan = [sys.executable, "-m", "scanner", "scan", "--from-list", "-", "--out", str(out), "-j", "1", "--json"]
    done = subprocess.run(scan + ["--planner", "estimate"], input=listing, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["status"] == {"ok": 2}  # no `vanished` halves of the name
    assert sorted(read_features(out).path) == sorted(str(n) for n in names)


def test_a_list_that_is_a_never_ending_device_is_refused_in_one_line(tmp_path):
    """--from-list /dev/zero (or stdin from it) read empty entries for ever, the scan never ending; a
    device is refused before the store is made, while /dev/null reads as the empty list it is."""
    out = tmp_path / "s.h5"
    scan = [sys.executable, "-m", "scanner", "scan", "--out", str(out), "-j", "1", "--quiet", "--from-list"]
    with open(os.devnull, "rb") as null, open("/dev/zero", "rb") as zero:
        for args, stdin in (([os.path.realpath("/dev/zero")], None), (["-"], zero)):
            done = subprocess.run(scan + args, stdin=stdin, capture_output=True, text=True, timeout=120)
            assert done.returncode == 2, done.stderr
            assert done.stderr.endswith("is a character device, not a file or a pipe\n"), done.stderr
            assert len(done.stderr.splitlines()) == 1 and not out.exists()
        for args, stdin in (([os.devnull], None), (["-"], null)):
            done = subprocess.run(scan + args, stdin=stdin, capture_output=True, text=True, timeout=120)
            assert (done.returncode, done.stderr) == (0, "")
            assert len(read_features(out).path) == 0


def test_a_list_from_a_closed_standard_input_is_one_line(tmp_path):
    """`--from-list - <&-` (stdin closed, so sys.stdin is None) ended in an AttributeError traceback."""
    out = tmp_path / "s.h5"
    scan = [sys.executable, "-m", "scanner", "scan", "--out", str(out), "--quiet", "--from-list", "-"]
    done = subprocess.run(scan, capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.close(0))
    assert (done.returncode, done.stderr) == (2, "scanner scan: cannot read the list -: standard input is closed\n")
    assert not out.exists()


def test_a_list_that_never_gives_a_path_ends_in_one_line(tmp_path):
    """/proc/self/pagemap is a "regular file" of size 0 that reads NUL bytes for ever: empty entries,
    skipped one after another, and the scan never ended. A list may hold 64 MiB between two paths."""
    if not os.access("/proc/self/pagemap", os.R_OK):
        pytest.skip("no /proc/self/pagemap here")
    out = tmp_path / "s.h5"
    scan = [sys.executable, "-m", "scanner", "scan", "--out", str(out), "-j", "1", "--quiet"]
    done = subprocess.run(scan + ["--from-list", "/proc/self/pagemap"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "scanner scan: cannot read the list /proc/self/pagemap: 67,108,864 bytes read without a path in them\n"
    )
