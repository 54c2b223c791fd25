"""Running the command line on hostile input: a subprocess with a timeout and a memory limit.

A hang or a runaway allocation must fail the test, never the test run, so every
command that meets a hostile file runs here: `timeout` seconds at most (a hang is
subprocess.TimeoutExpired, which fails the test) and `memory_gib` of address
space (RLIMIT_AS, inherited by the command's worker processes).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Sequence

MEMORY_GIB = 2  # a scan with two workers runs in 1 GiB of address space; a bomb would need far more


def limited(memory_gib: float):
    def apply() -> None:
        limit = int(memory_gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


# Commands whose exit code says whether every file was usable only with --strict (a finished sweep
# exits 0 otherwise): these tests check that code, so they ask for it.
STRICT_COMMANDS = frozenset({"features", "scan", "train", "classify", "adapt", "spectrum"})


def _strict(args: Sequence[object]) -> list[object]:
    args = list(args)
    return [*args, "--strict"] if args and str(args[0]) in STRICT_COMMANDS and "--strict" not in args else args


def scanner(
    *args: object,
    timeout: float = 120,
    memory_gib: float = MEMORY_GIB,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    """`scanner ARGS...` in a subprocess; raises TimeoutExpired if it does not end in time."""
    return subprocess.run(
        [sys.executable, "-m", "scanner", *(os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in _strict(args))],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        preexec_fn=limited(memory_gib),
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def text(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).decode("utf-8", "replace")


def assert_message(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The command ended with `code`, printed no traceback, and its stderr is one line holding every needle."""
    out = text(result)
    assert "Traceback" not in out, out
    assert result.returncode == code, out
    err = result.stderr.decode("utf-8", "replace").strip()
    if code not in (0, 1):
        assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def no_traceback(results: Sequence[subprocess.CompletedProcess]) -> None:
    for result in results:
        assert "Traceback" not in text(result), text(result)


_BATCH = r"""
import io, json, sys, traceback
from scanner.cli import app

results = []
for args in json.loads(sys.argv[1]):
    out, err = io.TextIOWrapper(io.BytesIO(), "utf-8"), io.TextIOWrapper(io.BytesIO(), "utf-8")
    sys.stdout, sys.stderr = out, err
    try:
        app(args, prog_name="scanner", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = -1
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", "replace"))
    results.append([code, *texts])
print(json.dumps(results))
"""


def scanner_batch(
    commands: Sequence[Sequence[object]], *, timeout: float = 120, memory_gib: float = MEMORY_GIB
) -> list[subprocess.CompletedProcess]:
    """Several commands in one subprocess (one start-up for all; same timeout and memory limit), each
    with its own exit code, stdout and stderr."""
    import json

    argv = [[os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in _strict(command)] for command in commands]
    done = subprocess.run(
        [sys.executable, "-c", _BATCH, json.dumps(argv)],
        capture_output=True,
        timeout=timeout,
        preexec_fn=limited(memory_gib),
    )
    assert done.returncode == 0 and done.stdout, done.stderr.decode("utf-8", "replace")
    return [
        subprocess.CompletedProcess(command, code, out.encode(), err.encode())
        for command, (code, out, err) in zip(argv, json.loads(done.stdout.splitlines()[-1]), strict=True)
    ]


def unprompted(stderr: bytes) -> bytes:
    """stderr without the notice a first run on a fresh clone gives while numba compiles the kernels."""
    kept = [line for line in stderr.splitlines(keepends=True) if b"first run only" not in line]
    return b"".join(line for line in kept if b"kernels compiled in" not in line)
