"""`scanner spectrum` and `scanner report`: pictures of why files look generated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from scanner.cli import options
from scanner.cli.base import command
from scanner.cli.text import chatter, say
from scanner.core.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, DEFAULT_SPECTRUM, ExitCode
from scanner.core.errors import InputError
from scanner.features.backends.base import DEFAULT_PLANNER
from scanner.images.limits import use_pixel_cap

DEFAULT_DPI = 120  # scanner.report.figures.DEFAULT_DPI, repeated here so that --help imports no matplotlib


@command("spectrum", "Look")
def spectrum(
    images: Annotated[
        list[Path], typer.Argument(help="Image files to draw, one row each.", metavar="IMAGE...", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Figure to write ('-': stdout): .jpg, .png, .webp, .svg or .pdf.",
            metavar="FIG.jpg",
            show_default=False,
        ),
    ],
    spectrum: options.Spectrum = DEFAULT_SPECTRUM,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Show this model's verdict and score for each image.",
            metavar="MODEL.h5",
            show_default=False,
        ),
    ] = None,
    verdict: Annotated[
        bool, typer.Option("--verdict", help="Show the verdict of the bundled default model (implied by --model).")
    ] = False,
    dpi: Annotated[
        int, typer.Option("--dpi", min=20, max=600, metavar="N", help="Resolution of a picture format, dots per inch.")
    ] = DEFAULT_DPI,
    figure_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            show_default=False,
            help="jpg, png, webp, svg or pdf (default: from --out's extension; jpg for '-').",
        ),
    ] = None,
    planner: options.Planner = DEFAULT_PLANNER,
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
    max_bytes: options.MaxBytes = DEFAULT_MAX_BYTES,
    strict: options.Strict = False,
) -> None:
    """Draw each image's channel spectra, their stacked view and differences (the paper's Figure 1); the
    figure's metadata names the scanner, the date, each image's path and SHA-256 and any model's verdicts."""
    use_pixel_cap(max_pixels)
    from datetime import UTC, datetime

    from scanner.detect.model import load_model
    from scanner.features.extract import make_extractor
    from scanner.images.decode import UnusableImage
    from scanner.report.figures import FigureProvenance, save_figure, spectra_view, spectrum_figure
    from scanner.report.figures import figure_format as format_of

    try:
        chosen = format_of(out, figure_format)
    except ValueError as exc:
        raise InputError(f"--out {out}: {exc}") from None
    judge = load_model(model) if model is not None or verdict else None
    extractor = make_extractor(spectrum=spectrum, planner=planner)
    views = []
    for path in images:
        try:
            views.append(spectra_view(path, extractor, model=judge, max_pixels=max_pixels, max_bytes=max_bytes))
        except UnusableImage as exc:
            say(f"{path}: {exc.status}: {exc.reason} (not drawn)", err=True)
    if not views:
        say("scanner spectrum: no usable image to draw; nothing written", err=True)
        raise typer.Exit(ExitCode.SOME_UNUSABLE)
    provenance = FigureProvenance(datetime.now(UTC), tuple(views), judge)
    save_figure(spectrum_figure(views), out, dpi, inputs=[*images, model], file_format=chosen, provenance=provenance)
    where = "standard output" if str(out) == "-" else f"{out} ({os.path.getsize(out) / 1e3:,.0f} KB)"
    chatter(f"{where}: {len(views)} of {len(images)} images drawn", err=str(out) == "-")
    raise typer.Exit(ExitCode.SOME_UNUSABLE if strict and len(views) < len(images) else ExitCode.OK)


@command("report", "Look")
def report(
    store: options.StoreArgument,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write.", metavar="REPORT.html", show_default=False)
    ],
    verdicts: Annotated[
        Path | None,
        typer.Option(
            "--verdicts",
            help="Verdicts CSV from scanner classify: counts, and the most suspicious files.",
            metavar="VERDICTS.csv",
            show_default=False,
        ),
    ] = None,
    thumbnails: Annotated[
        bool,
        typer.Option("--thumbnails", help="Embed small downscaled thumbnails of the top files (never the originals)."),
    ] = False,
    top: Annotated[
        int, typer.Option("--top", min=0, metavar="N", help="How many of the most suspicious files to show.")
    ] = 20,
    scatter: Annotated[
        tuple[str, str],
        typer.Option("--scatter", help="The two features of the scatter plot.", metavar="FEATURE_X FEATURE_Y"),
    ] = ("mean", "icorr_rg"),
    max_pixels: options.MaxPixels = DEFAULT_MAX_PIXELS,
    max_bytes: options.MaxBytes = DEFAULT_MAX_BYTES,
) -> None:
    """Write one self-contained HTML report of a sweep: counts, histograms, encodings, the most suspicious files."""
    use_pixel_cap(max_pixels)
    from scanner.detect.verdicts import read_verdicts
    from scanner.report.html import ReportInputs, build_report, write_report
    from scanner.store.hdf5 import read_features

    table = read_features(store)
    inputs = ReportInputs(
        store_name=str(store),
        verdicts=read_verdicts(verdicts) if verdicts is not None else None,
        top=top,
        thumbnails=thumbnails,
        scatter=scatter,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
    )
    text = build_report(table, inputs)
    write_report(text, out, inputs=[store, verdicts])
    where = "standard output" if str(out) == "-" else str(out)
    chatter(f"{where}: report of {len(table):,} files ({len(text.encode()) / 1e6:.1f} MB)", err=str(out) == "-")
