"""A bench report in a user's words."""

from __future__ import annotations

from typing import Any

from scanner.bench.files import JPEG_QUALITY
from scanner.bench.stages import HASH_STAGE, PAPER_STAGE
from scanner.bench.timing import BenchReport
from scanner.core.constants import DEFAULT_PRECISION, PRECISIONS
from scanner.core.featuresets import DEFAULT_FEATURE_SET
from scanner.core.words import plural


def source_text(config: dict[str, Any]) -> str:
    if config["directory"]:
        return f"{config['images']} images from {config['directory']}"
    quality = f" (quality {JPEG_QUALITY})" if config["format"] == "jpeg" else ""
    return f"{config['images']} generated {config['size']}x{config['size']} {config['format'].upper()} images{quality}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _rate(images_per_s: float | None) -> str:
    """A rate as a user reads it, right-aligned: '4,481 images/s', '3.5 images/s', '2.5 s per image'."""
    from scanner.run.progress import format_rate

    return f"{format_rate(images_per_s or 0.0):>18}"


def format_report(report: BenchReport) -> str:
    """The report in a user's words: images per second per stage, scaling, memory, what a million would take."""
    c, m = report.config, report.machine
    feature_set = c.get("feature_set", DEFAULT_FEATURE_SET)
    lines = [
        f"scanner bench: {source_text(c)}, {feature_set} features, {c['spectrum']} spectrum; "
        f"median of {plural(c['repeats'], 'timed pass', 'timed passes')}",
        f"this machine: {m['cpu']}, {m['cores']} cores, {m['memory']} memory",
        "",
    ]
    lines.append("one core, one image after another:")
    precision = c.get("precision", DEFAULT_PRECISION)
    labels = {"decode": "read and decode", "features": f"read, decode, measure ({precision})"}
    if HASH_STAGE in report.stages:  # reports of scanners before file hashes lack it
        labels = {"decode": labels["decode"], HASH_STAGE: "SHA-256 of the bytes read", "features": labels["features"]}
    labels.update(
        {
            name: f"the same in {name.split('_', 1)[1]} precision"
            for name in report.stages
            if name.removeprefix("features_") in PRECISIONS
        }
    )
    base_ms = report.stages["features"].ms_per_image
    for name, label in labels.items():
        stage = report.stages[name]
        relative = (
            f", {stage.ms_per_image / base_ms:.2f} times as long"
            if name.removeprefix("features_") in PRECISIONS and stage.ms_per_image and base_ms
            else ""
        )
        decode_ms = report.stages["decode"].ms_per_image
        if name == HASH_STAGE and stage.ms_per_image is not None and decode_ms:
            relative = f", {stage.ms_per_image / decode_ms:.1%} of read and decode"
        each = f"  ({stage.ms_per_image:.2f} ms an image{relative})" if stage.ms_per_image else ""
        lines.append(f"  {label:<30}{_rate(stage.images_per_s)}{each}")
    paper = report.stages.get(PAPER_STAGE)
    if paper is not None:
        ours = report.stages["features"]
        ratio = ours.seconds / paper.seconds if ours.seconds and paper.seconds else None
        ratio_words = f"; the {feature_set} set costs {ratio:.2f}x" if ratio else ""
        each = f"{paper.ms_per_image:.2f} ms an image" if paper.ms_per_image else "-"
        lines.append(f"  {'... with the paper set':<30}{_rate(paper.images_per_s)}  ({each}{ratio_words})")
    libraries = report.extra.get("fft_libraries")
    if libraries:
        height, width = report.extra["fft_shape"]
        lines += ["", f"FFT libraries, one transform of the three channels of a {width}x{height} image:"]
        best = min(entry["ms"] for entry in libraries)
        for name in dict.fromkeys(entry["library"] for entry in libraries):
            cells = "   ".join(f"{e['precision']} {e['ms']:8.3f} ms" for e in libraries if e["library"] == name)
            mark = "   (fastest)" if any(e["ms"] == best for e in libraries if e["library"] == name) else ""
            chosen = " *" if name == c.get("fft") else "  "
            lines.append(f"  {name:<8}{chosen} {cells}{mark}")
        lines.append("  (* the library this run measured with; --fft chooses another)")
    lines += ["", "measuring in parallel (no store, no walk):"]
    base = report.scaling[0].images_per_s if report.scaling else None
    for k, stage in enumerate(report.scaling):
        speedup = stage.images_per_s / base if stage.images_per_s and base else None
        times = f"  ({speedup:.1f} times {report.scaling[0].note})" if k and speedup else ""
        lines.append(f"  {stage.note:<28}{_rate(stage.images_per_s)}{times}")
    best = None
    alone = {int(stage.name.removeprefix("features_x")): stage.images_per_s for stage in report.scaling}
    if report.scan:
        lines += ["", "scanner scan into a store, once running (its start-up left out):"]
        for run in report.scan:
            label = plural(run.workers, "worker")
            if run.error:
                lines.append(f"  {label:<28}not measured: {run.error}")
            elif not run.steady_images_per_s:
                lines.append(
                    f"  {label:<28}not measured: too few images to tell the rate from start-up (give --images 2000)"
                )
            else:
                notes = []
                measuring = alone.get(run.workers)
                if measuring:
                    processes = plural(run.workers, "process", "processes")
                    notes.append(f"{run.steady_images_per_s / measuring:.2f} of {processes} measuring alone")
                if run.overhead_seconds:
                    notes.append(f"start-up and shut-down {run.overhead_seconds:.1f} s")
                said = f"  ({'; '.join(notes)})" if notes else ""
                lines.append(f"  {label:<28}{_rate(run.steady_images_per_s)}{said}")
                best = max(best or 0.0, run.steady_images_per_s)
    pss = report.memory.get("scan_tree_peak_pss_mb")
    if pss:
        lines += ["", f"peak memory of a scan: {pss:,.0f} MB for all its processes (shared pages counted once)"]
    if best:
        lines += ["", f"at that rate a million such images take about {_duration(1e6 / best)}."]
    return "\n".join(lines)
