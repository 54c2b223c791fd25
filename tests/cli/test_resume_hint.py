"""Ctrl-C of `scanner scan --overwrite` prints the command that goes on: the same one would start over."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import cv2
from helpers import natural_image
from hostile import MEMORY_GIB, limited

from scanner.cli.measure import resume_command
from scanner.store.hdf5 import read_features


def test_the_resume_command_leaves_out_overwrite_only():
    argv = ["/venv/bin/scanner", "scan", "my photos", "--overwrite", "--out", "a b.h5", "--", "--overwrite"]
    assert resume_command(argv) == "scanner scan 'my photos' --out 'a b.h5' -- --overwrite"
    assert resume_command(["scanner", "scan", "x", "-o", "s.h5"]) == "scanner scan x -o s.h5"


def test_ctrl_c_of_an_overwriting_scan_prints_the_command_that_resumes(tmp_path):
    photos = tmp_path / "my photos"
    photos.mkdir()
    for i in range(40):
        cv2.imwrite(str(photos / f"img{i:03d}.png"), natural_image(32, 32, seed=i)[..., ::-1])
    out = tmp_path / "s.h5"
    scan = ["scan", str(photos), "--out", str(out), "--overwrite", "-j", "1", "--planner", "estimate"]
    scan += ["--checkpoint-rows", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "scanner", *scan],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group, as a terminal makes: Ctrl-C reaches every process in it
        preexec_fn=limited(MEMORY_GIB),
        env={**os.environ, "SCANNER_TEST_DELAY": "img:0.2"},
    )
    deadline = time.monotonic() + 120
    while not (out.exists() and len(read_features(out)) >= 3):  # a few rows are in the store
        assert time.monotonic() < deadline and process.poll() is None, "the scan did not get going"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()
    line = err.decode().strip().splitlines()[-1]
    prefix = "interrupted: what finished is in the store; to go on, run: "
    assert line.startswith(prefix), line
    words = shlex.split(line[len(prefix) :])
    assert words == ["scanner", *[w for w in scan if w != "--overwrite"]]
    kept = len(read_features(out))
    assert 0 < kept < 40
    resumed = subprocess.run(
        [sys.executable, "-m", "scanner", *words[1:], "--json"], capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["skipped"] == kept and len(read_features(out)) == 40  # went on, not over
