"""Images: headers read and checked before any pixel is decoded, then decoded with every failure a status.

headers reads image sizes from every decoded format's header; limits sets
OpenCV's pixel cap; decode turns file bytes into (H, W, 3) uint8 pixels;
canonical re-encodes an image as JPEG q90 4:2:0 in memory (--canonical); declared reads
what a file's metadata declares about its making (C2PA, IPTC, generator text), bounded.
"""

from scanner.core import lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    {
        "decode": ["read_image", "decode_bytes", "DecodedImage", "ImageInfo", "UnusableImage"],
        "headers": ["Header", "BadHeader"],
        "limits": ["use_pixel_cap"],
        "canonical": ["canonical_bgr"],
    },
)
