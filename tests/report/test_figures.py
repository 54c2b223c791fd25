import cv2
import numpy as np
import pytest
from helpers import natural_image
from matplotlib import colormaps
from matplotlib.image import imread
from typer.testing import CliRunner

from scanner.cli import app
from scanner.core.featuresets import FEATURE_NAMES
from scanner.core.schema import Measurement
from scanner.detect.model import default_model_path
from scanner.features.extract import make_extractor
from scanner.features.reference import reference_features, reference_spectra
from scanner.report.figures import (
    PANEL_TITLES,
    block_mean,
    channel_spectra,
    difference_maps,
    figure_png,
    spectra_view,
    spectrum_figure,
    stacked_view,
)

runner = CliRunner()


def write_png(path, rgb):
    cv2.imwrite(str(path), rgb[..., ::-1])
    return path


@pytest.fixture(scope="module")
def extractor():
    return make_extractor(spectrum="log", precision="double", planner="estimate", use_wisdom=False)  # vs float64


@pytest.mark.parametrize("mode", ["log", "modulus"])
@pytest.mark.parametrize("shape", [(40, 56), (33, 47), (8, 8)])
def test_channel_spectra_are_the_definitions_shifted(mode, shape):
    rgb = natural_image(*shape, seed=3)
    ours = channel_spectra(rgb, mode)
    for c, reference in enumerate(reference_spectra(rgb, mode)):
        np.testing.assert_allclose(ours[c], np.fft.fftshift(reference.reshape(shape)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["log", "modulus"])
def test_difference_maps_average_to_the_engine_features(tmp_path, mode):
    # float32 per-bin values leave up to about 5e-6 (1e-6 on this image with another FFTW plan)
    rgb = natural_image(48, 64, seed=5)
    view = spectra_view(write_png(tmp_path / "a.png", rgb), make_extractor(spectrum=mode, planner="estimate"))
    d = view.differences.mean(axis=(1, 2))  # d_RG, d_RB, d_GB
    np.testing.assert_allclose(view.features[:3], [d.mean(), d.max(), d.min()], rtol=1e-5)
    np.testing.assert_allclose(view.features, reference_features(rgb, mode), rtol=1e-5)


def test_large_images_are_shown_as_block_means(tmp_path, extractor):
    rgb = natural_image(200, 300, seed=11)
    view = spectra_view(write_png(tmp_path / "big.png", rgb), extractor, max_side=64)  # factor 5
    assert view.spectra.shape == view.differences.shape == (3, 40, 60) and view.thumbnail.shape == (40, 60, 3)
    d = view.differences.mean(axis=(1, 2))  # block means keep the mean: still d_RG, d_RB, d_GB
    np.testing.assert_allclose(view.features[:3], [d.mean(), d.max(), d.min()], rtol=1e-6)
    full = channel_spectra(rgb, "log")
    np.testing.assert_allclose(view.spectra[0, 3, 7], full[0, 15:20, 35:40].mean())


def test_block_mean_shrinks_by_an_integer_factor():
    a = np.arange(10 * 7, dtype=float).reshape(10, 7)
    small = block_mean(a, 4)  # factor 3: the 9 x 6 corner in 3 x 3 blocks
    assert small.shape == (3, 2)
    assert small[1, 1] == a[3:6, 3:6].mean()
    assert block_mean(a, 10) is a


def test_figure_panels_hold_the_numpy_spectra(tmp_path, extractor):
    images = [natural_image(40, 56, seed=5), natural_image(36, 36, seed=6)]
    views = [spectra_view(write_png(tmp_path / f"{i}.png", rgb), extractor) for i, rgb in enumerate(images)]
    fig = spectrum_figure(views)
    per_row = len(PANEL_TITLES)  # the pictures and the text panel; one colour bar for the whole figure
    assert len(fig.axes) == per_row * len(views) + 1
    bar = fig.axes[-1]
    fig.draw_without_rendering()  # lays the figure out
    lowest_panel = min(ax.get_position().y0 for ax in fig.axes[:-1])
    assert bar.get_xlabel() == "|S_a - S_b|" and bar.get_position().y1 < lowest_panel  # under every row
    for row, (rgb, view) in enumerate(zip(images, views, strict=True)):
        axes = fig.axes[row * per_row : (row + 1) * per_row]
        pictures, text = axes[:8], axes[-1]
        titles = [ax.get_title() for ax in pictures]
        assert titles == (list(PANEL_TITLES[:8]) if row == 0 else [""] * 8)  # titled once, above the first row
        data = [np.asarray(ax.images[0].get_array()) for ax in pictures]
        spectra = channel_spectra(rgb, "log")
        np.testing.assert_array_equal(data[0], rgb)
        for c in range(3):
            np.testing.assert_allclose(data[1 + c], spectra[c])
        np.testing.assert_allclose(data[4], np.moveaxis(spectra, 0, -1))
        for p in range(3):
            np.testing.assert_allclose(data[5 + p], difference_maps(spectra)[p])
        assert text.get_title(loc="left") == ("features" if row == 0 else "")
        lines = text.texts[0].get_text().splitlines()
        assert lines[0].startswith(f"{rgb.shape[1]}x{rgb.shape[0]}  PNG")
        shown = {
            line.split()[0]: float(line.split()[1])
            for line in lines
            if line.split()[:1] and line.split()[0] in FEATURE_NAMES
        }
        np.testing.assert_allclose([shown[n] for n in FEATURE_NAMES], view.features, atol=1e-6)
        assert fig.axes[row * per_row + 5].images[0].get_clim() == fig.axes[5].images[0].get_clim()  # one scale


def _panel_pixels(fig, png: np.ndarray, ax) -> np.ndarray:
    """The rendered pixels inside an axes, a few pixels in from its frame."""
    box = ax.get_window_extent()
    height = png.shape[0]
    top, bottom = int(np.ceil(height - box.y1)) + 3, int(np.floor(height - box.y0)) - 3
    left, right = int(np.ceil(box.x0)) + 3, int(np.floor(box.x1)) - 3
    return png[top:bottom, left:right, :3]


def test_rendered_figure_shows_where_channels_differ(tmp_path, extractor):
    # Green and blue identical, red different: |S_G - S_B| is zero everywhere, the others are not.
    rgb = natural_image(64, 64, seed=7)
    rgb[..., 2] = rgb[..., 1]
    view = spectra_view(write_png(tmp_path / "gb.png", rgb), extractor)
    fig = spectrum_figure([view])
    path = tmp_path / "fig.png"
    path.write_bytes(figure_png(fig, dpi=int(fig.dpi)))
    png = imread(path)
    axes = {ax.get_title(): ax for ax in fig.axes}
    zero_colour = np.array(colormaps["magma"](0.0)[:3])
    gb = _panel_pixels(fig, png, axes["|S_G - S_B|"])
    assert gb.size and np.abs(gb - zero_colour).max() < 2 / 255
    rg = _panel_pixels(fig, png, axes["|S_R - S_G|"])
    assert len(np.unique(rg.reshape(-1, 3), axis=0)) > 20
    stacked = _panel_pixels(fig, png, axes["R, G, B stacked"])
    assert np.abs(stacked[..., 1] - stacked[..., 2]).max() < 2 / 255  # G and B spectra coincide
    assert np.abs(stacked[..., 0] - stacked[..., 1]).max() > 0.1  # R's does not
    np.testing.assert_allclose(stacked_view(view.spectra, "log")[..., 1], view.spectra[2])


class ConstantModel:
    """Stands in for a detector: records what it was given."""

    measurement = Measurement(spectrum="modulus")

    def __init__(self):
        self.seen = []

    def score(self, features):
        self.seen.append(np.array(features))
        return np.array([0.75])

    def predict(self, features):
        return np.array(["fake"], dtype=object)


def test_verdict_uses_features_of_the_models_spectrum(tmp_path, extractor):
    rgb = natural_image(40, 40, seed=8)
    model = ConstantModel()
    view = spectra_view(write_png(tmp_path / "a.png", rgb), extractor, model=model)
    np.testing.assert_allclose(model.seen[0], reference_features(rgb, "modulus"), rtol=1e-5)
    assert (view.verdict, view.score, view.model_spectrum) == ("fake", 0.75, "modulus")
    text = spectrum_figure([view]).axes[-2].texts[0].get_text()  # the text panel; the colour bar comes last
    assert "verdict: fake" in text and "+0.7500" in text and "(model on modulus features)" in text


def test_cli_draws_the_good_files_and_names_the_bad(tmp_path):
    good = write_png(tmp_path / "face.png", natural_image(40, 56, seed=9))
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    grey = write_png(tmp_path / "grey.png", np.repeat(natural_image(32, 32)[..., :1], 3, axis=2))
    out = tmp_path / "spectra.png"
    result = runner.invoke(
        app, ["spectrum", str(good), str(bad), str(grey), "--out", str(out), "--planner", "estimate"]
    )
    assert result.exit_code == 0, result.output  # drawn what could be; --strict would make it 1
    assert f"{bad}: not_image" in result.stderr and f"{grey}: grayscale" in result.stderr
    assert "1 of 3 images drawn" in result.stdout
    png = imread(out)
    assert png.ndim == 3 and png.shape[1] > 4 * png.shape[0]  # one wide row of panels
    assert np.ptp(png[..., :3]) > 0.5


def test_cli_usage_and_fatal_errors(tmp_path):
    good = write_png(tmp_path / "face.png", natural_image(40, 56, seed=9))
    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    assert runner.invoke(app, ["spectrum", str(good), "--out", str(tmp_path / "x.gif")]).exit_code == 2
    assert runner.invoke(app, ["spectrum", str(good), "--out", "-", "--format", "bmp"]).exit_code == 2
    result = runner.invoke(app, ["spectrum", str(bad), "--out", str(tmp_path / "none.png")])
    assert result.exit_code == 1 and not (tmp_path / "none.png").exists()
    result = runner.invoke(
        app, ["spectrum", str(good), "--out", str(tmp_path / "no" / "dir.png"), "--planner", "estimate"]
    )
    assert result.exit_code == 3 and "cannot write" in result.stderr
    result = runner.invoke(app, ["spectrum", str(good), "--out", str(tmp_path / "a.png"), "--model", str(bad)])
    assert result.exit_code == 2


@pytest.mark.skipif(not default_model_path().exists(), reason="no bundled default model in this checkout")
def test_cli_verdict_of_the_bundled_model(tmp_path):
    good = write_png(tmp_path / "face.png", natural_image(40, 56, seed=9))
    out = tmp_path / "spectra.svg"
    result = runner.invoke(app, ["spectrum", str(good), "--out", str(out), "--verdict", "--planner", "estimate"])
    assert result.exit_code == 0, result.output
    assert "verdict: " in out.read_text()


def test_two_examples_make_a_figure_under_a_megabyte(tmp_path):
    """The documented command: two 1024 x 1024 examples as JPEG at the default resolution."""
    from helpers import EXAMPLES

    images = [EXAMPLES / "real" / "person1.jpg", EXAMPLES / "fake" / "person51.jpg"]
    out = tmp_path / "spectra.jpg"
    result = runner.invoke(app, ["spectrum", *map(str, images), "--out", str(out), "--planner", "estimate"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:3] == b"\xff\xd8\xff" and 100_000 < out.stat().st_size < 1_000_000
    small = tmp_path / "small.jpg"
    result = runner.invoke(
        app, ["spectrum", *map(str, images), "--out", str(small), "--dpi", "60", "--planner", "estimate"]
    )
    assert result.exit_code == 0 and small.stat().st_size < out.stat().st_size / 2  # --dpi sets the resolution
    piped = runner.invoke(app, ["spectrum", str(images[0]), "--out", "-", "--format", "webp", "--planner", "estimate"])
    assert piped.exit_code == 0 and piped.stdout_bytes[8:12] == b"WEBP" and "standard output" in piped.stderr


# --- the figure's provenance ------------------------------------------------------------------


def png_texts(data):
    """The PNG's tEXt chunks, {keyword: text}, parsed from the chunk layout (length, type, data, CRC)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    texts, at = {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"tEXt":
            key, _, text = body.partition(b"\0")
            texts[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return texts


def jpeg_comments(data):
    """The JPEG's comment (COM) segments before its scan, in order; and the first segment's marker."""
    import struct

    assert data[:2] == b"\xff\xd8"
    comments, markers, at = [], [], 2
    while data[at + 1] != 0xDA:  # up to the start of scan
        marker, (length,) = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])
        markers.append(marker)
        if marker == 0xFE:
            comments.append(data[at + 4 : at + 2 + length])
        at += 2 + length
    return comments, markers[0]


def read_provenance(path, file_format):
    """The provenance record a figure file carries, as written for its format."""
    import io
    import json
    import re
    import xml.etree.ElementTree as ET

    from PIL import Image

    data = path.read_bytes()
    dc = "{http://purl.org/dc/elements/1.1/}description"
    if file_format == "png":
        texts = png_texts(data)
        record = json.loads(texts["scanner provenance"])
        assert texts["Software"] == record["software"] and texts["Creation Time"] == record["date"]
    elif file_format == "jpg":
        comments, first = jpeg_comments(data)
        assert first == 0xE0  # JFIF's APP0 still comes first
        record = json.loads(b"".join(comments))
        Image.open(io.BytesIO(data)).load()  # still a whole JPEG
    elif file_format == "svg":
        record = json.loads(ET.fromstring(data).find(f".//{dc}").text)
    elif file_format == "pdf":
        text = re.search(rb"/Subject \((.*)\)\n", data).group(1)
        record = json.loads(re.sub(rb"\\([\\()])", rb"\1", text))  # a PDF string's escapes
    else:
        record = json.loads(ET.fromstring(Image.open(io.BytesIO(data)).info["xmp"]).find(f".//{dc}").text)
    return record


@pytest.mark.parametrize("file_format", ["png", "jpg", "svg", "pdf", "webp"])
def test_the_figure_names_the_scanner_the_date_the_images_and_the_verdicts(tmp_path, file_format):
    import hashlib
    from datetime import UTC, datetime

    from scanner.core.version import __version__
    from scanner.detect.model import bundled_model_path

    images = [
        write_png(tmp_path / "visage é.png", natural_image(40, 56, seed=9)),
        write_png(tmp_path / "other.png", natural_image(48, 48, seed=3)),
    ]
    out = tmp_path / f"spectra.{file_format}"
    before = datetime.now(UTC).replace(microsecond=0)
    result = runner.invoke(
        app, ["spectrum", *map(str, images), "--out", str(out), "--verdict", "--planner", "estimate"]
    )
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    record = read_provenance(out, file_format)
    assert record["software"] == f"scanner {__version__}"
    assert record["date"].endswith("+00:00") and before <= datetime.fromisoformat(record["date"]) <= after
    assert [i["path"] for i in record["images"]] == list(map(str, images))
    assert [i["sha256"] for i in record["images"]] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in images]
    assert all(i["verdict"] in ("real", "fake") and isinstance(i["score"], float) for i in record["images"])
    model = record["model"]
    assert (model["model"], model["method"], model["feature_set"]) == ("bundled:extended", "logistic", "extended")
    assert model["sha256"] == hashlib.sha256(bundled_model_path("extended").read_bytes()).hexdigest()
    assert (model["threshold"], model["threshold_set_by"]) == (0.0, "default")


def test_the_figure_without_a_model_has_no_verdicts_and_a_long_record_spans_comments(tmp_path):
    import json

    from scanner.report.figures import JPEG_COMMENT_MAX, with_jpeg_comment

    image = write_png(tmp_path / "face.png", natural_image(40, 56, seed=9))
    out = tmp_path / "spectra.png"
    result = runner.invoke(app, ["spectrum", str(image), "--out", str(out), "--planner", "estimate"])
    assert result.exit_code == 0, result.output
    record = read_provenance(out, "png")
    assert "model" not in record and set(record["images"][0]) == {"path", "sha256"}

    text = json.dumps({"images": ["x" * 1000] * 100}).encode()  # over one segment's 65533 bytes
    jpeg = cv2.imencode(".jpg", natural_image(16, 16)[..., ::-1])[1].tobytes()
    comments, first = jpeg_comments(with_jpeg_comment(jpeg, text))
    assert first == 0xE0 and len(comments) == 2 and len(comments[0]) == JPEG_COMMENT_MAX
    assert b"".join(comments) == text
