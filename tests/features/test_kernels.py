"""The copy into the transform's planes (kernels.to_planar) and the flags it finds in the same pass."""

import numpy as np
import pytest

from scanner.features import kernels


def expected_flags(rgb: np.ndarray) -> int:
    """to_planar's flags, from numpy: grey, constant planes, identical pairs (kernels.IDENTICAL_PAIRS)."""
    r, g, b = (rgb[..., c] for c in range(3))
    same = {(0, 1): np.array_equal(r, g), (0, 2): np.array_equal(r, b), (1, 2): np.array_equal(g, b)}
    flags = int(same[0, 1] and same[0, 2])
    for c, plane in enumerate((r, g, b)):
        flags |= int((plane == plane.flat[0]).all()) << (1 + c)
    for bit, first, second in kernels.IDENTICAL_PAIRS:
        flags |= int(same[first, second]) << bit
    return flags


def cases() -> list[tuple[str, np.ndarray]]:
    """Images whose flags are settled early, late, or never: a flag may only clear on the last row."""
    rng = np.random.default_rng(7)
    colour = rng.integers(0, 256, (24, 19, 3), dtype=np.uint8)
    grey = np.repeat(rng.integers(0, 256, (24, 19, 1), dtype=np.uint8), 3, axis=2)
    grey_then_colour = grey.copy()
    grey_then_colour[-1, -1] = (1, 2, 3)
    colour_row_then_grey = grey.copy()
    colour_row_then_grey[0] = colour[0]
    red_equals_green = colour.copy()
    red_equals_green[..., 0] = red_equals_green[..., 1]
    almost_equal = red_equals_green.copy()
    almost_equal[-1, -1, 0] ^= 1
    constant_blue = colour.copy()
    constant_blue[..., 2] = 9
    late_blue = constant_blue.copy()
    late_blue[-1, 5, 2] = 10
    return [
        ("colour", colour),
        ("grey", grey),
        ("grey then one colour pixel", grey_then_colour),
        ("one colour row then grey", colour_row_then_grey),
        ("red equals green", red_equals_green),
        ("red equals green but one pixel", almost_equal),
        ("constant blue", constant_blue),
        ("blue constant but one pixel in the last row", late_blue),
        ("constant", np.full((9, 8, 3), 200, np.uint8)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("red_index", [0, 2])
@pytest.mark.parametrize("name,image", cases(), ids=[name for name, _ in cases()])
def test_to_planar_copies_scaled_planes_and_finds_the_flags(name, image, red_index, dtype):
    rgb = image if red_index == 0 else image[..., ::-1]
    source = np.ascontiguousarray(image)
    out = np.full((3, *image.shape[:2]), np.nan, dtype=dtype)
    scale = dtype(1.0 / 255.0)
    flags = kernels.to_planar(source, out, scale, red_index)
    assert flags == expected_flags(np.asarray(rgb))
    for c in range(3):
        np.testing.assert_array_equal(out[c], rgb[..., c].astype(dtype) * scale)


def test_to_planar_writes_the_first_columns_of_padded_rows_only():
    """A transform's rows are padded (in-place FFTW); the copy fills the image's columns and no others."""
    image = cases()[0][1]
    height, width = image.shape[:2]
    out = np.full((3, height, width + 3), -1.0, np.float32)
    kernels.to_planar(np.ascontiguousarray(image), out, np.float32(1.0), 0)
    for c in range(3):
        np.testing.assert_array_equal(out[c, :, :width], image[..., c].astype(np.float32))
    assert (out[:, :, width:] == -1.0).all()
