"""A sweep's findings as one self-contained HTML file, for people who would rather look.

Made from a feature store (and, optionally, the verdicts of `scanner classify`):
counts per status and verdict; histograms of the six features per class (the
paper's supplementary figures); a scatter of two features; the most suspicious
files with their spectra; the mix of formats and JPEG encodings per class, with
a warning when the classes differ in encoding (the compression confound); the
run's metadata.

Everything is inside the one file: inline CSS, figures as data: URIs, no
script, and a content security policy that forbids loading anything from
anywhere, so opening a report never reaches the network. Every path and every
stored string is HTML-escaped. Only aggregates are embedded, except the top-N
list, so a store of a million rows gives a report of the same size as one of a
hundred. Images are never copied: the top-N spectra are computed from the
original files when the report is made, and small downscaled thumbnails of the
images themselves are embedded only when asked for.

The classes compared (by label or by verdict) and their counts are
scanner.report.classes; the histograms and the scatter are scanner.report.charts.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from scanner.core.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, STATUSES, Status
from scanner.core.errors import ReportError
from scanner.core.schema import FeatureTable
from scanner.core.version import __version__
from scanner.detect.labels import FAKE, REAL
from scanner.detect.verdicts import DISAGREEMENTS_LISTED, UNCALIBRATED_WARNING, VerdictFile, declared_but_real
from scanner.features.extract import make_extractor
from scanner.images.decode import UnusableImage
from scanner.io.outputs import output_file
from scanner.report.charts import HISTOGRAM_BINS, HISTOGRAM_RANGE_PERCENTILES, SHOWN, histogram_figure, scatter_figure
from scanner.report.classes import (
    ENCODING_GAP_WARNING,
    NO_VERDICT,
    NOT_CLASSIFIED,
    AlignedVerdicts,
    Classes,
    align_verdicts,
    classes_of,
    counts,
    encoding_gap,
    encoding_of,
    labels_from_paths,
)
from scanner.report.figures import block_mean, difference_scale, figure_bytes, spectra_view, spectrum_figure

DEFAULT_TOP = 20
DEFAULT_SCATTER = ("mean", "icorr_rg")
SPECTRA_SIDE = 128  # px of each spectrum panel of the top-N list
SPECTRA_JPEG_QUALITY = 85  # the spectra are photographic noise: JPEG holds them in a fifth of a PNG's bytes
THUMBNAIL_SIDE = 64  # px at most of an image thumbnail (--thumbnails)

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


# --- figures ---------------------------------------------------------------


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def file_link(path: str) -> str:
    """A file: URI of the original file (absolute, percent-encoded byte for byte), for the report's links."""
    return Path(os.path.abspath(path)).as_uri()


# --- HTML ------------------------------------------------------------------

_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;background:#f7fafc;margin:0}
main{max-width:1240px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 10px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
.sub{color:#4a5568;margin:0 0 18px}
.cards{display:flex;gap:14px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 18px;min-width:150px}
.card b{display:block;font-size:24px}.card span{color:#4a5568;font-size:13px}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px;font-size:14px}
th,td{border:1px solid #e2e8f0;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#edf2f7;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all;max-width:320px}
.warn,.fine{padding:10px 14px;border-radius:6px;margin:10px 0}
.warn{background:#fff5f5;border:1px solid #feb2b2;border-left:6px solid #c53030}
.fine{background:#f0fff4;border:1px solid #9ae6b4;border-left:6px solid #2f855a}
.note{color:#4a5568;font-size:13px}
img{max-width:100%;height:auto;display:block}
figure{margin:8px 0 16px;background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px}
figcaption{color:#4a5568;font-size:13px;margin-top:6px}
.suspect{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px;margin:10px 0}
.suspect h3{font-size:15px;margin:0 0 6px;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
"""


def _e(text: object) -> str:
    """HTML-escaped text; bytes of a file name that are not UTF-8 show as U+FFFD."""
    value = str(text)
    try:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return html.escape(value, quote=True)


def _count_table(table_id: str, title: str, values: dict[str, int], total: int) -> str:
    rows = "".join(
        f'<tr><td>{_e(k)}</td><td class="n" data-key="{_e(k)}">{v:,}</td><td class="n">{100 * v / total:.1f}%</td></tr>'
        for k, v in values.items()
    )
    return (
        f'<table id="{table_id}"><thead><tr><th>{_e(title)}</th><th>files</th><th>share</th></tr></thead>'
        f'<tbody>{rows}</tbody><tfoot><tr><th>total</th><td class="n" data-key="total">{total:,}</td>'
        f'<td class="n">100%</td></tr></tfoot></table>'
    )


def _cross_table(
    table_id: str,
    rows_title: str,
    row_names: Sequence[str],
    col_names: Sequence[str],
    cells: dict[tuple[str, str], int],
) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in col_names)
    body = ""
    for r in row_names:
        body += (
            f"<tr><th>{_e(r)}</th>"
            + "".join(f'<td class="n" data-key="{_e(r)}|{_e(c)}">{cells.get((r, c), 0):,}</td>' for c in col_names)
            + "</tr>"
        )
    return (
        f'<table id="{table_id}"><thead><tr><th>{_e(rows_title)}</th>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


SHA256_SHOWN = 12  # hex digits of a file's SHA-256 shown; the whole of it is the cell's title


def sha256_cell(digest: str) -> str:
    """A table cell of a file's SHA-256: its first hex digits, the whole digest as the title (a tooltip, and
    what a copy of the page keeps); '-' for a file that was not read (or a store older than file hashes)."""
    if not digest:
        return '<td class="hash" title="not hashed: the file was not read">-</td>'
    return f'<td class="hash" title="sha256 {_e(digest)}"><code>{_e(digest[:SHA256_SHOWN])}</code></td>'


def declared_cell(declared: str) -> str:
    """A table cell of what a file declares about its making ('-' when nothing)."""
    if not declared:
        return '<td class="declared">-</td>'
    return f'<td class="declared">{"<br>".join(_e(d) for d in declared.split(";"))}</td>'


def _declared_section(table: FeatureTable, verdicts: AlignedVerdicts | None) -> str:
    """What files declare about their making, and those that declare a generator yet were judged real."""
    declared = [str(d) for d in table.declared]
    each: dict[str, int] = {}
    for value in declared:
        for item in filter(None, value.split(";")):
            each[item] = each.get(item, 0) + 1
    out = "<h2>What files declare</h2>"
    if not each:
        return out + (
            '<p class="note">No file declares its making (a C2PA manifest, IPTC\'s digital source type, a '
            "generator's metadata). Such declarations can be stripped: their absence proves nothing.</p>"
        )
    files = sum(1 for d in declared if d)
    out += (
        f'<p class="note">{files:,} file{"s declare their" if files != 1 else " declares its"} making in its '
        "metadata: a second line of evidence beside the spectra. Any of them can be stripped, and IPTC, EXIF and "
        "PNG text forged; a C2PA manifest is validated only with the c2pa extra, and alone it declares no "
        "generator (cameras sign photographs too); see docs/detectors.md.</p>"
        + '<table id="declared-counts"><thead><tr><th>declaration</th><th>files</th></tr></thead><tbody>'
        + "".join(
            f'<tr><td>{_e(k)}</td><td class="n" data-key="{_e(k)}">{v:,}</td></tr>' for k, v in sorted(each.items())
        )
        + "</tbody></table>"
    )
    if verdicts is None:
        return out
    rows = declared_but_real(table.path, verdicts.verdict, declared)
    if rows:
        listed = "".join(
            f'<li><a href="{_e(file_link(table.path[i]))}">{_e(table.path[i])}</a> ({_e(declared[i])})</li>'
            for i in rows[:DISAGREEMENTS_LISTED]
        )
        more = f"<li>and {len(rows) - DISAGREEMENTS_LISTED:,} more</li>" if len(rows) > DISAGREEMENTS_LISTED else ""
        files_declare, were = (f"{len(rows):,} files declare", "were") if len(rows) != 1 else ("1 file declares", "was")
        out += (
            f'<p class="warn" id="declared-but-real">{files_declare} a generator but {were} judged real (the '
            f"verdicts stand: weigh the two):</p><ul>{listed}{more}</ul>"
        )
    return out


def _format_feature(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.6g}"


@dataclass(frozen=True)
class ReportInputs:
    """What a report is made from, besides the table itself."""

    store_name: str
    verdicts: VerdictFile | None = None  # scanner.detect.verdicts.read_verdicts
    top: int = DEFAULT_TOP
    thumbnails: bool = False
    scatter: tuple[str, str] = DEFAULT_SCATTER
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


def build_report(table: FeatureTable, inputs: ReportInputs) -> str:
    """The whole report as one HTML document (a str)."""
    for name in inputs.scatter:
        if name not in table.feature_names:
            raise ReportError(f"unknown feature {name!r} for the scatter; choose from {', '.join(table.feature_names)}")
    status = np.asarray(table.status, dtype=str)
    ok = status == Status.OK
    usable = ok & np.isfinite(table.features).all(axis=1)
    labels = labels_from_paths(table.path)
    verdicts = align_verdicts(inputs.verdicts, table) if inputs.verdicts is not None else None
    classes = classes_of(table, labels, verdicts)
    n = len(table)
    status_counts = counts(status, STATUSES)
    cards = [
        (f"{n:,}", "files in the store"),
        (f"{int(ok.sum()):,}", "measured (status ok)"),
        (f"{n - int(ok.sum()):,}", "could not be judged"),
    ]
    if verdicts is not None:
        cards.append((f"{int((verdicts.verdict == FAKE).sum()):,}", "judged fake"))
    sections = [
        f'<h1>scanner sweep report</h1><p class="sub">{_e(inputs.store_name)} &middot; '
        f"{_e(table.spectrum)} spectrum &middot; made {_e(_now())} by scanner {_e(__version__)}</p>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{v}</b><span>{_e(k)}</span></div>' for v, k in cards)
        + "</div>",
        _status_section(table, status, status_counts, n),
        _verdict_section(verdicts, labels, ok, n),
        _declared_section(table, verdicts),
        _encoding_section(table, classes, ok),
        _histogram_section(table, classes, usable),
        _scatter_section(table, classes, usable, inputs.scatter),
        _suspicious_section(table, inputs, verdicts, labels),
        _metadata_section(table, inputs),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>scanner report: {_e(os.path.basename(inputs.store_name))}</title>"
        f"<style>{_STYLE}</style></head><body><main>\n" + "\n".join(sections) + "\n</main></body></html>\n"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _status_section(table: FeatureTable, status: np.ndarray, status_counts: dict[str, int], n: int) -> str:
    out = "<h2>Files by status</h2>" + _count_table("status-counts", "status", status_counts, n)
    bad = status != Status.OK
    if bad.any():
        errors = np.asarray(table.error, dtype=str)[bad]
        reasons = counts(
            np.char.add(np.char.add(status[bad], ": "), np.where(errors == "", "(no reason recorded)", errors))
        )
        common = sorted(reasons.items(), key=lambda kv: -kv[1])[:10]
        out += (
            '<p class="note">Most common reasons a file could not be judged:</p><table id="reasons">'
            "<thead><tr><th>status: reason</th><th>files</th></tr></thead><tbody>"
            + "".join(f'<tr><td>{_e(k)}</td><td class="n">{v:,}</td></tr>' for k, v in common)
            + "</tbody></table>"
        )
    return out


def _verdict_section(verdicts: AlignedVerdicts | None, labels: np.ndarray, ok: np.ndarray, n: int) -> str:
    out = "<h2>Verdicts</h2>"
    if verdicts is None:
        return out + (
            '<p class="note">No verdicts given. Run <code>scanner classify</code> and pass its CSV '
            "with <code>--verdicts</code> to count verdicts and list the most suspicious files.</p>"
        )
    order = (FAKE, REAL, NO_VERDICT, NOT_CLASSIFIED)
    if any(p.uncalibrated for p in verdicts.provenance):
        out += f'<div class="warn" id="uncalibrated"><b>Warning</b>: {_e(UNCALIBRATED_WARNING)}.</div>'
    out += f'<p class="note">From {_e(verdicts.source)}.</p>'
    out += _count_table("verdict-counts", "verdict", counts(verdicts.verdict, order), n)
    if verdicts.unmatched:
        out += (
            f'<p class="warn">{verdicts.unmatched:,} rows of the verdicts file name files that are not in '
            "this store (a verdicts file from another sweep?); they are left out.</p>"
        )
    labelled = ok & (labels != "")
    if labelled.any():
        cells = counts(
            np.char.add(np.char.add(labels[labelled].astype(str), "|"), verdicts.verdict[labelled].astype(str))
        )
        table_cells = {(k.split("|", 1)[0], k.split("|", 1)[1]): v for k, v in cells.items()}
        columns = [v for v in order if any(c == v for _, c in table_cells)]
        out += (
            '<p class="note">Labels (from the directories real/0_real and fake/1_fake) against verdicts, '
            "for the measured files that have a label:</p>"
            + _cross_table("label-verdict", "label \\ verdict", [REAL, FAKE], columns, table_cells)
        )
        judged = labelled & np.isin(verdicts.verdict, (REAL, FAKE))
        if judged.any():
            right = int((labels[judged] == verdicts.verdict[judged]).sum())
            out += (
                f"<p>Agreement with the labels: <b>{right:,} of {int(judged.sum()):,}</b> "
                f"({100 * right / judged.sum():.1f}%). Check the encoding mix below before trusting it.</p>"
            )
    return out


def _encoding_section(table: FeatureTable, classes: Classes, ok: np.ndarray) -> str:
    out = f"<h2>Encoding per {_e(classes.kind if classes.kind != 'all' else 'class')}</h2>"
    if not ok.any():
        return out + '<p class="note">No measured file.</p>'
    encodings = encoding_of(table)
    mixes = {cls: counts(encodings[ok & (classes.of_row == cls)]) for cls in classes.names}
    everything = counts(encodings[ok])
    shown = sorted(everything, key=lambda k: -everything[k])
    head = "".join(f"<th>{_e(c)}</th>" for c in classes.names)
    body = ""
    for key in shown:
        cells = ""
        for cls in classes.names:
            total = sum(mixes[cls].values())
            v = mixes[cls].get(key, 0)
            share = f'<span class="note">({100 * v / total:.1f}%)</span>'
            cells += f'<td class="n" data-key="{_e(key)}|{_e(cls)}">{v:,} {share}</td>'
        body += f"<tr><td>{_e(key)}</td>{cells}</tr>"
    out += (
        f'<table id="encoding"><thead><tr><th>format, subsampling, JPEG quality</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
    out += _confound_note(classes, mixes)
    return out


def _confound_note(classes: Classes, mixes: dict[str, dict[str, int]]) -> str:
    if REAL not in mixes or FAKE not in mixes:
        return ""
    gap = encoding_gap(mixes[REAL], mixes[FAKE])
    what = "labelled real and fake files" if classes.kind == "label" else "files judged real and fake"
    if gap >= ENCODING_GAP_WARNING:
        return (
            f'<div class="warn" id="confound"><b>The {what} differ in encoding</b>: {100 * gap:.0f}% of them '
            "would have to change encoding for the two mixes to match. JPEG's chroma subsampling and "
            "quantisation make the three colour spectra more alike, so a detector can separate these classes "
            "by recognising the encoder rather than the generator. Compare real and fake files that share one "
            "encoding (for example re-encode both to JPEG at one quality) before trusting any accuracy.</div>"
        )
    return (
        f'<div class="fine" id="confound">The {what} share their encoding mix '
        f"(they differ for {100 * gap:.1f}% of files), so compression is not what separates them.</div>"
    )


def _histogram_section(table: FeatureTable, classes: Classes, usable: np.ndarray) -> str:
    out = f"<h2>Features per {_e(classes.kind if classes.kind != 'all' else 'class')}</h2>"
    if not usable.any():
        return out + '<p class="note">No measured file with finite features.</p>'
    png = histogram_figure(table.features, classes, usable, table.feature_names)
    low, high = HISTOGRAM_RANGE_PERCENTILES
    return out + (
        f'<figure><img id="histograms" alt="Histograms of the six features per {_e(classes.kind)}" '
        f'src="{_data_uri(png)}"><figcaption>Each curve is a share of its class ({HISTOGRAM_BINS} bins; '
        f"values beyond the {low}th and {high}th percentiles are counted in the end bins). Real images "
        "have concurrent channel spectra: low mean/max/min and low iCorr.</figcaption></figure>"
    )


def _scatter_section(table: FeatureTable, classes: Classes, usable: np.ndarray, axes_names: tuple[str, str]) -> str:
    out = f"<h2>{_e(axes_names[0])} against {_e(axes_names[1])}</h2>"
    if not usable.any():
        return out + '<p class="note">No measured file with finite features.</p>'
    png, caption = scatter_figure(table.features, classes, usable, axes_names, table.feature_names)
    return out + (
        f'<figure><img id="scatter" alt="Scatter of {_e(axes_names[0])} against {_e(axes_names[1])}" '
        f'src="{_data_uri(png)}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def most_suspicious(score: np.ndarray, usable: np.ndarray, top: int) -> np.ndarray:
    """Row indices of the `top` highest finite scores among usable rows, highest first."""
    candidates = np.flatnonzero(usable & np.isfinite(score))
    if top <= 0 or not len(candidates):
        return np.zeros(0, dtype=np.int64)
    if len(candidates) > top:
        candidates = candidates[np.argpartition(-score[candidates], top - 1)[:top]]
    return candidates[np.lexsort((candidates, -score[candidates]))]


def _suspicious_section(
    table: FeatureTable, inputs: ReportInputs, verdicts: AlignedVerdicts | None, labels: np.ndarray
) -> str:
    heading = "<h2>The most suspicious files</h2>"
    if verdicts is None:
        return heading + '<p class="note">Give <code>--verdicts</code> to rank files by their score.</p>'
    ok = np.asarray(table.status, dtype=str) == Status.OK
    rows = most_suspicious(verdicts.score, ok, inputs.top)
    if not len(rows):
        return heading + '<p class="note">No scored file.</p>'
    scored = int(np.sum(ok & np.isfinite(verdicts.score)))
    out = f"<h2>The {len(rows)} most suspicious files</h2>" if len(rows) > 1 else "<h2>The most suspicious file</h2>"
    out += f'<p class="note">Of {scored:,} files with a score.</p>' if scored > len(rows) else ""
    m = table.measurement
    extractor = make_extractor(m.feature_set, m.spectrum, m.precision, planner="estimate", use_wisdom=False)
    views, problems = {}, {}
    for i in rows.tolist():
        path = table.path[i]
        try:
            view = spectra_view(
                path, extractor, max_side=SPECTRA_SIDE, max_pixels=inputs.max_pixels, max_bytes=inputs.max_bytes
            )
        except UnusableImage as exc:
            problems[i] = f"spectra not drawn: the file is now {exc.status} ({exc.reason})"
            continue
        views[i] = replace(view, thumbnail=thumbnail(view.thumbnail))
        if _changed_since_scan(path, float(table.mtime[i])):
            problems[i] = "the file changed after the scan: the spectra are of the file as it is now"
    scale = difference_scale(list(views.values())) if views else None
    note = (
        "Thumbnails of the images are shown because --thumbnails was given."
        if inputs.thumbnails
        else "Image thumbnails are not embedded (give --thumbnails to include small downscaled ones)."
    )
    out += (
        f'<p class="note">Ranked by the score in the verdicts file (higher is more likely generated). Spectra '
        f"are computed from the original files now; every difference map shares one colour scale. {note}</p>"
    )
    head = "".join(f"<th>{_e(n)}</th>" for n in SHOWN)
    for rank, i in enumerate(rows.tolist(), start=1):
        size = f"{table.width[i]}x{table.height[i]}" if table.width[i] else "size unknown"
        info = f"{size} {table.format[i] or 'unknown format'}"
        if table.jpeg_subsampling[i]:
            info += f" {table.jpeg_subsampling[i]}"
        if table.jpeg_quality[i]:
            info += f" q~{table.jpeg_quality[i]}"
        values = "".join(f'<td class="n">{_format_feature(v)}</td>' for v in table.features[i][: len(SHOWN)])
        out += (
            f'<div class="suspect" data-rank="{rank}"><h3>{rank}. '
            f'<a href="{_e(file_link(table.path[i]))}">{_e(table.path[i])}</a></h3>'
            f"<table><thead><tr><th>score</th><th>verdict</th><th>label</th><th>image</th><th>sha256</th><th>declared</th>{head}"
            f'</tr></thead><tbody><tr><td class="n">{verdicts.score[i]:+.4f}</td><td>{_e(verdicts.verdict[i])}</td>'
            f"<td>{_e(labels[i] or '-')}</td><td>{_e(info)}</td>{sha256_cell(str(table.sha256[i]))}"
            f"{declared_cell(str(table.declared[i]))}{values}</tr>"
            "</tbody></table>"
        )
        if i in problems:
            out += f'<p class="warn">{_e(problems[i])}</p>'
        if i in views:
            fig = spectrum_figure(
                [views[i]],
                show_image=inputs.thumbnails,
                show_text=False,
                show_path=False,
                panel_inches=1.3,
                difference_range=scale,
            )
            strip = figure_bytes(fig, "jpg", dpi=100, quality=SPECTRA_JPEG_QUALITY)
            out += f'<img alt="spectra of {_e(table.path[i])}" src="{_data_uri(strip, "image/jpeg")}">'
        out += "</div>"
    return out


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A thumbnail of at most THUMBNAIL_SIDE px that is always at least halved: never the image's own pixels."""
    side = max(1, min(THUMBNAIL_SIDE, max(image.shape[:2]) // 2))
    return block_mean(image, side).round().astype(np.uint8)


def _changed_since_scan(path: str, stored_mtime: float) -> bool:
    try:
        return stored_mtime > 0 and os.stat(path).st_mtime != stored_mtime
    except OSError:
        return False


def _metadata_section(table: FeatureTable, inputs: ReportInputs) -> str:
    rows = [("store", inputs.store_name), ("rows", f"{len(table):,}"), ("spectrum", table.spectrum)]
    rows += [(k, v) for k, v in sorted(table.attrs.items()) if k != "spectrum"]
    if inputs.verdicts is not None:
        rows.append(("verdicts file", inputs.verdicts.source))
        made_by = inputs.verdicts.provenance
        if not made_by:
            rows.append(("verdicts' model", "not recorded in the verdicts file (written by an older scanner)"))
        for n, provenance in enumerate(made_by, start=1):
            which = f" ({n} of {len(made_by)})" if len(made_by) > 1 else ""
            rows += [(f"verdicts' {name}{which}", value) for name, value in provenance.rows()]
    rows.append(("report made", f"{_now()} by scanner {__version__}"))
    body = "".join(f'<tr><th>{_e(k)}</th><td class="path">{_e(_attr_text(v))}</td></tr>' for k, v in rows)
    return f'<h2>Run</h2><table id="metadata"><tbody>{body}</tbody></table>'


def _attr_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) if v != "" else "(paths as given)" for v in value)
    return str(value)


def write_report(text: str, path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str] | None] = ()) -> None:
    """Write the report (`-`: standard output), whole or not at all and never over one of `inputs`."""
    with output_file(path, inputs=inputs) as handle:
        handle.write(text)
