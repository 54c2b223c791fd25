"""The `scanner` command line: a thin typer layer over the library.

Exit codes (every command):
  0  done, every file usable
  1  done, but some files could not be used (each is reported with a reason)
  2  usage error (bad option or argument)
  3  fatal error (for example an output that cannot be written)
"""

from __future__ import annotations

import json
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from scanner import __version__
from scanner.decode import DEFAULT_MAX_PIXELS
from scanner.features import FEATURE_NAMES, FeatureExtractor, FileFeatures, features_of_file
from scanner.spectrum import PLANNER_EFFORTS

EXIT_OK = 0
EXIT_SOME_UNUSABLE = 1
EXIT_USAGE = 2
EXIT_FATAL = 3

app = typer.Typer(
    name="scanner",
    help="Find GAN-generated face images by the asynchrony of their colour spectra (Le & Woo, 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Spectrum(str, Enum):
    log = "log"
    modulus = "modulus"


Planner = Enum("Planner", {name: name for name in PLANNER_EFFORTS}, type=str)

SpectrumOption = Annotated[
    Spectrum,
    typer.Option("--spectrum", help="log: the authors' released pipeline (default); modulus: eq. 5 literally."),
]
PlannerOption = Annotated[
    Planner,
    typer.Option("--planner", help="FFTW planner effort; plans and wisdom are cached per machine."),
]
MaxPixelsOption = Annotated[
    int, typer.Option("--max-pixels", min=1, help="Refuse images larger than this (decompression bombs).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scanner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Find GAN-generated face images by the asynchrony of their colour spectra (Le & Woo, 2021)."""


def _json_number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _feature_record(result: FileFeatures) -> dict:
    record = {
        "path": result.path,
        "status": result.status,
        "error": result.error or None,
        "height": result.info.height,
        "width": result.info.width,
    }
    values = result.features if result.features is not None else [math.nan] * len(FEATURE_NAMES)
    record.update({name: _json_number(v) for name, v in zip(FEATURE_NAMES, values)})
    return record


def _feature_row(result: FileFeatures, width: int) -> str:
    size = f"{result.info.width}x{result.info.height}" if result.info.width else "-"
    head = f"{result.path:<{width}}  {result.status:<10}  {size:>9}"
    if result.features is None:
        return f"{head}  {result.error}"
    return head + "".join(f"  {v:>9.6f}" for v in result.features)


# --- features ---------------------------------------------------------------


@app.command()
def features(
    images: Annotated[list[Path], typer.Argument(help="Image files to measure.", show_default=False)],
    spectrum: SpectrumOption = Spectrum.log,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
    planner: PlannerOption = Planner.measure,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
) -> None:
    """Print the six features of a few images: a quick look before a sweep."""
    extractor = FeatureExtractor(spectrum.value, planner=planner.value)
    width = max(len(str(p)) for p in images)
    if not as_json:
        typer.echo(f"{'path':<{width}}  {'status':<10}  {'size':>9}" + "".join(f"  {n:>9}" for n in FEATURE_NAMES))
    unusable = 0
    for path in images:
        result = features_of_file(path, extractor, max_pixels)
        unusable += result.status != "ok"
        if as_json:
            typer.echo(json.dumps(_feature_record(result)))
        else:
            typer.echo(_feature_row(result, width))
    raise typer.Exit(EXIT_SOME_UNUSABLE if unusable else EXIT_OK)


# --- scan, export, info -----------------------------------------------------


# --- train, classify, adapt, evaluate ---------------------------------------


# --- spectrum, report --------------------------------------------------------


# --- bench -------------------------------------------------------------------


class ImageFormat(str, Enum):
    jpeg = "jpeg"
    png = "png"


@app.command()
def bench(
    directory: Annotated[
        Optional[Path],
        typer.Argument(help="Images to time (default: a generated set, removed afterwards).",
                       exists=True, file_okay=False, show_default=False),
    ] = None,
    size: Annotated[int, typer.Option("--size", min=8, help="Side of the generated images, px.")] = 256,
    image_format: Annotated[ImageFormat, typer.Option("--format", help="Format of the generated images.")] = ImageFormat.jpeg,
    images: Annotated[
        Optional[int], typer.Option("--images", min=2, help="How many images [default: about 64 megapixels' worth].",
                                    show_default=False)
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option("--workers", min=1, help="Most processes for the scaling runs [default: usable cores].",
                                    show_default=False)
    ] = None,
    spectrum: SpectrumOption = Spectrum.log,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed passes per stage (the median is reported).")] = 3,
    planner: PlannerOption = Planner.measure,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with every figure instead of text.")] = False,
) -> None:
    """Time decode, FFT, features, scan and the authors' pipeline side by side, in one run."""
    from scanner.bench import format_report, run_bench

    def progress(message: str) -> None:
        if sys.stderr.isatty():
            typer.echo(f"bench: {message}...", err=True)

    try:
        report = run_bench(directory, size, image_format.value, images, workers, spectrum.value, repeats,
                           planner.value, progress=progress)
    except ValueError as exc:
        typer.echo(f"scanner bench: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(json.dumps(report.to_dict()) if as_json else format_report(report))


def main() -> None:
    """Entry point of the `scanner` console script."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
