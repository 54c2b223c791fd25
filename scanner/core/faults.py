"""Fault hooks for the tests: a real scan made to crash, hang or slow down at a chosen moment.

Each hook is driven by an environment variable, read when the hook is reached, and
does nothing when its variable is unset (the only cost in a normal run is one
look-up in ``os.environ``):

- ``SCANNER_TEST_KILL_AT=NAME``: ``kill_point(NAME)`` SIGKILLs the whole process
  group (the store's moments where a crash is most dangerous: inside a merge,
  between a merge and retiring its journal, after a journal append).
- ``SCANNER_TEST_HANG_ON=TEXT``: a file whose name contains TEXT hangs in its decode.
- ``SCANNER_TEST_CRASH_ON=TEXT``: such a file crashes its process (an abort, as a
  decoder's crash would end it).
- ``SCANNER_TEST_DELAY=TEXT:SECONDS``: such a file takes that much longer to decode
  (so that a test can stop a scan midway).
- ``SCANNER_TEST_PAUSE_AT=NAME:SECONDS:MARKER``: the first time ``pause_point(NAME)`` is
  reached, it creates the file MARKER and sleeps SECONDS (so that a test can break
  something at that exact moment: kill every Dask worker while the client holds a
  finished task whose result it has not fetched yet).

This module imports nothing heavy: every layer may call into it.
"""

from __future__ import annotations

import os
import signal
import time


def kill_point(name: str) -> None:
    """Crash-test hook: with SCANNER_TEST_KILL_AT=name, SIGKILL the whole process group here.

    The tests use it to stop a real scan at the exact moments a crash is most
    dangerous (inside a merge, between a merge and retiring its journal).
    """
    if os.environ.get("SCANNER_TEST_KILL_AT") == name:
        os.killpg(os.getpgid(0), signal.SIGKILL)


def decode_point(name: str) -> None:
    """Test hooks in the worker, as a hostile or slow file would act: with SCANNER_TEST_HANG_ON=TEXT a file
    whose name contains TEXT hangs in its decode; with SCANNER_TEST_CRASH_ON=TEXT it crashes its process (an
    abort, as a decoder's crash would end it); with
    SCANNER_TEST_DELAY=TEXT:SECONDS it takes that much longer (so that a test can stop a scan midway)."""
    hang, crash = os.environ.get("SCANNER_TEST_HANG_ON"), os.environ.get("SCANNER_TEST_CRASH_ON")
    delay = os.environ.get("SCANNER_TEST_DELAY")
    if not (hang or crash or delay):
        return
    base = os.path.basename(name)
    if hang and hang in base:
        while True:
            time.sleep(60)
    if crash and crash in base:
        os.abort()
    if delay:
        text, _, seconds = delay.rpartition(":")
        if text in base:
            time.sleep(float(seconds))


def pause_point(name: str) -> None:
    """Test hook: with SCANNER_TEST_PAUSE_AT=NAME:SECONDS:MARKER, the first arrival here creates MARKER
    (the test's cue) and sleeps SECONDS; later arrivals, and every arrival without it, go straight on."""
    setting = os.environ.get("SCANNER_TEST_PAUSE_AT")
    if not setting:
        return
    where, _, rest = setting.partition(":")
    seconds, _, marker = rest.partition(":")
    if where != name or not marker or os.path.exists(marker):
        return
    with open(marker, "w"):
        pass
    time.sleep(float(seconds))
