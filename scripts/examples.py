"""The bundled examples: how they were made from the shared `ffhq-stylegan-1024` set, and what the README's
main job can be expected to show on them.

    python scripts/examples.py write [--faces DIR] [--out examples]
    python scripts/examples.py splits [--faces DIR] [--draws 200]

`write` makes examples/ from the set: the generated faces are copied unchanged (progressive JPEG,
quality 100, 4:4:4, as the set has them), and each real photograph (lossless PNG in the set) goes
through that same JPEG step once (OpenCV, quality 100, 4:4:4, progressive), so that both classes share
one encoding history and no detector can tell them apart by their encoder. Persons 1-4 and 51-54 are
judged (examples/real, examples/fake); 5-8 and 55-58 calibrate (examples/calibration): the set's order,
not picked for the result.

`splits` measures the 24 images of the set made the same way, and draws random splits into four (and
eight) of each class to calibrate on and the rest to judge, with the detector the main job uses (the
extended set, standardised logistic regression) and with the paper's SVM on its six features; also
with both classes re-encoded at JPEG quality 90, 4:2:0, as much of the web is. It prints the mean
accuracy on the judged images and its 10th and 90th percentiles: the figures the README quotes.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from scanner.detect.fit import fit_classifier
from scanner.features.extract import make_extractor

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "ffhq-stylegan-1024"
ROOT = Path(__file__).resolve().parents[1]
SAME_STEP = [
    cv2.IMWRITE_JPEG_QUALITY,
    100,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    cv2.IMWRITE_JPEG_PROGRESSIVE,
    1,
]
WEB_STEP = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
JUDGED, CALIBRATION = range(1, 5), range(5, 9)  # real person k pairs with generated person 50 + k


def real_as_jpeg(source: Path) -> bytes:
    """A real photograph through the generated faces' one JPEG step."""
    image = cv2.imread(str(source), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise SystemExit(f"cannot decode {source}")
    ok, encoded = cv2.imencode(".jpg", image, SAME_STEP)
    if not ok:
        raise SystemExit(f"cannot encode {source}")
    return encoded.tobytes()


def write(faces: Path, out: Path) -> None:
    for folder, persons in (("", JUDGED), ("calibration/", CALIBRATION)):
        for k in persons:
            real = out / f"{folder}real" / f"person{k}.jpg"
            fake = out / f"{folder}fake" / f"person{50 + k}.jpg"
            real.parent.mkdir(parents=True, exist_ok=True)
            fake.parent.mkdir(parents=True, exist_ok=True)
            real.write_bytes(real_as_jpeg(faces / "real" / f"person{k}.png"))
            shutil.copyfile(faces / "fake" / f"person{50 + k}.jpg", fake)
            print(real.relative_to(out), fake.relative_to(out))


def web(image: np.ndarray) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", image, WEB_STEP)
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def splits(faces: Path, draws: int) -> None:
    encoded = [real_as_jpeg(faces / "real" / f"person{k}.png") for k in range(1, 13)]
    reals = [cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) for data in encoded]
    as_found = [cv2.imread(str(faces / "real" / f"person{k}.png")) for k in range(1, 13)]
    fakes = [cv2.imread(str(faces / "fake" / f"person{50 + k}.jpg")) for k in range(1, 13)]
    is_fake = np.array([False] * 12 + [True] * 12)
    versions: dict[str, tuple[list[np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
        "as found (real PNG, fake JPEG)": (as_found, lambda image: image),
        "one shared step (the examples)": (reals, lambda image: image),
        "then both JPEG q90 4:2:0": (reals, web),
    }
    detectors = {"extended, logistic": ("extended", "logistic", True), "paper's six, SVM": ("paper", "svm", False)}
    for version, (real, encode) in versions.items():
        for detector, (feature_set, method, standardise) in detectors.items():
            extractor = make_extractor(feature_set, planner="estimate")
            x = np.array([extractor.from_bgr(encode(image)) for image in real + fakes])
            for per_class in (4, 8):
                rng = np.random.default_rng(0)
                accuracies = []
                for _ in range(draws):
                    train = np.r_[rng.permutation(12)[:per_class], 12 + rng.permutation(12)[:per_class]]
                    judged = np.setdiff1d(np.arange(24), train)
                    fitted = fit_classifier(x[train], is_fake[train], method=method, standardise=standardise)
                    accuracies.append(float(np.mean((fitted.score(x[judged]) > 0) == is_fake[judged])))
                low, high = np.percentile(accuracies, [10, 90])
                print(
                    f"{version:32s} {detector:20s} {per_class} of each to calibrate: mean accuracy "
                    f"{np.mean(accuracies):.2f} (10th-90th percentile {low:.2f}-{high:.2f}, {draws} draws)",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["write", "splits"])
    parser.add_argument("--faces", type=Path, default=FACES)
    parser.add_argument("--out", type=Path, default=ROOT / "examples")
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    if args.what == "write":
        write(args.faces, args.out)
    else:
        splits(args.faces, args.draws)


if __name__ == "__main__":
    main()
