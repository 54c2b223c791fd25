import csv
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import natural_image, sha256sum
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.errors import ReportError
from scanner.core.schema import make_table
from scanner.detect.labels import label_from_path
from scanner.detect.verdicts import read_verdicts
from scanner.features.extract import make_extractor
from scanner.features.measure import features_of_file
from scanner.report.classes import align_verdicts, encoding_gap, encoding_of, labels_from_paths
from scanner.report.html import most_suspicious, thumbnail
from scanner.store.hdf5 import read_features, write_table

runner = CliRunner()
NASTY = "a <b>&\"q'.png"


def build_store(tmp_path, fake_format="jpg"):
    """Real PNGs and fakes (JPEG 4:2:0 q75, or PNG), a broken file and an awkward name, as a store."""
    paths = []
    for label, fmt, count, seed in (("real", "png", 3, 0), ("fake", fake_format, 4, 10)):
        (tmp_path / label).mkdir()
        for i in range(count):
            path = tmp_path / label / f"{label}{i}.{fmt}"
            cv2.imwrite(
                str(path),
                natural_image(48, 64, seed=seed + i)[..., ::-1],
                [cv2.IMWRITE_JPEG_QUALITY, 75] if fmt == "jpg" else [],
            )
            paths.append(path)
    nasty = tmp_path / "real" / NASTY
    cv2.imwrite(str(nasty), natural_image(40, 40, seed=30)[..., ::-1])
    broken = tmp_path / "fake" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    paths += [nasty, broken]
    extractor = make_extractor(spectrum="log", planner="estimate", use_wisdom=False)
    results = [features_of_file(p, extractor) for p in paths]
    table = make_table(
        [r.path for r in results],
        np.array([r.features if r.features is not None else np.full(6, np.nan) for r in results]),
        status=[r.status for r in results],
        error=[r.error for r in results],
        format=[r.info.format or "" for r in results],
        jpeg_subsampling=[r.info.jpeg_subsampling or "" for r in results],
        jpeg_quality=[r.info.jpeg_quality or 0 for r in results],
        height=[r.info.height or 0 for r in results],
        width=[r.info.width or 0 for r in results],
        mtime=[os.stat(p).st_mtime for p in paths],
        sha256=[r.sha256 for r in results],
        attrs={"command": "scanner scan test"},
    )
    store = tmp_path / "sweep.h5"
    write_table(store, table)
    return store, read_features(store)


def write_verdicts(path, table):
    """Scores rising with mean, verdict by sign; non-ok rows without one."""
    scores = {}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "status", "verdict", "score"])
        for p, status, f in zip(table.path, table.status, table.features, strict=True):
            if status != "ok":
                writer.writerow([p, status, "", ""])
                continue
            scores[p] = float(f[0] - np.median(table.features[:, 0][np.isfinite(table.features[:, 0])])) * 100
            writer.writerow([p, status, "fake" if scores[p] > 0 else "real", repr(scores[p])])
    return scores


class Cells(HTMLParser):
    """Every td carrying data-key, by the id of its table; the text of each .suspect heading."""

    def __init__(self):
        super().__init__()
        self.tables, self.table, self.key, self.text = {}, None, None, ""
        self.headings, self.in_heading = [], False
        self.sources, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs.get("id")
            self.tables.setdefault(self.table, {})
        elif tag == "td" and "data-key" in attrs:
            self.key, self.text = attrs["data-key"], ""
        elif tag == "h3":
            self.in_heading, self.text = True, ""
        if "src" in attrs:
            self.sources.append(attrs["src"])
        if "href" in attrs:
            self.links.append(attrs["href"])

    def handle_data(self, data):
        if self.key is not None or self.in_heading:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "td" and self.key is not None:
            self.tables[self.table][self.key] = int(self.text.split()[0].replace(",", ""))
            self.key = None
        elif tag == "h3" and self.in_heading:
            self.headings.append(self.text.split(". ", 1)[1])
            self.in_heading = False


def parse(text):
    cells = Cells()
    cells.feed(text)
    return cells


def expected_counts(values):
    found = {}
    for v in values:
        found[v] = found.get(v, 0) + 1
    return found


def chromium_dom(html_path, tmp_path):
    """Render in headless Chromium: (the DOM it built, its console messages)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    result = subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            html_path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


def test_report_renders_in_chromium_and_agrees_with_the_store(tmp_path):
    store, table = build_store(tmp_path)
    scores = write_verdicts(tmp_path / "verdicts.csv", table)
    out = tmp_path / "report.html"
    result = runner.invoke(
        app,
        [
            "report",
            str(store),
            "--verdicts",
            str(tmp_path / "verdicts.csv"),
            "--out",
            str(out),
            "--top",
            "3",
            "--thumbnails",
            "--scatter",
            "max",
            "icorr_gb",
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    dom, console = chromium_dom(out, tmp_path)
    assert console == []
    assert "Files by status" in dom and "The 3 most suspicious files" in dom
    cells = parse(dom)

    assert cells.tables["status-counts"] == {**expected_counts(table.status), "total": len(table)}
    with open(tmp_path / "verdicts.csv") as handle:
        verdict_of = {row["path"]: row["verdict"] or "no verdict" for row in csv.DictReader(handle)}
    assert cells.tables["verdict-counts"] == {**expected_counts(verdict_of[p] for p in table.path), "total": len(table)}
    ok = [i for i, s in enumerate(table.status) if s == "ok"]
    labels = [label_from_path(table.path[i]) for i in ok]
    pairs = expected_counts(f"{label}|{verdict_of[table.path[i]]}" for label, i in zip(labels, ok, strict=True))
    assert {k: v for k, v in cells.tables["label-verdict"].items() if v} == pairs

    encodings = [
        ("JPEG 4:2:0 q70-79" if table.format[i] == "JPEG" else "PNG", label)
        for label, i in zip(labels, ok, strict=True)
    ]
    assert {k: v for k, v in cells.tables["encoding"].items() if v} == expected_counts(f"{e}|{c}" for e, c in encodings)
    assert "differ in encoding" in dom and 'id="confound"' in text

    ranked = sorted(scores, key=scores.get, reverse=True)[:3]
    assert cells.headings == ranked
    assert 'id="histograms"' in text and 'id="scatter"' in text and "max against icorr_gb" in dom
    assert text.count("data:image/png;base64,") == 2  # histograms and scatter: line art, PNG
    assert text.count("data:image/jpeg;base64,") == 3  # three spectra rows: photographic, JPEG
    assert all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in cells.sources)
    assert cells.links == [Path(p).as_uri() for p in ranked]  # each top file links to the original
    assert not re.search(r"https?://", text) and "<script" not in text
    assert "scanner scan test" in dom  # the run's metadata


def test_every_path_is_escaped(tmp_path):
    store, table = build_store(tmp_path)
    with open(tmp_path / "verdicts.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(
            [["path", "status", "verdict", "score"], [tmp_path / "real" / NASTY, "ok", "fake", 99]]
        )
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(store), "--verdicts", str(tmp_path / "verdicts.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "<b>&" not in text
    assert "a &lt;b&gt;&amp;&quot;q&#x27;.png" in text
    assert parse(text).headings == [str(tmp_path / "real" / NASTY)]


def test_each_listed_file_shows_its_sha256(tmp_path):
    """The most suspicious files each show the first 12 hex digits of the SHA-256 the scan recorded, the whole
    digest in the cell's title: the file's bytes as `sha256sum` hashes them."""
    store, table = build_store(tmp_path)
    scores = write_verdicts(tmp_path / "verdicts.csv", table)
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", str(store), "--verdicts", str(tmp_path / "verdicts.csv"), "--out", str(out), "--top", "3"]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    top = sorted(scores, key=scores.get, reverse=True)[:3]
    cells = re.findall(r'<td class="hash" title="sha256 ([0-9a-f]{64})"><code>([0-9a-f]{12})</code></td>', text)
    assert cells == [(digest, digest[:12]) for digest in sha256sum(*top)]


def test_top_files_that_vanished_or_changed_since_the_scan(tmp_path):
    store, table = build_store(tmp_path)
    scores = write_verdicts(tmp_path / "verdicts.csv", table)
    first, second = sorted(scores, key=scores.get, reverse=True)[:2]
    os.unlink(first)
    os.utime(second, (1e9, 1e9))
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", str(store), "--verdicts", str(tmp_path / "verdicts.csv"), "--out", str(out), "--top", "2"]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "spectra not drawn: the file is now vanished" in text
    assert "the file changed after the scan" in text
    assert text.count("data:image/png;base64,") == 2 and text.count("data:image/jpeg;base64,") == 1  # 2nd's spectra


def test_matched_encodings_give_no_warning_and_labels_without_verdicts(tmp_path):
    store, table = build_store(tmp_path, fake_format="png")
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "share their encoding mix" in text and "differ in encoding" not in text
    assert "Features per label" in text and "Give <code>--verdicts</code>" in text
    assert "verdict-counts" not in text


def test_a_store_without_usable_rows(tmp_path):
    table = make_table(
        ["/x/a.png", "/x/b.jpg"], None, status=["unreadable", "truncated"], error=["corrupt", "ends early"]
    )
    write_table(tmp_path / "bad.h5", table)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(tmp_path / "bad.h5"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    cells = parse(out.read_text(encoding="utf-8"))
    assert cells.tables["status-counts"] == {"unreadable": 1, "truncated": 1, "total": 2}


def test_bad_inputs_are_usage_errors(tmp_path):
    store, table = build_store(tmp_path)
    out = tmp_path / "r.html"
    not_store = tmp_path / "real" / "real0.png"
    assert runner.invoke(app, ["report", str(not_store), "--out", str(out)]).exit_code == 2
    (tmp_path / "v.csv").write_text("path,label\nx,real\n")
    result = runner.invoke(app, ["report", str(store), "--verdicts", str(tmp_path / "v.csv"), "--out", str(out)])
    assert result.exit_code == 2 and "path,verdict,score" in result.stderr
    assert runner.invoke(app, ["report", str(store), "--out", str(out), "--scatter", "mean", "size"]).exit_code == 2
    result = runner.invoke(app, ["report", str(store), "--out", str(tmp_path / "no" / "r.html")])
    assert result.exit_code == 3
    assert not out.exists()


def test_read_verdicts_aligns_by_path_and_counts_strangers(tmp_path):
    table = make_table(["/d/real/a.png", "/d/fake/b.png", "/d/fake/c.png"], np.zeros((3, 6)))
    (tmp_path / "v.csv").write_text(
        "path,status,verdict,score\n/d/fake/b.png,ok,fake,1.5\n/d/./real/a.png,ok,real,-2\n/elsewhere.png,ok,fake,3\n"
    )
    verdicts = align_verdicts(read_verdicts(tmp_path / "v.csv"), table)
    assert verdicts.verdict.tolist() == ["real", "fake", "not in verdicts"]
    np.testing.assert_array_equal(verdicts.score, [-2.0, 1.5, np.nan])
    assert verdicts.unmatched == 1
    (tmp_path / "w.csv").write_text("path,status,verdict,score\n/d/fake/b.png,ok,maybe,1\n")
    with pytest.raises(ReportError, match="line 2"):
        read_verdicts(tmp_path / "w.csv")


def test_most_suspicious_ranks_finite_usable_scores():
    score = np.array([0.5, np.nan, 3.0, 2.0, 3.0, -1.0])
    usable = np.array([True, True, True, False, True, True])
    assert most_suspicious(score, usable, 3).tolist() == [2, 4, 0]
    assert most_suspicious(score, usable, 10).tolist() == [2, 4, 0, 5]
    assert most_suspicious(score, usable, 0).tolist() == []


def test_thumbnails_are_small_and_always_downscaled():
    image = natural_image(48, 30, seed=1)
    small = thumbnail(image)  # 48 px: halved to 24 x 15 block means
    assert small.shape == (24, 15, 3) and small.dtype == np.uint8
    np.testing.assert_allclose(small[3, 4], image[6:8, 8:10].reshape(-1, 3).mean(axis=0), atol=0.5)
    assert thumbnail(natural_image(1024, 768)).shape == (64, 48, 3)


def test_encoding_of_and_gap():
    table = make_table(
        [f"/x/{i}" for i in range(5)],
        None,
        format=["JPEG", "JPEG", "PNG", "JPEG", ""],
        jpeg_subsampling=["4:2:0", "4:4:4", "", "4:2:0", ""],
        jpeg_quality=[75, 100, 0, 0, 0],
    )
    assert encoding_of(table).tolist() == [
        "JPEG 4:2:0 q70-79",
        "JPEG 4:4:4 q90-100",
        "PNG",
        "JPEG 4:2:0 quality unknown",
        "unknown format",
    ]
    assert encoding_gap({"PNG": 10}, {"JPEG": 5}) == 1.0
    assert encoding_gap({"PNG": 10, "JPEG": 10}, {"PNG": 1, "JPEG": 1}) == 0.0
    assert encoding_gap({"PNG": 3, "JPEG": 1}, {"PNG": 1, "JPEG": 1}) == pytest.approx(0.25)


def test_labels_from_paths_agree_with_the_detectors_parser():
    paths = ["/a/real/x.png", "/a/1_FAKE/b/y.jpg", "/a/other/z.png", "/fake/real/w.png", "rel/0_real/v.png", "x.png"]
    assert labels_from_paths(paths).tolist() == [label_from_path(p) for p in paths]


def test_the_examples_report_is_small_and_counts_what_it_shows(tmp_path):
    """Eight 1024 x 1024 examples with verdicts: the report was 2.5 MB with PNG spectra, and said 'the 20 most'."""
    from helpers import EXAMPLES

    files = sorted((EXAMPLES / "real").iterdir()) + sorted((EXAMPLES / "fake").iterdir())
    extractor = make_extractor(planner="estimate")
    features = np.array([features_of_file(p, extractor).features for p in files])
    table = make_table([str(p) for p in files], features, roots=[str(EXAMPLES)])
    write_table(tmp_path / "examples.h5", table)
    with open(tmp_path / "verdicts.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "status", "verdict", "score"])
        writer.writerows([p, "ok", "fake" if i % 2 else "real", i - 3.5] for i, p in enumerate(table.path))
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", str(tmp_path / "examples.h5"), "--verdicts", str(tmp_path / "verdicts.csv"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "<h2>The 8 most suspicious files</h2>" in text and "The 20 most" not in text
    assert out.stat().st_size < 1_000_000 and text.count("data:image/jpeg;base64,") == 8


def run_table(text):
    """The report's run table: {name: value}."""
    import html

    table = text[text.index('<table id="metadata">') :]
    table = table[: table.index("</table>")]
    return {
        html.unescape(k): html.unescape(v) for k, v in re.findall(r"<tr><th>(.*?)</th><td[^>]*>(.*?)</td></tr>", table)
    }


def test_the_report_names_what_produced_the_verdicts_and_warns_of_the_uncalibrated_model(tmp_path):
    import hashlib

    from helpers import invoke, store

    from scanner.core.version import __version__
    from scanner.detect.model import bundled_model_path

    features, paths, _ = store(tmp_path, "sweep", 10, 10)
    bundled_sha = hashlib.sha256(bundled_model_path("paper").read_bytes()).hexdigest()
    made = {}
    for name, options in (("bundled", []), ("threshold", ["--threshold", "0.5"])):
        assert invoke("classify", features, *options, "--out", tmp_path / f"{name}.csv").exit_code == 0
        out = tmp_path / f"{name}.html"
        result = invoke("report", features, "--verdicts", tmp_path / f"{name}.csv", "--top", "0", "--out", out)
        assert result.exit_code == 0, result.output
        made[name] = out.read_text(encoding="utf-8")

    text = made["bundled"]
    warning = text.index('id="uncalibrated"')
    assert text.count('id="uncalibrated"') == 1 and warning < text.index('id="verdict-counts"')
    assert "the bundled model is not calibrated on this collection" in text[warning : warning + 400]
    run = run_table(text)
    assert run["verdicts' model"] == "bundled:paper" and run["verdicts' model SHA-256"] == bundled_sha
    assert (run["verdicts' method"], run["verdicts' feature set"]) == ("svm", "paper")
    assert (run["verdicts' threshold"], run["verdicts' threshold set by"]) == ("0", "default")
    assert run["verdicts' classified by"] == f"scanner {__version__}"

    text = made["threshold"]
    assert 'id="uncalibrated"' not in text
    run = run_table(text)
    assert (run["verdicts' threshold"], run["verdicts' threshold set by"]) == ("0.5", "--threshold")
    assert run["verdicts' model SHA-256"] == bundled_sha

    (tmp_path / "old.csv").write_text("path,status,verdict,score\n" + "".join(f"{p},ok,real,-1\n" for p in paths))
    out = tmp_path / "old.html"
    assert invoke("report", features, "--verdicts", tmp_path / "old.csv", "--top", "0", "--out", out).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert 'id="uncalibrated"' not in text
    assert run_table(text)["verdicts' model"] == "not recorded in the verdicts file (written by an older scanner)"


def test_features_near_the_float64_limits_are_described_not_drawn(tmp_path):
    """Rows of +-1e308 features made the histogram's bins overflow ('bins must increase monotonically') and
    the scatter plot's ticks too ('arange: cannot compute length'): a traceback. Now the histogram says the
    values are too far apart and the scatter plot leaves those rows out, saying how many."""
    rng = np.random.default_rng(0)
    features = rng.random((40, 6))
    features[1, :], features[2, :] = 1e308, -1e308
    paths = [f"/data/{i}.jpg" for i in range(40)]
    table = make_table(paths, features, format=["JPEG"] * 40, size=list(range(40)), mtime=[1.0] * 40, roots=["/data"])
    write_table(tmp_path / "s.h5", table)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(tmp_path / "s.h5"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 rows with a value beyond ±1e+100 are not drawn." in out.read_text(encoding="utf-8")
