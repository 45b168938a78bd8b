"""Attachment handling found by the security review (SECURITY.md): image decoders an attachment may reach."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from parsers.images import ImageError, load_image

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"


def test_an_eps_attachment_is_never_given_to_ghostscript() -> None:
    assert Image.open(io.BytesIO(EPS)).format == "EPS"  # what Pillow would do with it by default
    with pytest.raises(ImageError) as err:
        load_image(EPS)
    assert "not a readable image" in str(err.value)
    assert "Ghostscript" not in str(err.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_the_image_types_applicants_send_still_open(fmt: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), "white").save(buf, fmt)
    assert load_image(buf.getvalue()).size == (6, 4)
