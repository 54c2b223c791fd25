"""Options shared by several commands, declared once (types and defaults from the library's constants)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from scanner.core.constants import DEFAULT_PRECISION, SpectrumMode
from scanner.core.constants import Precision as PrecisionName
from scanner.core.featuresets import FeatureSetName
from scanner.features.backends.base import BackendName, PlannerEffort

MEASURING = "How images are measured"  # a help panel of its own: rarely changed, and it keeps columns narrow
FITTING = "Model fitting"

Spectrum = Annotated[
    SpectrumMode,
    typer.Option(
        "--spectrum",
        help="log: the authors' released pipeline (default); modulus: eq. 5 literally.",
        rich_help_panel=MEASURING,
    ),
]
FeatureSet = Annotated[
    FeatureSetName,
    typer.Option(
        "--feature-set",
        help="paper: the paper's six features; extended: those six and 63 more statistics of the same "
        "transform that survive JPEG; residual: the extended 69 and 62 of the median residual's Welch spectra "
        "(docs/method.md).",
        rich_help_panel=MEASURING,
    ),
]
Canonical = Annotated[
    bool,
    typer.Option(
        "--canonical/--no-canonical",
        help="Re-encode each image as JPEG quality 90, 4:2:0, in memory, before measuring, so that every image "
        "has the same last encoder (the files are never changed; docs/detectors.md says when it helps).",
        rich_help_panel=MEASURING,
    ),
]
# A scan resumes a store as its rows were measured unless told otherwise: these default to None.
ResumableSpectrum = Annotated[
    SpectrumMode | None,
    typer.Option(
        "--spectrum",
        help="log: the authors' released pipeline; modulus: eq. 5 literally (default: the store's, else log).",
        show_default=False,
        rich_help_panel=MEASURING,
    ),
]
ResumableFeatureSet = Annotated[
    FeatureSetName | None,
    typer.Option(
        "--feature-set",
        help="paper: the paper's six features; extended: those six and 63 more statistics of the same "
        "transform that survive JPEG; residual: the extended 69 and 62 of the median residual's Welch spectra "
        "(docs/method.md; default: the store's, else paper).",
        show_default=False,
        rich_help_panel=MEASURING,
    ),
]
ImagesFeatureSet = Annotated[
    FeatureSetName | None,
    typer.Option(
        "--feature-set",
        help="How the images given are measured: paper (the six), extended or residual (docs/method.md; "
        "default: as the first store's rows were, else paper). Stores keep theirs; every input must end up "
        "with one set.",
        show_default=False,
        rich_help_panel=MEASURING,
    ),
]
ResumableCanonical = Annotated[
    bool | None,
    typer.Option(
        "--canonical/--no-canonical",
        help="Re-encode each image as JPEG quality 90, 4:2:0, in memory, before measuring (the files are never "
        "changed; docs/detectors.md says when it helps; default: as the store's rows were, else no).",
        show_default=False,
        rich_help_panel=MEASURING,
    ),
]
Precision = Annotated[
    PrecisionName,
    typer.Option(
        "--precision", help="The transform's floating-point precision (docs/method.md).", rich_help_panel=MEASURING
    ),
]
ResumablePrecision = Annotated[
    PrecisionName | None,
    typer.Option(
        "--precision",
        help=f"The FFT's floating-point precision (default: the store's, else {DEFAULT_PRECISION}).",
        show_default=False,
        rich_help_panel=MEASURING,
    ),
]
FFT = Annotated[
    BackendName,
    typer.Option(
        "--fft",
        metavar="LIBRARY",
        help="The FFT library: fftw, numpy, scipy or mkl (the last two need their packages).",
        rich_help_panel=MEASURING,
    ),
]
Planner = Annotated[
    PlannerEffort,
    typer.Option(
        "--planner",
        metavar="EFFORT",
        help="FFTW planning: auto (estimate a new image size, measure it once it recurs), estimate, measure, "
        "patient or exhaustive; measured plans are cached per machine.",
        rich_help_panel=MEASURING,
    ),
]
MaxPixels = Annotated[
    int, typer.Option("--max-pixels", min=1, help="Refuse images larger than this (decompression bombs).")
]
MaxBytes = Annotated[
    int,
    typer.Option(
        "--max-bytes", min=1, metavar="N", help="Refuse files larger than this many bytes, before reading them."
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random step (mixture start, subsampling, splits).")]
Labels = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        help="CSV with columns path,label (real/fake or 0/1), used instead of labels from the paths "
        "(a directory named real, 0_real, fake or 1_fake).",
        metavar="CSV",
        show_default=False,
    ),
]
ModelOut = Annotated[
    Path, typer.Option("--out", "-o", help="Model file to write (.h5).", metavar="MODEL.h5", show_default=False)
]
StoreArgument = Annotated[
    Path,
    typer.Argument(help="A feature store written by `scanner scan`.", metavar="FEATURES.h5", show_default=False),
]
StoresArgument = Annotated[
    list[Path],
    typer.Argument(help="Feature stores (.h5) written by scanner scan.", metavar="FEATURES.h5...", show_default=False),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit with code 1 when some files could not be used (by default a finished run exits 0 "
        "and reports each such file).",
    ),
]
C = Annotated[
    float,
    typer.Option(
        "--C",
        help="Regularisation of the SVM and the logistic regression (the paper: scikit-learn's 1).",
        rich_help_panel=FITTING,
    ),
]
Gamma = Annotated[
    str,
    typer.Option(
        "--gamma",
        help="RBF gamma: scale (1 / (F var X) for F features, the paper's), auto (1/F) or a number.",
        rich_help_panel=FITTING,
    ),
]
ClassWeight = Annotated[
    Literal["none", "balanced"],
    typer.Option("--class-weight", help="balanced: weigh classes inversely to their counts.", rich_help_panel=FITTING),
]
RealAnchor = Annotated[
    list[Path] | None,
    typer.Option(
        "--real-anchor",
        help="A known-real image or a directory of them (repeatable): the mixture component whose share "
        "among them most exceeds its share among all rows is called real, instead of the paper's rule.",
        metavar="PATH",
        show_default=False,
    ),
]
