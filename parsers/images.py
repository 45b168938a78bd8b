"""Open image attachments (licence copies, photos) with Pillow under pixel limits, upright and RGB."""

from __future__ import annotations

import io
import warnings
from typing import Any

from PIL import Image, ImageOps

# The image types the sniffer routes here. Pillow would otherwise try every decoder it has, EPS among them,
# which runs Ghostscript on the file when it is installed.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


class ImageError(Exception):
    """The image cannot be opened; the message is the reason in words."""


def load_image(data: bytes, *, max_pixels: int = 60_000_000) -> Any:
    """Decode an image, refusing decompression bombs before any pixel is allocated.

    Pillow only warns (DecompressionBombWarning) up to twice MAX_IMAGE_PIXELS and raises beyond; both are
    turned into ImageError here, and the declared size is checked before load() as well.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            try:
                img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageError(f"image too large (decompression bomb?): {exc}") from None
            except Exception as exc:
                raise ImageError(f"not a readable image ({type(exc).__name__}: {str(exc)[:120]})") from None
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"image too large ({w}×{h} pixels: decompression bomb?)")
            try:
                img.load()
                upright: Any = ImageOps.exif_transpose(img) or img
                return upright.convert("RGB")
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageError(f"image too large (decompression bomb?): {exc}") from None
            except MemoryError:
                raise ImageError("exceeded memory limit decoding the image") from None
            except Exception as exc:
                raise ImageError(f"damaged image ({type(exc).__name__}: {str(exc)[:120]})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = old
