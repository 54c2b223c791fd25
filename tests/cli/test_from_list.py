"""`find -print0 | scanner scan --from-list -` without --null keeps a name that holds a newline whole."""

import json
import os
import subprocess
import sys

import cv2
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
