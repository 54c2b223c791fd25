import io
import math
import threading
from collections import Counter

import pytest

from scanner.core.words import plural
from scanner.io.walk import Walk
from scanner.run.progress import (
    SETTLE_FILES,
    SETTLE_SECONDS,
    ScanDisplay,
    TimeLeft,
    TotalCount,
    format_duration,
    format_rate,
)
from scanner.run.sweep import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    with ScanDisplay(total=100, stream=stream, every=0) as display:
        assert display.mode == "lines"
        display.update(Progress(written=40, skipped=20, total=100, elapsed=20.0, counts=Counter(ok=40)))
    assert stream.getvalue() == (
        "scan: 60 of 100 files (60%), 20 already in the store, 2.0 images/s, 20 s elapsed, about 20 s left\n"
    )


def test_before_the_first_file_it_says_starting():
    stream = io.StringIO()
    with ScanDisplay(stream=stream, every=0) as display:
        display.update(Progress(written=0, skipped=0, total=None, elapsed=12.0))
    assert stream.getvalue() == "scan: 0 files, starting, 12 s elapsed\n"


def test_rates_and_durations_in_words():
    assert format_rate(1234.4) == "1,234 images/s" and format_rate(12.0) == "12 images/s"
    assert format_rate(3.46) == "3.5 images/s" and format_rate(0.4) == "2.5 s per image"
    assert format_rate(0.0) == "- images/s"
    assert format_duration(42.4) == "42 s" and format_duration(185) == "3 min 05 s"
    assert format_duration(7620) == "2 h 07 min"
    assert plural(1, "worker") == "1 worker" and plural(2, "worker") == "2 workers"
    assert plural(1500, "file") == "1,500 files"


def test_the_rate_leaves_out_start_up():
    """30 s of compiling, then about 9 images/s: the rate and the time left follow the measuring, not the wait."""
    stream = io.StringIO()
    with ScanDisplay(total=1000, stream=stream, every=0) as display:
        display.update(Progress(written=0, skipped=0, total=None, elapsed=30.0))
        display.update(Progress(written=1, skipped=0, total=None, elapsed=31.0))
        display.update(Progress(written=101, skipped=0, total=None, elapsed=41.0))
    last = stream.getvalue().splitlines()[-1]
    assert last == "scan: 101 of 1,000 files (10%), 9.2 images/s, 41 s elapsed, about 1 min 38 s left"  # 101 in 11 s


def test_files_that_all_come_at_once_still_have_a_rate():
    stream = io.StringIO()
    with ScanDisplay(total=8, stream=stream, every=0) as display:
        display.update(Progress(written=0, skipped=0, total=None, elapsed=5.0))
        display.update(Progress(written=8, skipped=0, total=None, elapsed=9.0))
        display.update(Progress(written=8, skipped=0, total=None, elapsed=9.1))
    assert stream.getvalue().splitlines()[-1] == "scan: 8 of 8 files (100%), 2.0 images/s, 9 s elapsed"  # 8 in 4.1 s


def test_quiet_prints_nothing():
    stream = Terminal()
    with ScanDisplay(quiet=True, stream=stream, every=0) as display:
        display.update(Progress(written=4, skipped=0, total=None, elapsed=1.0))
    assert stream.getvalue() == ""


def test_bar_on_a_terminal_shows_count_rate_and_then_the_total():
    stream = Terminal()
    with ScanDisplay(total=None, stream=stream) as display:
        assert display.mode == "bar"
        display.update(Progress(written=1500, skipped=0, total=None, elapsed=6.0))
        display._bar.refresh()
        shown = stream.getvalue()
        assert "1,500 files" in shown and "250 images/s" in shown
        display.set_total(3000)
        display.update(Progress(written=1500, skipped=0, total=None, elapsed=6.0))
        display._bar.refresh()
        shown = stream.getvalue()
    assert "1,500 of 3,000 files (50%)" in shown and "about 6 s left" in shown


def test_the_total_is_counted_in_the_background(tmp_path):
    for i in range(30):
        (tmp_path / f"d{i % 3}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 3}" / f"{i}.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not taken: not an image extension")
    got = []
    done = threading.Event()
    with TotalCount(lambda: Walk([tmp_path]), lambda n: (got.append(n), done.set())) as count:
        assert done.wait(10)
    assert got == [30] and count.total == 30


def test_a_shard_counts_its_own_files_only(tmp_path, monkeypatch):
    """`scan --shard I/N`: the progress total is the shard's files, not the whole listing's."""
    from typer.testing import CliRunner

    from scanner.cli import app
    from scanner.run.sweep import shard_files
    from scanner.store.hdf5 import read_features

    for i in range(40):
        (tmp_path / "photos").mkdir(exist_ok=True)
        (tmp_path / "photos" / f"{i}.jpg").write_bytes(b"not a jpeg")
    walk = Walk([tmp_path / "photos"])
    sizes = [sum(1 for _ in shard_files(walk, (i, 3))) for i in (1, 2, 3)]
    assert sum(sizes) == 40 and all(0 < n < 40 for n in sizes)
    assert sum(1 for _ in shard_files(walk, None)) == 40

    totals = []
    monkeypatch.setattr(ScanDisplay, "set_total", lambda self, n: totals.append(n))
    out = tmp_path / "s.h5"
    result = CliRunner().invoke(app, ["scan", str(tmp_path / "photos"), "--out", str(out), "--shard", "2/3", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert totals == [sizes[1]] == [len(read_features(out))]


class FakeClock:
    """A scan's progress at chosen moments: the time left as a display would show it."""

    def __init__(self, total):
        self.total, self.display = total, ScanDisplay(total=total, stream=io.StringIO(), every=0)

    def at(self, elapsed, written):
        return self.display.words(Progress(written=written, skipped=0, total=self.total, elapsed=elapsed))[2]


def test_no_time_left_until_the_rate_has_settled():
    """The friction: a 21 s scan said "about 14 min left" in its first second. A slow first file (the
    workers starting), then 10 files a second: nothing is said until 5 s and 20 files have passed."""
    clock = FakeClock(total=200)
    assert clock.at(2.0, 0) == ""  # start-up
    assert [clock.at(2.0 + t, n) for t, n in [(0.1, 1), (0.5, 1), (1.0, 6), (3.0, 26), (4.9, 45)]] == [""] * 5
    assert clock.at(7.0, 50) == "about 15 s left"  # 50 in 5 s: 10 a second, 150 to go
    assert SETTLE_SECONDS == 5.0 and SETTLE_FILES == 20


def test_few_files_in_a_long_time_is_not_settled_either():
    left = TimeLeft()
    assert left.update(0.0, 0, 0.0, 100) is None
    assert left.update(30.0, 3, 0.1, 97) is None  # 30 s, but only 3 files
    assert left.update(200.0, 20, 0.1, 80) == pytest.approx(800.0)


def test_the_time_left_is_smoothed():
    """After settling at 10 files/s, one poll at 100 files/s moves the rate the time left uses by a share of
    the jump (1 - exp(-dt / 10 s)), not all of it; a steady rate brings it back."""
    left = TimeLeft()
    left.update(0.0, 0, 0.0, 1000)
    assert left.update(10.0, 100, 10.0, 900) == pytest.approx(90.0)
    burst = left.update(11.0, 200, 100.0, 800)
    rate = 10.0 + 90.0 * (1 - math.exp(-0.1))
    assert burst == pytest.approx(800 / rate) and 20 < burst < 90
    for second in range(12, 80):
        settled = left.update(float(second), 200 + 10 * (second - 11), 10.0, 800 - 10 * (second - 11))
    assert settled == pytest.approx(120 / 10.0, rel=0.01)


def test_a_new_start_up_holds_it_back_again():
    left = TimeLeft()
    left.update(0.0, 0, 0.0, 100)
    assert left.update(10.0, 50, 5.0, 50) == pytest.approx(10.0)
    assert left.update(11.0, 0, 0.0, 100) is None  # nothing measured (a fresh display's first poll)
