"""Red seal detection: stamped scans and licence photos yes; unstamped pages and red decoys no."""

from __future__ import annotations

import io

from PIL import Image

from parsers.seal import find_seals, has_seal
from tests.scangen import draw_seal, license_image, red_decoy_page, scanify, stamp


def _page() -> Image.Image:
    return Image.new("RGB", (1240, 1754), (255, 255, 255))


def test_stamped_page_has_seal() -> None:
    import random

    page = stamp(_page(), draw_seal(250, "武汉测试科技有限公司"), (500, 300))
    assert has_seal(scanify(page, random.Random(1)))


def test_oval_and_small_seals() -> None:
    seal = draw_seal(240, "武汉某某有限公司").resize((300, 200))
    assert has_seal(stamp(_page(), seal, (300, 300)))


def test_unstamped_page_and_decoys_have_no_seal() -> None:
    import random

    assert not has_seal(scanify(_page(), random.Random(2)))
    assert find_seals(red_decoy_page()) == []


def test_licence_photo_seal_and_none() -> None:
    assert has_seal(Image.open(io.BytesIO(license_image("武汉测试科技有限公司", "91420100MA4K12345X"))))
    assert not has_seal(
        Image.open(io.BytesIO(license_image("武汉测试科技有限公司", "91420100MA4K12345X", seal=False)))
    )


def test_grey_scan_of_seal_is_not_red() -> None:
    page = stamp(_page(), draw_seal(250, "武汉测试科技有限公司"), (500, 300)).convert("L").convert("RGB")
    assert not has_seal(page)
