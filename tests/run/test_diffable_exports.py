"""Two sweeps of one tree by different executors export the same bytes: exports are sorted by root and path,
not in the order the workers finished."""

import subprocess
import sys

import pyarrow.parquet as pq
from helpers import invoke, write_tree

# The inline executor, in a process of its own as the pool's workers are: this test process may hold FFTW
# wisdom from earlier tests, and a plan made from wisdom may round features apart (docs/architecture.md).
INLINE = """
import sys
from scanner.io.walk import Walk
from scanner.run.executors.inline import InProcess
from scanner.run.sweep import MeasureOptions, ScanOptions, scan
scan(Walk([sys.argv[1]]), sys.argv[2], ScanOptions(MeasureOptions(planner="estimate")), executor=InProcess)
"""


def test_exports_of_the_inline_executor_and_the_pool_are_identical(tmp_path):
    tree = tmp_path / "tree"
    write_tree(tree, 40)
    inline = subprocess.run(
        [sys.executable, "-c", INLINE, tree, tmp_path / "inline.h5"], capture_output=True, timeout=300
    )
    assert inline.returncode == 0, inline.stderr.decode()
    result = invoke("scan", tree, "--out", tmp_path / "pool.h5", "-j", "2", "--planner", "estimate", "--quiet")
    assert result.exit_code == 0, result.output
    for store in ("inline", "pool"):
        for suffix in ("csv", "jsonl", "parquet"):
            assert invoke("export", tmp_path / f"{store}.h5", "--out", tmp_path / f"{store}.{suffix}").exit_code == 0
    inline_csv = (tmp_path / "inline.csv").read_bytes()
    assert inline_csv.count(b"\n") == 1 + 40 + 7
    assert inline_csv == (tmp_path / "pool.csv").read_bytes()
    assert (tmp_path / "inline.jsonl").read_bytes() == (tmp_path / "pool.jsonl").read_bytes()
    assert pq.read_table(tmp_path / "inline.parquet").equals(pq.read_table(tmp_path / "pool.parquet"))
    # The stores themselves hold their rows in completion order; the exports do not depend on it.
    unsorted = [tmp_path / f"{store}-as-stored.csv" for store in ("inline", "pool")]
    for store, out in zip(("inline", "pool"), unsorted, strict=True):
        assert invoke("export", tmp_path / f"{store}.h5", "--out", out, "--store-order").exit_code == 0
    assert sorted(unsorted[0].read_bytes().splitlines()) == sorted(inline_csv.splitlines())
