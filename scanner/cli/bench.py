"""`scanner bench`: how fast this machine measures images."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from scanner.cli import options
from scanner.cli.base import command
from scanner.cli.text import chatter, say
from scanner.core.constants import DEFAULT_PRECISION, DEFAULT_SPECTRUM
from scanner.core.errors import InputError
from scanner.core.featuresets import DEFAULT_FEATURE_SET
from scanner.features.backends.base import DEFAULT_BACKEND, STEADY_PLANNER


@command("bench", "This machine")
def bench(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Images to time (default: a generated set, removed afterwards).",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", min=8, help="Side of the generated images, px.")] = 256,
    image_format: Annotated[
        Literal["jpeg", "png"], typer.Option("--format", help="Format of the generated images.")
    ] = "jpeg",
    images: Annotated[
        int | None,
        typer.Option(
            "--images", min=2, help="How many images (default: about 32 megapixels' worth).", show_default=False
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Most processes for the scaling runs (default: the usable cores).",
            show_default=False,
        ),
    ] = None,
    spectrum: options.Spectrum = DEFAULT_SPECTRUM,
    feature_set: options.FeatureSet = DEFAULT_FEATURE_SET,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed passes per stage (the median is reported).")
    ] = 3,
    planner: options.Planner = STEADY_PLANNER,
    precision: options.Precision = DEFAULT_PRECISION,
    fft: options.FFT = DEFAULT_BACKEND,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with every figure instead of text.")] = False,
) -> None:
    """Time decoding, measuring and scanning on this machine, with 1 to N workers, in one run.

    With --feature-set extended, the paper's set is timed too, in the same rounds, and the report says what the
    wider set costs per image.
    """
    from scanner.bench.text import format_report
    from scanner.bench.timing import run_bench

    def progress(message: str) -> None:
        if sys.stderr.isatty():
            chatter(f"bench: {message}...", err=True)

    try:
        report = run_bench(
            directory,
            size,
            image_format,
            images,
            workers,
            spectrum,
            repeats,
            planner,
            progress=progress,
            precision=precision,
            fft=fft,
            feature_set=feature_set,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    say(json.dumps(report.to_dict()) if as_json else format_report(report))
