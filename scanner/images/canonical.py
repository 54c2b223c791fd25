"""Canonicalising: every image re-encoded once as JPEG quality 90, 4:2:0, in memory, before it is measured.

An option of `scan` and `features` (``Measurement.canonical``): the user's files are never
touched. It gives every image the same last encoder, so that a classifier cannot tell
classes apart by the format or quality they happened to be saved in (PNG against JPEG, one
JPEG quality against another). It does not remove what earlier compressions left (a photo
compressed twice stays different from one compressed once). EVALUATION.md measures both.

The encoder is OpenCV's, with the parameters below: the same as writing the file with
``cv2.imwrite`` and reading it back.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

CANONICAL_QUALITY = 90
CANONICAL_PARAMS = (
    cv2.IMWRITE_JPEG_QUALITY,
    CANONICAL_QUALITY,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
)


def canonical_bgr(image: npt.NDArray[np.uint8], red_index: int = 2) -> npt.NDArray[np.uint8]:
    """An (H, W, 3) uint8 image (B, G, R order when red_index is 2, R, G, B when 0) re-encoded as JPEG
    quality 90, 4:2:0 and decoded again, in B, G, R order."""
    bgr = image if red_index == 2 else np.ascontiguousarray(image[..., ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, list(CANONICAL_PARAMS))
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None or decoded.shape != bgr.shape:
        raise ValueError("OpenCV could not decode its own JPEG")
    return cast(npt.NDArray[np.uint8], decoded)  # a baseline JPEG decodes to 8 bits a sample
