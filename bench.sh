#!/usr/bin/env bash
# The standard benchmark matrix: 256x256 and 1024x1024, JPEG and PNG, log and modulus,
# each timed with 1 and all usable cores (benchmarks/harness.py), then the cost of each feature set
# (benchmarks/feature_sets.py), written as a
# Markdown page under benchmarks/results/ named by date and host, with the machine described.
#
#   ./bench.sh                  # the whole matrix (about 20 minutes on 2 cores)
#   REPEATS=5 ./bench.sh        # more timed passes per stage
#   PYTHON=/path/to/python ./bench.sh
#
# Run it on a quiet machine: every figure of a row is measured in the same run, but other
# load on the cores still moves all of them.
set -euo pipefail
cd "$(dirname "$0")"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
REPEATS=${REPEATS:-3}
WORKERS=$("$PYTHON" -c 'from scanner.bench.machine import usable_cores; print(usable_cores())')

mkdir -p benchmarks/results
page="benchmarks/results/$(date -u +%Y-%m-%d)-$(hostname -s).md"
reports=$(mktemp "benchmarks/results/reports.XXXXXX.tmp")
trap 'rm -f "$reports"' EXIT

for size in 256 1024; do
    for format in jpeg png; do
        for spectrum in log modulus; do
            echo "bench.sh: ${size}x${size} ${format} ${spectrum}, 1..${WORKERS} workers" >&2
            "$PYTHON" benchmarks/harness.py --size "$size" --format "$format" --spectrum "$spectrum" \
                --workers "$WORKERS" --repeats "$REPEATS" --json >>"$reports"
        done
    done
done

"$PYTHON" benchmarks/results_table.py "$reports" --command "./bench.sh (REPEATS=$REPEATS)" >"$page"
echo "bench.sh: the feature sets' costs" >&2
"$PYTHON" benchmarks/feature_sets.py --sizes 256,1024 --repeats "$REPEATS" --markdown >>"$page"
echo "bench.sh: wrote $page" >&2
