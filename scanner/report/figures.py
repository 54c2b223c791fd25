"""Why a file looks generated: the paper's Figure 1, drawn for any image.

For each image: the image, the spectra of its R, G and B channels (fftshifted so
that the zero frequency is in the centre), the three spectra stacked as one RGB
image (where a camera's channels coincide and show grey, a generator's drift
apart and show colour), the three pairwise difference maps |S_a - S_b| (their
means are the features' d_RG, d_RB, d_GB) and the six feature values.

The spectra here are computed with plain numpy over the full H x W spectrum,
from the definitions (scanner.features.reference): they are for looking at, not the hot path.
The feature values printed beside them come from the engine (an Extractor),
so the numbers are exactly those of `scanner features` and `scan`.

matplotlib is used through its object API with the Agg canvas (no pyplot, no
display, no global state), so figures can be drawn from any process.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scanner.core.constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Status
from scanner.core.version import __version__
from scanner.features.extract import Extractor, GreyImage, spectral_features
from scanner.features.reference import PAIRS, reference_spectra
from scanner.images.decode import ImageInfo, UnusableImage, decode_bytes, read_file
from scanner.io.outputs import output_file

if TYPE_CHECKING:
    from scanner.detect.model import Model

CHANNELS = ("R", "G", "B")

PANEL_TITLES = (
    "image",
    "spectrum R",
    "spectrum G",
    "spectrum B",
    "R, G, B stacked",
    "|S_R - S_G|",
    "|S_R - S_B|",
    "|S_G - S_B|",
    "features",
)
FIGURE_FORMATS = (".jpg", ".jpeg", ".png", ".webp", ".svg", ".pdf")
JPEG_QUALITY = 90  # spectra are noise-like: JPEG at 90 is a quarter of the PNG and looks the same
DEFAULT_DPI = 120


def channel_spectra(rgb: npt.NDArray[np.uint8], spectrum: str = "log") -> npt.NDArray[np.float64]:
    """The (3, H, W) float64 spectra of R, G, B over all bins (scanner.features.reference), fftshifted for display."""
    return np.fft.fftshift(reference_spectra(rgb, spectrum), axes=(1, 2))


def difference_maps(spectra: npt.NDArray[np.float64], max_side: int | None = None) -> npt.NDArray[np.float64]:
    """|S_R - S_G|, |S_R - S_B|, |S_G - S_B| as (3, h, w): their means are d_RG, d_RB, d_GB.

    With max_side, each map is shrunk by block_mean as soon as it is made, so a
    large image never holds three full-size maps at once.
    """
    maps = (np.abs(spectra[a] - spectra[b]) for a, b in PAIRS)
    return np.stack([m if max_side is None else block_mean(m, max_side) for m in maps])


def block_mean(array: npt.NDArray[Any], max_side: int) -> npt.NDArray[Any]:
    """Shrink the two leading axes by an integer factor so neither exceeds max_side.

    Block means keep what a difference map shows (its mean is unchanged); arrays
    already small enough come back as they are.
    """
    factor = math.ceil(max(array.shape[:2]) / max_side)
    if factor <= 1:
        return array
    # A side shorter than the factor keeps one row (or column): an 8 x 4000 image stays 1 x 125, never 0 x 125.
    fy, fx = min(factor, array.shape[0]), min(factor, array.shape[1])
    height, width = (array.shape[0] // fy) * fy, (array.shape[1] // fx) * fx
    blocks = array[:height, :width].reshape(height // fy, fy, width // fx, fx, *array.shape[2:])
    means: npt.NDArray[np.float64] = blocks.mean(axis=(1, 3))
    return means


@dataclass(frozen=True)
class SpectraView:
    """What one row of the figure shows, at display resolution.

    `spectra` and `differences` are (3, h, w) (block means of the full-resolution
    maps when the image is larger than the display size), `features` are the
    engine's six values at full resolution, `verdict`/`score` come from a model
    whose features were computed in `model_spectrum` mode.
    """

    path: str
    info: ImageInfo
    spectrum: str
    thumbnail: npt.NDArray[np.uint8]  # (h, w, 3) uint8 RGB
    spectra: npt.NDArray[np.float64]
    differences: npt.NDArray[np.float64]
    features: npt.NDArray[np.float64]
    feature_names: tuple[str, ...]
    verdict: str = ""
    score: float = math.nan
    model_spectrum: str = ""
    sha256: str = ""  # of the bytes read and decoded


def spectra_view(
    path: str | os.PathLike[str],
    extractor: Extractor,
    *,
    model: Model | None = None,
    max_side: int = 512,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SpectraView:
    """Read one file and compute its display spectra, features and (given a model) verdict.

    The model judges features measured its own way, recomputed when the
    extractor measures otherwise. Raises UnusableImage (with the same statuses as a
    scan) for files the method cannot judge, including grey images.
    """
    data = read_file(path, max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()  # of the very bytes decoded: the file is read once
    decoded = decode_bytes(data, max_pixels)
    del data
    try:
        features = extractor.from_bgr(decoded.pixels)
    except GreyImage as exc:
        raise UnusableImage(Status.GRAYSCALE, str(exc)) from None
    rgb = np.ascontiguousarray(decoded.pixels[..., ::-1])
    spectrum = extractor.measurement.spectrum
    spectra = channel_spectra(rgb, spectrum)
    thumbnail = block_mean(rgb, max_side).round().astype(np.uint8)
    verdict, score, model_spectrum = "", math.nan, ""
    if model is not None:
        m = model.measurement
        model_features = (
            features
            if m == extractor.measurement
            else spectral_features(rgb, m.spectrum, m.feature_set, m.precision, m.canonical)
        )
        score = float(model.score(model_features)[0])
        verdict, model_spectrum = str(model.predict(model_features)[0]), m.spectrum
    return SpectraView(
        path=os.fsdecode(path),
        info=decoded.info,
        spectrum=spectrum,
        thumbnail=thumbnail,
        spectra=np.stack([block_mean(s, max_side) for s in spectra]),
        differences=difference_maps(spectra, max_side),
        features=features,
        feature_names=extractor.names,
        verdict=verdict,
        score=score,
        model_spectrum=model_spectrum,
        sha256=sha256,
    )


def stacked_view(spectra: npt.NDArray[np.float64], spectrum: str) -> npt.NDArray[np.float64]:
    """The three spectra as one (h, w, 3) RGB image in [0, 1]: Figure 1 of the paper.

    log spectra are already in [0, 1]; modulus spectra span many decades, so they
    are shown as ln(1 + S) on one scale shared by the three channels (a common
    scale keeps a channel that is stronger than the others visible as a tint).
    """
    display = display_spectra(spectra, spectrum)
    return np.nan_to_num(np.moveaxis(display, 0, -1), nan=0.0)


def display_spectra(spectra: npt.NDArray[np.float64], spectrum: str) -> npt.NDArray[np.float64]:
    """Spectra mapped to [0, 1] for display.

    log spectra are shown as they are. Modulus spectra are shown as ln(1 + S),
    stretched from its 1st to its 99.9th percentile over the three channels
    together (one scale, so a channel stronger than the others shows as a tint;
    the zero-frequency peak alone would otherwise set the scale).
    """
    if spectrum == "log":
        return spectra
    compressed = np.log1p(spectra)
    finite = compressed[np.isfinite(compressed)]
    if not finite.size:
        return compressed
    low, high = np.percentile(finite, [1, 99.9])
    stretched: npt.NDArray[np.float64] = (
        np.clip((compressed - low) / (high - low), 0.0, 1.0) if high > low else compressed - low
    )
    return stretched


def difference_scale(views: list[SpectraView]) -> tuple[float, float]:
    """One colour scale (low, high) for every difference map of a figure, so rows compare.

    high is the 99.5th percentile of all shown differences, so that a few extreme
    bins do not wash the rest out. low is 0 for log spectra (no difference is
    meaningful); modulus differences are shown as ln(1 + |S_a - S_b|) from their
    0.5th percentile, since almost no bin of a photograph's modulus is near 0.
    """
    values = [_difference_display(v) for v in views]
    finite = np.concatenate([d[np.isfinite(d)] for d in values])
    if not finite.size:
        return 0.0, 1.0
    low = 0.0 if views[0].spectrum == "log" else float(np.percentile(finite, 0.5))
    high = float(np.percentile(finite, 99.5))
    return (low, high) if high > low else (low, low + 1.0)


def _difference_display(view: SpectraView) -> npt.NDArray[np.float64]:
    return view.differences if view.spectrum == "log" else np.log1p(view.differences)


def _format_value(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.6f}"


def _describe(view: SpectraView) -> str:
    """The text panel: size, encoding, the six features and the verdict."""
    info = view.info
    encoding = info.format or "?"
    if info.jpeg_subsampling:
        encoding += f" {info.jpeg_subsampling}"
    if info.jpeg_quality:
        encoding += f" q~{info.jpeg_quality}"
    lines = [f"{info.width}x{info.height}  {encoding}", f"spectrum: {view.spectrum}", ""]
    lines += [f"{name:<9}{_format_value(v):>10}" for name, v in zip(view.feature_names, view.features, strict=True)]
    if view.model_spectrum:
        lines += ["", f"verdict: {view.verdict or 'none (NaN feature)'}"]
        if not math.isnan(view.score):
            lines.append(f"score:   {view.score:+.4f}")
        if view.model_spectrum != view.spectrum:
            lines.append(f"(model on {view.model_spectrum} features)")
    return "\n".join(lines)


def _short(path: str, limit: int = 60) -> str:
    return path if len(path) <= limit else "..." + path[-(limit - 3) :]


def spectrum_figure(
    views: list[SpectraView],
    *,
    show_image: bool = True,
    show_text: bool = True,
    show_path: bool = True,
    panel_inches: float = 2.2,
    difference_range: tuple[float, float] | None = None,
) -> Figure:
    """One row per image: image, R/G/B spectra, stacked view, difference maps, features.

    The panels are titled once, above the first row, as in PANEL_TITLES (the image
    and text panels only when asked for). Every difference map of the figure shares
    one colour scale (difference_range, by default difference_scale(views)), shown
    by one colour bar under them, so rows can be compared.
    """
    if not views:
        raise ValueError("no image to draw")
    pictures = [t for t in PANEL_TITLES[:-1] if show_image or t != "image"]
    ratios = [1.0] * len(pictures) + ([1.3] if show_text else [])
    height = panel_inches * (len(views) + 0.45)  # the rows, then the titles and the colour bar
    fig = Figure(figsize=(panel_inches * (sum(ratios) + 0.3), height), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(views), len(ratios), width_ratios=ratios)
    scale = difference_range or difference_scale(views)
    diff_label = "|S_a - S_b|" if views[0].spectrum == "log" else "ln(1 + |S_a - S_b|)"
    difference_axes = []
    difference_image = None
    for row, view in enumerate(views):
        panels = _panels(view, scale)
        for col, title in enumerate(pictures):
            ax = fig.add_subplot(grid[row, col])
            data, style = panels[title]
            image = ax.imshow(data, interpolation="nearest", **style)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=9)
            if col == 0 and show_path:
                ax.set_ylabel(_short(view.path, 40), fontsize=8)
            if title.startswith("|S_"):
                difference_axes.append(ax)
                difference_image = image
        if show_text:
            ax = fig.add_subplot(grid[row, len(pictures)])
            ax.set_axis_off()
            if row == 0:
                ax.set_title("features", fontsize=9, loc="left")
            ax.text(
                0.05,
                1.0,
                _describe(view),
                family="monospace",
                fontsize=7.5,
                va="top",
                ha="left",
                transform=ax.transAxes,
            )
    assert difference_image is not None  # every row draws its three difference maps
    bar = fig.colorbar(difference_image, ax=difference_axes, location="bottom", shrink=0.8, aspect=30, pad=0.02)
    bar.set_label(diff_label, fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return fig


def _panels(
    view: SpectraView, scale: tuple[float, float]
) -> dict[str, tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float64], dict[str, Any]]]:
    """Each picture panel's data and imshow style, by its title."""
    shown = display_spectra(view.spectra, view.spectrum)
    differences = _difference_display(view)
    panels: dict[str, tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float64], dict[str, Any]]] = {
        "image": (view.thumbnail, {}),
        "R, G, B stacked": (stacked_view(view.spectra, view.spectrum), {}),
    }
    for c, name in enumerate(CHANNELS):
        panels[f"spectrum {name}"] = (shown[c], {"cmap": "gray", "vmin": 0.0, "vmax": 1.0})
    for p, (a, b) in enumerate(PAIRS):
        panels[f"|S_{CHANNELS[a]} - S_{CHANNELS[b]}|"] = (
            differences[p],
            {"cmap": "magma", "vmin": scale[0], "vmax": scale[1]},
        )
    return panels


def figure_format(path: str | os.PathLike[str], given: str | None = None) -> str:
    """The figure's format: the one given, else the output's extension; '-' (stdout) without one is JPEG."""
    if given:
        suffix = "." + given.lower().lstrip(".")
    elif os.fspath(path) == "-":
        suffix = ".jpg"
    else:
        suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(f"the figure must be {', '.join(FIGURE_FORMATS)}, not {suffix or 'no extension'!r}")
    return "jpg" if suffix == ".jpeg" else suffix[1:]


@dataclass(frozen=True)
class FigureProvenance:
    """What a figure shows and what made it, for the file's metadata: the scanner's version, when (UTC),
    each image drawn (its path and the SHA-256 of the bytes read) and, with a model, the model and each
    image's verdict."""

    date: datetime  # aware, UTC
    views: tuple[SpectraView, ...]
    model: Model | None = None

    def record(self) -> dict[str, Any]:
        images: list[dict[str, Any]] = []
        for view in self.views:
            image: dict[str, Any] = {"path": view.path, "sha256": view.sha256}
            if self.model is not None:
                image["verdict"] = view.verdict
                image["score"] = None if math.isnan(view.score) else view.score
            images.append(image)
        record: dict[str, Any] = {
            "software": f"scanner {__version__}",
            "date": self.date.isoformat(timespec="seconds"),
            "images": images,
        }
        if self.model is not None:
            record["model"] = {
                "model": self.model.source,
                "sha256": self.model.sha256,
                "method": self.model.method,
                "feature_set": self.model.measurement.feature_set,
                "threshold": 0.0,
                "threshold_set_by": "default",
            }
        return record

    def text(self) -> str:
        """The record as JSON in ASCII (a name's undecodable bytes as \\udcXX escapes): fit for any format."""
        return json.dumps(self.record(), ensure_ascii=True, sort_keys=True)


PROVENANCE_KEY = "scanner provenance"  # the PNG text chunk's keyword


def save_figure(
    fig: Figure,
    path: str | os.PathLike[str],
    dpi: int = DEFAULT_DPI,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    file_format: str | None = None,
    provenance: FigureProvenance | None = None,
) -> None:
    """Write the figure, whole or not at all and never over one of `inputs` (`-`: standard output); the
    format follows the extension (.jpg, .png, .webp, .svg or .pdf) unless given. With `provenance`, its
    record goes into the file's metadata (figure_bytes)."""
    chosen = figure_format(path, file_format)
    with output_file(path, binary=True, inputs=inputs) as handle:
        handle.write(figure_bytes(fig, chosen, dpi, provenance=provenance))


def figure_bytes(
    fig: Figure,
    file_format: str = "png",
    dpi: int = 100,
    quality: int = JPEG_QUALITY,
    provenance: FigureProvenance | None = None,
) -> bytes:
    """The figure in a format (png, jpg, webp, svg, pdf) as bytes; lossy formats at `quality`.

    Without `provenance` the file carries no date (the same figure gives the same bytes). With it, its
    JSON record (FigureProvenance.text) goes into the metadata: a PNG text chunk 'scanner provenance'
    (with 'Software' and 'Creation Time'), JPEG comment (COM) segments, WebP XMP (dc:description), the
    PDF's Subject (with Creator and CreationDate) and the SVG's dc:description (with dc:creator, dc:date).
    """
    buffer = io.BytesIO()
    if provenance is None:
        metadata: dict[str, Any] = _quiet_metadata("." + file_format)
    else:
        metadata = _provenance_metadata(file_format, provenance)
    if file_format in ("jpg", "webp"):
        options: dict[str, Any] = {"quality": quality}
        if provenance is not None and file_format == "webp":
            options["xmp"] = _xmp(provenance)
        fig.savefig(buffer, format=file_format, dpi=dpi, pil_kwargs=options)
    else:
        fig.savefig(buffer, format=file_format, dpi=dpi, metadata=metadata)
    data = buffer.getvalue()
    if provenance is not None and file_format == "jpg":
        data = with_jpeg_comment(data, provenance.text().encode("ascii"))
    return data


def _provenance_metadata(file_format: str, provenance: FigureProvenance) -> dict[str, Any]:
    software, date, text = f"scanner {__version__}", provenance.date, provenance.text()
    if file_format == "png":
        return {"Software": software, "Creation Time": date.isoformat(timespec="seconds"), PROVENANCE_KEY: text}
    if file_format == "svg":
        return {"Creator": software, "Date": date.isoformat(timespec="seconds"), "Description": text}
    if file_format == "pdf":
        return {"Creator": software, "CreationDate": date, "Subject": text}
    return {}


def _xmp(provenance: FigureProvenance) -> bytes:
    """A minimal XMP packet: dc:description holds the record, xmp:CreatorTool and xmp:CreateDate the rest."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f"<xmp:CreatorTool>scanner {escape(__version__)}</xmp:CreatorTool>"
        f"<xmp:CreateDate>{provenance.date.isoformat(timespec='seconds')}</xmp:CreateDate>"
        f"<dc:description>{escape(provenance.text())}</dc:description>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode("ascii")


JPEG_COMMENT_MAX = 65533  # bytes of text one COM segment holds (its length field counts itself)


def with_jpeg_comment(jpeg: bytes, text: bytes) -> bytes:
    """The JPEG with `text` in comment (COM) segments after its SOI and JFIF (APP0) segment; text longer
    than one segment holds is split over several, to be joined in order."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    at = 2
    if jpeg[2:4] == b"\xff\xe0":  # JFIF's APP0 must come first
        at = 4 + struct.unpack(">H", jpeg[4:6])[0]
    pieces = [text[i : i + JPEG_COMMENT_MAX] for i in range(0, len(text), JPEG_COMMENT_MAX)] or [b""]
    comments = b"".join(b"\xff\xfe" + struct.pack(">H", len(p) + 2) + p for p in pieces)
    return jpeg[:at] + comments + jpeg[at:]


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding in a report)."""
    return figure_bytes(fig, "png", dpi)


def _quiet_metadata(suffix: str) -> dict[str, str | None]:
    """No creation dates in the files: the same input gives the same bytes (JPEG and WebP carry none)."""
    if suffix == ".png":
        return {"Software": None}
    if suffix == ".svg":
        return {"Date": None}
    return {"CreationDate": None}
