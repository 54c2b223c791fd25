"""What scanned files declare about their making, end to end: the `declared` column through every executor
(in process, the local pool, a local Dask cluster's part files), the exports, info, classify's verdicts and
its disagreement line, and the report; on files crafted here."""

import json
import os
import subprocess
import sys

import pytest
from declared_files import (
    CRAFTED_C2PA,
    app11,
    c2pa_store,
    chunk,
    exif_app1,
    jpeg,
    png,
    segment,
    text_chunk,
    with_chunks,
    with_segments,
    xmp_app1,
    xmp_packet,
)
from helpers import invoke, read_csv

from scanner.core.constants import ReadLimits
from scanner.detect.verdicts import read_verdicts
from scanner.io.walk import Walk
from scanner.run.executors.inline import InProcess
from scanner.run.sweep import MeasureOptions, ScanOptions, scan
from scanner.store.hdf5 import read_features

# Each file, and what it declares ('' when nothing). The crafted manifest stores hold no claim: with the optional
# extra c2pa:invalid, else c2pa (tests/images/test_c2pa_validation.py signs real ones).
C2PA = CRAFTED_C2PA
EXPECTED = {
    "c2pa.jpg": C2PA,
    "xmp.jpg": "iptc:trainedAlgorithmicMedia",
    "both.jpg": f"{C2PA};exif-software:Midjourney",
    "params.png": "png-text:parameters",
    "comfy/cabx.png": f"{C2PA};png-text:workflow",
    "plain.png": "",
    "plain.jpg": "",
    "many-segments.jpg": "",  # 10^5 empty segments, then a c2pa box the bounded walk never reaches
    "cut.jpg": C2PA,  # the image data ends early: truncated, yet its declaration is recorded
}
# The judged files that declare a generator: an IPTC source type, EXIF software or PNG text. A C2PA manifest
# alone (c2pa.jpg) is not one: cameras and editors sign photographs too.
DECLARING = ["both.jpg", "comfy/cabx.png", "params.png", "xmp.jpg"]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "comfy").mkdir(parents=True)
    files = {
        "c2pa.jpg": with_segments(jpeg(0), app11(c2pa_store())),
        "xmp.jpg": with_segments(jpeg(1), xmp_app1(xmp_packet("trainedAlgorithmicMedia"))),
        "both.jpg": with_segments(jpeg(2), exif_app1("Midjourney v6"), app11(c2pa_store())),
        "params.png": with_chunks(png(3), text_chunk("parameters", "a face, Steps: 30")),
        "comfy/cabx.png": with_chunks(png(4), chunk(b"caBX", c2pa_store()), text_chunk("workflow", "{}")),
        "plain.png": png(5),
        "plain.jpg": jpeg(6),
        "many-segments.jpg": with_segments(jpeg(7), segment(0xE2, b"") * 100_000, app11(c2pa_store())),
        "cut.jpg": with_segments(jpeg(8), app11(c2pa_store()))[:-200],
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def declared_of(store, root):
    table = read_features(store)
    return {
        os.path.relpath(p, root): (d, s)
        for p, d, s in zip(table.path, table.declared.tolist(), table.status.tolist(), strict=True)
    }


def test_every_executor_records_what_files_declare(tree, tmp_path):
    scan(
        Walk([tree]),
        tmp_path / "inline.h5",
        ScanOptions(measure=MeasureOptions(planner="estimate"), limits=ReadLimits()),
        executor=InProcess,
    )
    inline = declared_of(tmp_path / "inline.h5", tree)
    assert {name: d for name, (d, _) in inline.items()} == EXPECTED
    statuses = {name: s for name, (_, s) in inline.items()}
    assert statuses.pop("cut.jpg") == "truncated" and set(statuses.values()) == {"ok"}  # declarations change none
    pool = invoke("scan", tree, "--out", tmp_path / "pool.h5", "-j", "2", "--planner", "estimate", "--quiet")
    assert pool.exit_code == 0, pool.output
    assert declared_of(tmp_path / "pool.h5", tree) == inline
    dask = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", str(tree), "--out", str(tmp_path / "dask.h5")]
        + ["--cluster", "local", "--workers", "2", "--planner", "estimate", "--quiet"],
        capture_output=True,
        timeout=300,
    )
    assert dask.returncode == 0, dask.stderr.decode()
    assert declared_of(tmp_path / "dask.h5", tree) == inline  # through the workers' part files


def test_exports_info_classify_and_report(tree, tmp_path):
    store = tmp_path / "s.h5"
    result = invoke("scan", tree, "--out", store, "-j", "2", "--planner", "estimate", "--quiet")
    assert result.exit_code == 0, result.output
    # Exports: the column in CSV (empty when nothing), null in JSON lines.
    assert invoke("export", store, "--out", tmp_path / "s.csv").exit_code == 0
    assert {os.path.relpath(r["path"], tree): r["declared"] for r in read_csv(tmp_path / "s.csv")} == EXPECTED
    assert invoke("export", store, "--out", tmp_path / "s.jsonl").exit_code == 0
    with open(tmp_path / "s.jsonl", encoding="utf-8") as handle:
        rows = {os.path.relpath(r["path"], tree): r["declared"] for r in map(json.loads, handle)}
    assert rows == {name: value or None for name, value in EXPECTED.items()}
    # info counts the files that declare something, and each declaration.
    info = invoke("info", store)
    assert info.exit_code == 0, info.output
    assert (
        f"declared:       6 files declare their making ({C2PA} 4, exif-software:Midjourney 1, "
        "iptc:trainedAlgorithmicMedia 1, png-text:parameters 1, png-text:workflow 1)"
    ) in info.output
    described = json.loads(invoke("info", store, "--json").stdout)
    assert described["declared"]["files"] == 6 and described["declared"]["each"][C2PA] == 4
    # classify: with a threshold no score reaches, every usable file is judged real; the files that declare a
    # generator are named in one line, and their verdicts stay real.
    verdicts_csv = tmp_path / "v.csv"
    classified = invoke("classify", store, "--out", verdicts_csv, "--threshold", "1e9")
    assert classified.exit_code == 0, classified.output
    line = next(x for x in classified.output.splitlines() if "declare a generator" in x)
    assert line.startswith(
        "4 files declare a generator (iptc:trainedAlgorithmicMedia, exif-software:Midjourney, "
        "png-text:parameters, png-text:workflow) but were judged real: "
    )
    named = line.split("judged real: ", 1)[1].split(", ")
    assert sorted(os.path.relpath(p, tree) for p in named) == DECLARING
    back = read_verdicts(verdicts_csv)
    by_name = {os.path.relpath(p, tree): i for i, p in enumerate(back.paths)}
    assert {name: back.declared[i] for name, i in by_name.items()} == EXPECTED
    assert back.verdict[by_name["c2pa.jpg"]] == "real" and back.verdict[by_name["cut.jpg"]] == ""
    assert {r["declared"] for r in read_csv(verdicts_csv)} == set(EXPECTED.values())
    # The report: what is declared next to each listed file, and the files that disagree.
    report = tmp_path / "r.html"
    made = invoke("report", store, "--verdicts", verdicts_csv, "--out", report, "--top", "3")
    assert made.exit_code == 0, made.output
    page = report.read_text(encoding="utf-8")
    assert 'id="declared-but-real">4 files declare a generator but were judged real' in page
    assert f'<td class="n" data-key="{C2PA}">4</td>' in page
    assert page.count('<td class="declared">') == 3  # one per listed file
