"""The detection goals of EVALUATION.md, measured again through the command line: `scanner train` and
`scanner classify`, as a user runs them, on the same 10 stratified half splits.

    python scripts/cli_goals.py --keep DIR [--feature-set residual] [--out cli-goals.md]

DIR holds the feature stores of an earlier `python scripts/evaluation.py --keep DIR` (they are measured
there when missing). For each set and version, each split writes the training half's labels to a CSV,
runs `scanner train STORE --labels CSV --out MODEL` (the feature set's default detector) and
`scanner classify STORE --model MODEL --out VERDICTS.csv`, and scores the verdicts of the other half
against the folders' labels. The splits are evaluation.py's, so the means can be set beside its table.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from evaluation import QUALITIES, SPLITS, _split, _versions
from face_sets import FACES, SETS, build_stores

from scanner.core.featuresets import RESIDUAL
from scanner.detect.samples import Samples, samples_of
from scanner.store.hdf5 import read_features

SCANNER = [sys.executable, "-m", "scanner"]


def _run(*args: str) -> None:
    done = subprocess.run([*SCANNER, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"scanner {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")


def split_accuracy(store: Path, samples: Samples, seed: int, work: Path) -> float:
    """Train on the training half of split `seed` through the CLI; the verdicts' accuracy on the other half."""
    paths, is_fake = [str(p) for p in samples.paths], samples.is_fake
    train, test = _split(samples, seed)
    labels = work / f"labels-{seed}.csv"
    with open(labels, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows([paths[i], "fake" if is_fake[i] else "real"] for i in train)
    model, verdicts = work / f"model-{seed}.h5", work / f"verdicts-{seed}.csv"
    _run("train", str(store), "--labels", str(labels), "--out", str(model), "--quiet")
    _run("classify", str(store), "--model", str(model), "--out", str(verdicts), "--quiet")
    with open(verdicts, newline="", encoding="utf-8") as handle:
        verdict = {row["path"]: row["verdict"] for row in csv.DictReader(handle)}
    right = [verdict[paths[i]] == ("fake" if is_fake[i] else "real") for i in test]
    return float(np.mean(right))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, required=True, help="the stores of scripts/evaluation.py --keep")
    parser.add_argument("--faces", type=Path, default=FACES)
    parser.add_argument("--out", type=Path, help="write the table here too (Markdown)")
    args = parser.parse_args(argv)
    stores = build_stores(args.keep, args.faces, feature_set=RESIDUAL.name, qualities=QUALITIES)
    lines = [
        f"| set | version | {RESIDUAL.width}, `scanner train` + `classify`, mean of {SPLITS} splits | per split |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="scanner-cli-goals-") as work:
        for name in SETS:
            for label, version in _versions(name):
                store = stores[version][name]
                samples = samples_of([read_features(store)])
                scores = [split_accuracy(store, samples, seed, Path(work)) for seed in range(SPLITS)]
                line = f"| {name} | {label} | {np.mean(scores):.3f} | {' '.join(f'{s:.3f}' for s in scores)} |"
                print(line, flush=True)
                lines.append(line)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
