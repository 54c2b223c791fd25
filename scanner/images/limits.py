"""Setting OpenCV's own pixel limit from the tool's cap, before OpenCV loads (light: standard library only).

OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, when it is loaded, and then
refuses to decode any image larger. scanner.images.decode sets it to the default cap
when nothing asked for another, so that OpenCV never decodes more than the
tool's cap allows. A command given ``--max-pixels`` calls ``use_pixel_cap``
before it imports the decoder, and before its worker processes start (they
inherit the environment), so that the decoder's limit is that cap. Once OpenCV
is loaded its limit is fixed: a larger cap asked for later still refuses, with
a reason naming the decoder's limit, the images between the two.
"""

from __future__ import annotations

import os
import sys

PIXEL_LIMIT_VARIABLE = "OPENCV_IO_MAX_IMAGE_PIXELS"


def use_pixel_cap(max_pixels: int) -> bool:
    """Make `max_pixels` OpenCV's limit, if OpenCV is not loaded yet in this process (True if done).

    A lower limit already in the environment is kept: whoever set it wanted less.
    """
    if "cv2" in sys.modules:
        return False
    try:
        current = int(os.environ.get(PIXEL_LIMIT_VARIABLE, ""))
    except ValueError:
        current = 0
    if not 0 < current <= max_pixels:
        os.environ[PIXEL_LIMIT_VARIABLE] = str(max_pixels)
    return True
