"""glibc malloc settings of a measuring process (scanner.core.allocator), checked in fresh processes."""

import json
import os
import platform
import subprocess
import sys

import pytest

PROGRAM = r"""
import ctypes, json, resource, sys
# PR_SET_THP_DISABLE: faults counted in 4 KiB pages even where transparent huge pages are "always"
# (RHEL's default), which served the untuned buffers with fewer, larger faults
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
import numpy as np
from scanner.core.allocator import keep_freed_memory

applied = keep_freed_memory()
faults = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    image = np.empty((1024, 1024, 3), np.uint8)  # what a decoder hands back, image after image
    image.fill(7)
    scratch = np.empty_like(image)
    scratch.fill(1)
    del image, scratch
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "again": keep_freed_memory(), "faults": faults[4:]}))
"""


def run(environment: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environment
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


glibc = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="the settings are glibc's"
)


@glibc
def test_freed_image_buffers_are_reused_without_page_faults():
    tuned = run({})
    assert tuned["applied"] and tuned["again"]
    assert max(tuned["faults"]) < 16  # the same pages, image after image (6 MB would be 1,536 pages)
    untuned = run({"SCANNER_MALLOC": "default"})
    assert not untuned["applied"]
    # glibc's default hands the freed blocks back and faults them in again: this is what the settings remove.
    assert min(untuned["faults"]) > 500
    assert not run({"MALLOC_MMAP_THRESHOLD_": str(128 << 10)})["applied"]  # the user's own setting stands


@glibc
def test_building_an_extractor_applies_the_settings():
    program = (
        "import json, os; from scanner.core import allocator; from scanner.features.extract import make_extractor; "
        "before = allocator._applied; make_extractor(planner='estimate'); "
        "print(json.dumps([before, allocator._applied == os.getpid()]))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [None, True]
