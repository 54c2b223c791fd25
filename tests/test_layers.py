"""The package's layout keeps its rules: imports run only down the layers, no import circle, no
private name crosses a folder, no module over 600 lines, every folder a lazy face with `__all__`.

Read from the sources (ast), so every import counts, the ones inside functions too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scanner"

# Each folder's floor; a module may import its own folder and the folders of lower floors only.
# Folders on one floor (images and store; detect and run; report and bench) do not import each other.
FLOORS = {
    "core": 0,
    "io": 1,
    "images": 2,
    "store": 2,
    "features": 3,
    "detect": 4,
    "run": 4,
    "report": 5,
    "bench": 5,
    "cli": 6,
}
MAX_LINES = 600
# The command modules of the command line: each one a group of commands, none importing another.
COMMAND_MODULES = {"bench", "detect", "measure", "stores", "visual"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> list[tuple[str, str, int]]:
    """(module imported, name imported or '', line) for every import of a scanner module in `name`."""
    path = MODULES[name]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "scanner"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scanner":
            assert node.level == 0, f"{name}:{node.lineno}: a relative import"
            for alias in node.names:
                # `from scanner.x import y` may import the submodule scanner.x.y
                target = f"{node.module}.{alias.name}"
                found.append((target if target in MODULES else node.module, alias.name, node.lineno))
    return found


def folder(name: str) -> str | None:
    """The layer folder of a module (None for the package's own face and __main__)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else None


def test_every_module_lives_in_a_layer_folder():
    loose = [n for n in MODULES if folder(n) is None and n not in ("scanner", "scanner.__main__")]
    assert not loose
    assert set(FLOORS) == {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_imports_run_only_down_the_layers():
    wrong = []
    for name in MODULES:
        here = folder(name)
        if here is None:
            continue
        for target, _, line in imports_of(name):
            there = folder(target)
            if there is None:
                wrong.append(f"{name}:{line} imports the package's face ({target})")
            elif there != here and FLOORS[there] >= FLOORS[here]:
                wrong.append(f"{name}:{line} ({here}) imports {target} ({there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph = {name: {t for t, _, _ in imports_of(name) if t in MODULES and t != name} for name in MODULES}
    # A package's face imports nothing eagerly (it is lazy): its edges are its own imports only.
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(circles)


def test_no_private_name_crosses_a_folder():
    wrong = [
        f"{name}:{line} imports {what} from {target}"
        for name in MODULES
        for target, what, line in imports_of(name)
        if (what.startswith("_") and not what.startswith("__") or "._" in target) and folder(target) != folder(name)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_command_module_imports_another():
    wrong = [
        f"{name}:{line} imports {target}"
        for name in MODULES
        if name.startswith("scanner.cli.") and name.rsplit(".", 1)[1] in COMMAND_MODULES
        for target, _, line in imports_of(name)
        if target.startswith("scanner.cli.") and target.rsplit(".", 1)[1] in COMMAND_MODULES and target != name
    ]
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_600_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert not {n: k for n, k in long.items() if k > MAX_LINES}


def packages():
    return [n for n, p in MODULES.items() if p.name == "__init__.py"]


@pytest.mark.parametrize("package", packages())
def test_every_folder_is_a_short_lazy_face_with_all(package):
    """`__all__` names what the folder offers; importing the folder loads none of its modules (so no
    numba, FFTW or OpenCV for `--help`); no public name is also a submodule's name; and each public
    name, loaded on use, is the same object every time."""
    children = sorted(
        n.rsplit(".", 1)[1] for n in MODULES if n.startswith(package + ".") and n.count(".") == package.count(".") + 1
    )
    code = (
        "import importlib, sys\n"
        f"p = importlib.import_module({package!r})\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith('scanner.') and m != {package!r})\n"
        "print(p.__all__)\nprint(loaded)\n"
        "for name in p.__all__:\n"
        "    first = getattr(p, name)\n"
        "    assert first is getattr(p, name), name\n"
        "    assert type(first).__name__ != 'module', name\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    names, loaded = (ast.literal_eval(line) for line in result.stdout.splitlines()[:2])
    assert names and not set(names) & set(children)
    # what a face may load: its parents' faces, and the helper that makes faces lazy
    parents = {".".join(package.split(".")[:k]) for k in range(2, package.count(".") + 1)}
    assert set(loaded) <= parents | {"scanner.core", "scanner.core.lazy", "scanner.core.version"}, loaded
    assert len(MODULES[package].read_text().splitlines()) <= 120


def test_scanner_scan_is_the_function_before_and_after_its_options_load():
    """`from scanner import ScanOptions, Walk, scan` once bound `scan` to a module of the same name."""
    code = (
        "import scanner\n"
        "first = scanner.scan\n"
        "from scanner import ScanOptions, Walk, scan\n"
        "assert callable(first) and first is scan is scanner.scan, (first, scan)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
