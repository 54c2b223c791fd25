import io
from collections import Counter

from scanner.progress import ScanDisplay
from scanner.scan import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    with ScanDisplay(total=10, stream=stream, every=0) as display:
        assert display.mode == "lines"
        display.update(Progress(written=4, skipped=2, total=10, elapsed=2.0, counts=Counter(ok=4)))
    assert stream.getvalue() == "scan: 6 of 10 files (2 already in the store), 2 images/s, 2 s\n"


def test_quiet_prints_nothing():
    stream = Terminal()
    with ScanDisplay(quiet=True, stream=stream, every=0) as display:
        display.update(Progress(written=4, skipped=0, total=None, elapsed=1.0))
    assert stream.getvalue() == ""


def test_bar_on_a_terminal_shows_count_and_rate():
    stream = Terminal()
    with ScanDisplay(total=None, stream=stream) as display:
        assert display.mode == "bar"
        display.update(Progress(written=1500, skipped=0, total=None, elapsed=3.0))
        display._bar.refresh()
        shown = stream.getvalue()
    assert "1,500 files" in shown and "500 images/s" in shown
