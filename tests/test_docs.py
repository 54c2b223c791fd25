"""The documents agree with the code: every declared fact is documented, and examples run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.constants import ExitCode, Status
from scanner.schema import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def text(name):
    return (ROOT / name).read_text(encoding="utf-8")


def test_readme_is_an_entry_page():
    readme = text("README.md")
    assert len(readme.splitlines()) <= 200
    assert "issue" not in readme.lower()
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", readme):
        assert (ROOT / link).is_file(), link


def test_every_column_status_and_exit_code_is_documented():
    store, method, commands = text("docs/store.md"), text("docs/method.md"), text("docs/commands.md")
    for column in COLUMNS:
        assert f"`{column.name}`" in store, column.name
    for status in Status:
        assert f"| `{status.value}` |" in method, status
    for code in ExitCode:
        assert f"| {int(code)} |" in commands, code


def test_no_document_names_an_issue():
    for page in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        assert not re.search(r"\bissue \d", page.read_text(encoding="utf-8")), page.name


def python_blocks(markdown):
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_the_readme_python_example_runs(tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    scan = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            "examples",
            "--out",
            "examples.h5",
            "--planner",
            "estimate",
            "--quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
    )
    assert scan.returncode == 0, scan.stderr.decode()
    (block,) = python_blocks(text("README.md"))
    result = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok {'mean': ")
    assert lines[1].startswith("8 Measurement(feature_set='paper', spectrum='log', precision='double'")


@pytest.mark.parametrize("page", ["store.md"])
def test_reading_a_store_with_plain_h5py_works_as_documented(page, tmp_path):
    from scanner.schema import make_table
    from scanner.store import write_table

    write_table(tmp_path / "features.h5", make_table(["/x/a.png"], [[0.5] * 6], roots=["/x"]))
    (block,) = python_blocks(text(f"docs/{page}"))
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(block, namespace)
    finally:
        os.chdir(cwd)
    assert namespace["paths"] == ["/x/a.png"] and list(namespace["status"]) == ["ok"]
    assert namespace["columns"][0] == "mean"
