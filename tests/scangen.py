"""Test fixtures: scanned-looking PDFs and images (red seals, noise, skew, JPEG) and hostile files."""

from __future__ import annotations

import io
import math
import random
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

_FONT_CANDIDATES = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
]


def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    """A CJK-capable font (Debian fonts-noto-cjk); fail loudly when missing rather than render boxes."""
    for p in _FONT_CANDIDATES:
        if Path(p).exists():
            return ImageFont.truetype(p, size, index=2)  # index 2: the SC (simplified Chinese) face
    raise RuntimeError("fonts-noto-cjk is required for the scan fixtures (apt-get install fonts-noto-cjk)")


def draw_seal(size: int, name: str, *, color: tuple[int, int, int] = (215, 30, 35)) -> Image.Image:
    """An RGBA official seal: red ring, the unit's name along the upper arc, a star in the middle."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    ring = max(3, size // 28)
    d.ellipse(
        (ring // 2, ring // 2, size - ring // 2 - 1, size - ring // 2 - 1), outline=(*color, 235), width=ring
    )
    # Star.
    cx = cy = size / 2
    r_out, r_in = size * 0.16, size * 0.065
    pts = []
    for i in range(10):
        r = r_out if i % 2 == 0 else r_in
        a = -math.pi / 2 + i * math.pi / 5
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    d.polygon(pts, fill=(*color, 235))
    # Name along the arc, each character rotated to follow the circle.
    chars = list(name)[:20]
    fsize = max(8, int(size * 0.11))
    font = cjk_font(fsize)
    span = math.radians(min(250, 16 * len(chars)))
    radius = size / 2 - ring - fsize * 0.75
    for i, ch in enumerate(chars):
        a = -math.pi / 2 - span / 2 + span * (i + 0.5) / len(chars)
        tile = Image.new("RGBA", (fsize * 2, fsize * 2), (0, 0, 0, 0))
        ImageDraw.Draw(tile).text((fsize // 2, fsize // 3), ch, font=font, fill=(*color, 235))
        tile = tile.rotate(-math.degrees(a + math.pi / 2), resample=Image.Resampling.BICUBIC)
        x = cx + radius * math.cos(a) - fsize
        y = cy + radius * math.sin(a) - fsize
        img.alpha_composite(tile, (int(x), int(y)))
    return img


def stamp(page: Image.Image, seal: Image.Image, xy: tuple[int, int]) -> Image.Image:
    """Multiply the seal onto the page as ink does (text under it stays visible)."""
    base = page.convert("RGB")
    layer = Image.new("RGB", base.size, (255, 255, 255))
    mask = Image.new("L", base.size, 0)
    layer.paste(seal.convert("RGB"), xy, seal)
    mask.paste(seal.getchannel("A"), xy)
    from PIL import ImageChops

    inked = ImageChops.multiply(base, layer)
    return Image.composite(inked, base, mask)


def scanify(
    page: Image.Image, rng: random.Random, *, skew: float = 1.2, noise: float = 8.0, quality: int = 60
) -> Image.Image:
    """Make a clean render look scanned: slight rotation, grey paper, noise, blur, JPEG artefacts."""
    import numpy as np

    img = page.convert("RGB")
    angle = rng.uniform(-skew, skew)
    img = img.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=(255, 255, 255))
    arr = np.asarray(img).astype(np.int16)
    arr = arr - rng.randint(5, 20)  # paper is never white
    gen = np.random.default_rng(rng.randint(0, 2**31))
    arr = arr + gen.normal(0, noise, arr.shape[:2])[:, :, None].astype(np.int16)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(0.5))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def images_to_pdf(images: list[Image.Image], dpi: int = 150) -> bytes:
    """An image-only PDF (no text layer), one page per image, as a scanner's 'scan to PDF' writes it."""
    buf = io.BytesIO()
    first, rest = images[0], images[1:]
    first.save(buf, "PDF", save_all=True, append_images=rest, resolution=dpi, quality=70)
    return buf.getvalue()


def render_pdf(pdf_bytes: bytes, dpi: int = 150, pages: list[int] | None = None) -> list[Image.Image]:
    """Render pages of a PDF to RGB images with pypdfium2."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(pdf_bytes)
    idx = pages if pages is not None else list(range(len(pdf)))
    out = [pdf[i].render(scale=dpi / 72).to_pil().convert("RGB") for i in idx]
    pdf.close()
    return out


def scan_pdf(
    text_pdf: bytes,
    *,
    org_name: str,
    seal: bool = True,
    seed: int = 0,
    dpi: int = 150,
    max_pages: int | None = None,
) -> bytes:
    """A 'printed, stamped and scanned' version of a text PDF: seal on the cover and on the last page."""
    rng = random.Random(seed)
    pages = render_pdf(text_pdf, dpi=dpi)
    if max_pages is not None and len(pages) > max_pages:
        pages = pages[:2] + pages[-(max_pages - 2) :]
    out = []
    for i, page in enumerate(pages):
        if seal and (i == 0 or i == len(pages) - 1):
            size = int(page.width * 0.2)
            s = draw_seal(size, org_name)
            page = stamp(page, s, (int(page.width * 0.45), int(page.height * (0.2 if i == 0 else 0.55))))
        out.append(scanify(page, rng))
    return images_to_pdf(out, dpi=dpi)


def license_image(org_name: str, credit_code: str, *, seal: bool = True, seed: int = 0) -> bytes:
    """A photo-like 营业执照 copy as JPEG: title, credit code, name, legal representative, and a seal."""
    rng = random.Random(seed)
    img = Image.new("RGB", (1100, 800), (250, 248, 240))
    d = ImageDraw.Draw(img)
    d.rectangle((20, 20, 1080, 780), outline=(160, 120, 40), width=8)
    d.text((420, 60), "营业执照", font=cjk_font(64), fill=(20, 20, 20))
    f = cjk_font(30)
    d.text((90, 200), f"统一社会信用代码 {credit_code}", font=f, fill=(20, 20, 20))
    d.text((90, 270), f"名    称 {org_name}", font=f, fill=(20, 20, 20))
    d.text((90, 340), "类    型 有限责任公司", font=f, fill=(20, 20, 20))
    d.text((90, 410), "法定代表人 张三", font=f, fill=(20, 20, 20))
    d.text((90, 480), "住    所 武汉市江汉区青年路560号", font=f, fill=(20, 20, 20))
    d.text((600, 640), "登记机关", font=f, fill=(20, 20, 20))
    if seal:
        img = stamp(img, draw_seal(230, "武汉市江汉区市场监督管理局"), (720, 520))
    img = scanify(img, rng, skew=2.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=75)
    return buf.getvalue()


def red_decoy_page(seed: int = 0) -> Image.Image:
    """A page with red that is NOT a seal: heading, underline, tick and an empty circle, all red."""
    img = Image.new("RGB", (1240, 1754), (255, 255, 255))
    d = ImageDraw.Draw(img)
    red = (210, 25, 30)
    d.text((200, 120), "关于开展创新应用征集的通知", font=cjk_font(64), fill=red)
    d.line((150, 260, 1100, 260), fill=red, width=6)
    d.text((150, 320), "正文内容" * 10, font=cjk_font(28), fill=(0, 0, 0))
    d.line((300, 700, 330, 740), fill=red, width=8)
    d.line((330, 740, 400, 640), fill=red, width=8)
    d.ellipse((700, 900, 950, 1150), outline=red, width=6)
    return scanify(img, random.Random(seed))


# ---------------------------------------------------------------- hostile archives and files


def gbk_zip(files: dict[str, bytes]) -> bytes:
    """A zip whose member names are GBK bytes without the UTF-8 flag, as Windows Chinese tools write them."""

    class _RawName(zipfile.ZipInfo):
        # zipfile would store non-ASCII names as UTF-8 with flag bit 11; store the GBK bytes as they are.
        def _encodeFilenameFlags(self) -> tuple[bytes, int]:
            return self.filename.encode("cp437"), self.flag_bits

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = _RawName(name.encode("gbk").decode("cp437"))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    raw = buf.getvalue()
    assert not int.from_bytes(raw[6:8], "little") & 0x800  # bit 11 clear in the first local header
    return raw


def plain_zip(files: dict[str, bytes], *, encrypt_names: set[str] | None = None) -> bytes:
    """A UTF-8 zip; members named in `encrypt_names` get the encryption flag (content left as is)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    raw = bytearray(buf.getvalue())
    if encrypt_names:
        _set_encrypted_flag(raw, encrypt_names)
    return bytes(raw)


def _set_encrypted_flag(raw: bytearray, names: set[str]) -> None:
    # Flip general-purpose bit 0 in both local and central headers: readers must refuse to decrypt.
    for sig, flag_off, name_len_off, name_off in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
        i = raw.find(sig)
        while i >= 0:
            n = struct.unpack_from("<H", raw, i + name_len_off)[0]
            name = bytes(raw[i + name_off : i + name_off + n]).decode("utf-8", "replace")
            if name in names:
                flags = struct.unpack_from("<H", raw, i + flag_off)[0] | 0x1
                struct.pack_into("<H", raw, i + flag_off, flags)
            i = raw.find(sig, i + 4)


def ratio_bomb(uncompressed_mb: int = 300) -> bytes:
    """A small zip that inflates to `uncompressed_mb` of zeros (declares its size honestly)."""
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("zeros.bin", "w", force_zip64=True) as fh,
    ):
        chunk = b"\x00" * (1 << 20)
        for _ in range(uncompressed_mb):
            fh.write(chunk)
    return buf.getvalue()


def lying_bomb(real_mb: int = 80, declared: int = 1000) -> bytes:
    """A zip whose headers declare a tiny size while the deflate stream inflates to `real_mb` MB."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = b"".join(comp.compress(b"\x00" * (1 << 20)) for _ in range(real_mb)) + comp.flush()
    name = b"small.txt"
    crc = 0
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), declared, len(name), 0
    )
    central = struct.pack(
        "<4sHHHHHHIIIHHHHHII",
        b"PK\x01\x02",
        20,
        20,
        0,
        8,
        0,
        0,
        crc,
        len(body),
        declared,
        len(name),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    cd_off = len(local) + len(name) + len(body)
    cd = central + name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(cd), cd_off, 0)
    return local + name + body + cd + end


def many_members_zip(n: int = 5000) -> bytes:
    """A zip with thousands of tiny members (member-count limit)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr(f"f{i}.txt", b"x")
    return buf.getvalue()


def traversal_zip() -> bytes:
    """Members named ../../etc/passwd and /abs/path: must be read into memory, never written out."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil.txt", b"evil")
        zf.writestr("/abs/evil2.txt", b"evil2")
        zf.writestr("ok/承诺书.txt", "承诺书 本单位对本申请材料的真实性负责。".encode())
    return buf.getvalue()


def xxe_docx() -> bytes:
    """A minimal .docx whose document.xml declares an external entity (file:///etc/passwd) and uses it."""
    ct = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
        '<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
        "<w:t>承诺书 &xxe; &lol2;</w:t></w:r></w:p></w:body></w:document>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", ct)
        zf.writestr("_rels/.rels", rels)
        zf.writestr("word/document.xml", doc)
    return buf.getvalue()


def image_bomb_png(side: int = 30000) -> bytes:
    """A small PNG declaring side×side pixels (decompression bomb for naive image loaders)."""
    raw_row = b"\x00" + b"\x00" * ((side + 7) // 8)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(raw_row) for _ in range(side)) + comp.flush()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    """The first part of a file, as a mail client that gave up half-way leaves it."""
    return data[: max(1, int(len(data) * keep))]


def looping_pdf() -> bytes:
    """A PDF whose page content draws a form XObject that draws itself (an operator-list cycle)."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << /XObject << /X1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
    ]
    content = b"q /X1 Do Q"
    objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    xcontent = b"q 0.5 0 0 0.5 0 0 cm /X1 Do Q"
    objs.append(
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 200 200] /Resources << /XObject << /X1 5 0 R >> >> "
        b"/Length %d >>\nstream\n" % len(xcontent) + xcontent + b"\nendstream"
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


# ---------------------------------------------------------------- cached form fixtures


_FORM_CACHE: dict[tuple[str, str, int], tuple[Any, bytes]] = {}
# One LibreOffice start per this many files: a single start over a few hundred files has been seen to
# stop converting part-way (the rest came back empty).
_LO_CHUNK = 60


def form_pdfs(cases: list[tuple[str, str, int]]) -> list[tuple[Any, bytes]]:
    """(GeneratedForm, text PDF via formgen.to_pdf) per (kind, variant, seed), cached per process."""
    from tests.formgen import make_form, to_pdf

    todo = [c for c in dict.fromkeys(cases) if c not in _FORM_CACHE]
    gens = [make_form(k, seed=s, variant=v) for k, v, s in todo]
    for i in range(0, len(gens), _LO_CHUNK):
        chunk = gens[i : i + _LO_CHUNK]
        try:
            pdfs = to_pdf([g.data for g in chunk], timeout=600)
        except RuntimeError:  # one file lost: convert them one by one
            pdfs = [to_pdf(g.data) for g in chunk]
        for c, g, pdf in zip(todo[i : i + _LO_CHUNK], chunk, pdfs, strict=True):
            _FORM_CACHE[c] = (g, pdf)
    return [_FORM_CACHE[c] for c in cases]
