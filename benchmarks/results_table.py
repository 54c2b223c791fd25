"""Turn `scanner bench --json` reports (one per line) into the Markdown page bench.sh writes.

Run:  .venv/bin/python benchmarks/results_table.py REPORTS.jsonl > benchmarks/results/PAGE.md

Prints the machine description (from the first report), one table row per configuration
(throughput of every stage, the target ratios, worker scaling, peak memory), the per-piece
breakdown of the feature step, and every target with its verdict and what holds it back (judged
again from the figures by benchmarks/harness.py's rules, so an older run's reports read by today's).
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import UTC, datetime


def cell(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def label(config: dict) -> str:
    return f"{config['size']}² {config['format'].upper()} {config['spectrum']}"


def page(reports: list[dict], command: str) -> str:
    machine = reports[0]["machine"]
    lines = [
        f"# scanner bench: {machine['host']}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Reproduce with `{command}`. Every figure in a row comes from the same run "
        "(median of the timed passes after a warm-up).",
        "",
        "| machine | |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in machine.items()]
    workers = max(r["config"]["workers"] for r in reports)
    lines += [
        "",
        "## Throughput (images/s) and ratios",
        "",
        "| images | n | decode | decode + FFT | decode + features | authors | feat / (dec+FFT) "
        "| step / FFT | authors / ours | features 1 proc | features "
        f"{workers} procs | scan 1 worker (steady) | scan {workers} workers (steady) | scan tree peak PSS MB |",
        "|---|" + "---:|" * 13,
    ]
    for r in reports:
        s, ratios = r["stages"], r["ratios"]
        pool = {p["name"]: p["images_per_s"] for p in r["scaling"]}
        scan = {run["workers"]: run for run in r["scan"] if run["seconds"]}

        def scan_cell(n: int, scan: dict = scan) -> str:
            run = scan.get(n)
            return f"{cell(run['images_per_s'])} ({cell(run['steady_images_per_s'])})" if run else "-"

        lines.append(
            f"| {label(r['config'])} | {r['config']['images']} | {cell(s['decode']['images_per_s'])} "
            f"| {cell(s['decode_fft']['images_per_s'])} | {cell(s['features']['images_per_s'])} "
            f"| {cell(s['authors']['images_per_s'], '.1f')} | {cell(ratios['features_over_decode_fft'], '.2f')} "
            f"| {cell(ratios['feature_step_over_fft'], '.2f')} | {cell(ratios['authors_over_features'], '.1f')} "
            f"| {cell(pool.get('features_x1'))} | {cell(pool.get(f'features_x{workers}'))} "
            f"| {scan_cell(1)} | {scan_cell(workers)} | {cell(r['memory']['scan_tree_peak_pss_mb'])} |"
        )
    pieces = list(reports[0]["breakdown_ms"])
    lines += [
        "",
        "## The feature step after decode, ms/image",
        "",
        "| images | " + " | ".join(pieces) + " | whole (from_bgr) | authors' numpy step |",
        "|---|" + "---:|" * (len(pieces) + 2),
    ]
    for r in reports:
        lines.append(
            f"| {label(r['config'])} | "
            + " | ".join(cell(r["breakdown_ms"][p], ".3f") for p in pieces)
            + f" | {cell(r['extract_ms'], '.3f')} | {cell(r['authors_step_ms'], '.2f')} |"
        )
    lines += [
        "",
        "## Targets (log mode)",
        "",
        "| images | target | value | goal | verdict | held back by |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in reports:
        for t in r["targets"]:
            verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
            lines.append(
                f"| {label(r['config'])} | {t['target']} | {cell(t['value'], '.2f')} | {t['goal']:g} "
                f"| {verdict} | {t['held_back_by']} |"
            )
    notes = sorted({run["error"] for r in reports for run in r["scan"] if run["error"]})
    if notes:
        lines += ["", "Notes: " + "; ".join(notes)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", help="a file of `scanner bench --json` lines")
    parser.add_argument("--command", default="./bench.sh", help="the command to show for reproducing")
    args = parser.parse_args()
    with open(args.reports) as handle:
        reports = [json.loads(line) for line in handle if line.strip()]
    if not reports:
        raise SystemExit(f"no reports in {args.reports}")
    from harness import judge_targets  # beside this file: the targets as they stand today

    for report in reports:
        report["targets"] = judge_targets(report)
    print(page(reports, args.command), end="")


if __name__ == "__main__":
    main()
