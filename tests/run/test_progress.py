import io
import threading
from collections import Counter

from scanner.io.walk import Walk
from scanner.run.progress import ScanDisplay, TotalCount, format_duration, format_rate, plural
from scanner.run.sweep import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    with ScanDisplay(total=10, stream=stream, every=0) as display:
        assert display.mode == "lines"
        display.update(Progress(written=4, skipped=2, total=10, elapsed=2.0, counts=Counter(ok=4)))
    assert stream.getvalue() == (
        "scan: 6 of 10 files (60%), 2 already in the store, 2.0 images/s, 2 s elapsed, about 2 s left\n"
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
        display.update(Progress(written=1500, skipped=0, total=None, elapsed=3.0))
        display._bar.refresh()
        shown = stream.getvalue()
        assert "1,500 files" in shown and "500 images/s" in shown
        display.set_total(3000)
        display.update(Progress(written=1500, skipped=0, total=None, elapsed=3.0))
        display._bar.refresh()
        shown = stream.getvalue()
    assert "1,500 of 3,000 files (50%)" in shown and "about 3 s left" in shown


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
