"""Generate applications (all their files) and the emails that carry them, for end-to-end tests,
the demo mailbox and the season rehearsal.

    plans = [AppPlan(Kind.form_model, seed=1), AppPlan(Kind.form_scenario, seed=2, files={"word", "pdf"})]
    built = build_applications(plans)          # one LibreOffice start for all PDFs
    raw = compose(built[0].applicant.sender, "申报材料", built[0].attachments(), sent=...)

Every AppPlan knows what the checks must find (`expected_problem_codes`), so tests can assert exactly.
Files: "word" (.docx form), "pdf" (the form as PDF: text PDF, or an image-only stamped scan when
scan=True), "commitment" (承诺书 .docx), "license" (营业执照 image), "evidence" (a proof PDF/image).
"""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from parsers.types import Kind
from tests import formgen

CST = timezone(timedelta(hours=8))
DEADLINE = datetime(2026, 7, 7, 17, 0, tzinfo=CST)
MAILBOX = "whaicj@126.com"
ALL_FILES = frozenset({"word", "pdf", "commitment", "license", "evidence"})
FORM_KINDS = (Kind.form_scenario, Kind.form_model, Kind.form_platform, Kind.form_terminal)
LETTER = {Kind.form_scenario: "S", Kind.form_model: "M", Kind.form_platform: "P", Kind.form_terminal: "T"}


@dataclass
class Applicant:
    org: str
    credit_code: str
    district: str
    sender: str
    contact: str

    @classmethod
    def make(cls, seed: int, *, domain: str = "qq.com") -> Applicant:
        rng = random.Random(f"applicant:{seed}")
        local = f"{rng.randint(10_000_000, 999_999_999)}" if domain == "qq.com" else f"user{seed}"
        return cls(
            org=formgen.org_name(rng),
            credit_code=formgen.credit_code(rng),
            district=rng.choice(formgen.DISTRICTS),
            sender=f"{local}@{domain}",
            contact=formgen.person_name(rng),
        )


@dataclass
class AppPlan:
    """One application to generate: which form, who, which files, and how."""

    kind: Kind
    seed: int = 0
    applicant: Applicant | None = None
    files: frozenset[str] | set[str] = ALL_FILES
    variant: str = "plain"
    scan: bool = False  # the PDF is an image-only stamped scan (OCR) instead of a text PDF
    seal: bool = True
    values: dict[str, Any] = field(default_factory=dict)  # overrides of the form's field values

    def __post_init__(self) -> None:
        self.files = frozenset(self.files)
        if self.applicant is None:
            self.applicant = Applicant.make(self.seed)


@dataclass
class BuiltApplication:
    plan: AppPlan
    form: formgen.GeneratedForm
    files: dict[str, tuple[str, bytes]]  # item -> (filename, bytes)

    @property
    def applicant(self) -> Applicant:
        assert self.plan.applicant is not None
        return self.plan.applicant

    @property
    def project(self) -> str:
        return str(self.form.expected_fields.get("project_name", ""))

    def attachments(self, items: set[str] | None = None) -> list[tuple[str, bytes]]:
        return [f for item, f in self.files.items() if items is None or item in items]


def build_applications(plans: list[AppPlan]) -> list[BuiltApplication]:
    """Files of every plan; all PDFs come from one LibreOffice run."""
    from tests import scangen

    forms = []
    for p in plans:
        assert p.applicant is not None
        values = {"org_name": p.applicant.org, "applicant": p.applicant.org, "credit_code": p.applicant.credit_code}
        values.update(p.values)
        forms.append(formgen.make_form(p.kind, seed=p.seed, variant=p.variant, values=values))
    need_pdf = [i for i, p in enumerate(plans) if "pdf" in p.files or "evidence" in p.files]
    pdfs: dict[int, bytes] = {}
    evidence_docs = {i: _evidence_docx(plans[i]) for i in need_pdf if "evidence" in plans[i].files}
    batch = [forms[i].data for i in need_pdf if "pdf" in plans[i].files] + list(evidence_docs.values())
    converted = formgen.to_pdf(batch) if batch else []
    converted = converted if isinstance(converted, list) else [converted]
    it = iter(converted)
    for i in need_pdf:
        if "pdf" in plans[i].files:
            pdfs[i] = next(it)
    evidence_pdfs = {i: next(it) for i in evidence_docs}

    out = []
    for i, (p, form) in enumerate(zip(plans, forms, strict=True)):
        assert p.applicant is not None
        no = {
            Kind.form_scenario: "附件1",
            Kind.form_model: "附件2",
            Kind.form_platform: "附件3",
            Kind.form_terminal: "附件4",
        }[p.kind]
        files: dict[str, tuple[str, bytes]] = {}
        if "word" in p.files:
            files["word"] = (f"{no} {p.applicant.org}申报书.docx", form.data)
        if "pdf" in p.files:
            pdf = pdfs[i]
            if p.scan:
                pdf = scangen.scan_pdf(pdf, org_name=p.applicant.org, seal=p.seal, seed=p.seed)
            elif p.seal:
                pdf = stamp_text_pdf(pdf, p.applicant.org)
            files["pdf"] = (f"{no} {p.applicant.org}申报书（盖章扫描件）.pdf", pdf)
        if "commitment" in p.files:
            files["commitment"] = (
                f"承诺书-{p.applicant.org}.docx",
                formgen.make_commitment(p.applicant.org, seed=p.seed).data,
            )
        if "license" in p.files:
            files["license"] = (
                f"营业执照副本-{p.applicant.org}.png",
                scangen.license_image(p.applicant.org, p.applicant.credit_code, seed=p.seed),
            )
        if "evidence" in p.files:
            files["evidence"] = (f"证明材料-软件著作权登记证书-{p.applicant.org}.pdf", evidence_pdfs[i])
        out.append(BuiltApplication(p, form, files))
    return out


def stamp_text_pdf(pdf: bytes, org: str) -> bytes:
    """A text PDF with a red seal image placed on its first and last page (signed, stamped, exported)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from tests import scangen

    seal = scangen.draw_seal(240, org).convert("RGBA")
    # Composite on white: a JPEG has no transparency, and the seal sits on white paper anyway.
    from PIL import Image

    flat = Image.new("RGB", seal.size, (255, 255, 255))
    flat.paste(seal, mask=seal.split()[3])
    buf = io.BytesIO()
    flat.save(buf, "JPEG", quality=85)
    doc = pdfium.PdfDocument(pdf)
    for index in {0, len(doc) - 1}:
        page = doc[index]
        w, h = page.get_size()
        img = pdfium.PdfImage.new(doc)
        img.load_jpeg(io.BytesIO(buf.getvalue()), inline=True)
        size = w * 0.22
        img.set_matrix(pdfium.PdfMatrix().scale(size, size).translate(w * 0.55, h * (0.62 if index == 0 else 0.2)))
        page.insert_obj(img)
        page.gen_content()
    out = io.BytesIO()
    doc.save(out)
    del pdfium_c
    return out.getvalue()


def _evidence_docx(plan: AppPlan) -> bytes:
    import docx

    assert plan.applicant is not None
    doc = docx.Document()
    for line in formgen.evidence_text("software", seed=plan.seed).splitlines():
        doc.add_paragraph(line.replace(formgen.org_name(random.Random(f"evidence:{plan.seed}")), plan.applicant.org))
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def zip_files(files: list[tuple[str, bytes]], *, gbk_names: bool = True) -> bytes:
    """A .zip as Windows Chinese tools write it: member names in GBK without the UTF-8 flag."""
    if gbk_names:
        from tests import scangen

        return scangen.gbk_zip(dict(files))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data)
    return buf.getvalue()


_CTYPES = {
    ".docx": ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ".doc": ("application", "msword"),
    ".pdf": ("application", "pdf"),
    ".png": ("image", "png"),
    ".jpg": ("image", "jpeg"),
    ".zip": ("application", "zip"),
    ".rar": ("application", "x-rar-compressed"),
    ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


def compose(
    sender: str,
    subject: str,
    attachments: list[tuple[str, bytes]],
    *,
    sent: datetime,
    body: str = "您好！附件为我单位申报材料，请查收。",
    sender_name: str | None = None,
    reply_to: str | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    octet_stream: bool = False,
) -> bytes:
    """An email as a mail client would send it to the call's mailbox."""
    m = EmailMessage()
    m["From"] = f"{sender_name} <{sender}>" if sender_name else sender
    m["To"] = MAILBOX
    m["Subject"] = subject
    m["Date"] = format_datetime(sent)
    m["Message-ID"] = message_id or make_msgid(domain=sender.split("@")[-1])
    if reply_to:
        m["Reply-To"] = reply_to
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    for name, data in attachments:
        ext = name[name.rfind(".") :].lower()
        maintype, subtype = (
            ("application", "octet-stream") if octet_stream else _CTYPES.get(ext, ("application", "octet-stream"))
        )
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(m)


def season_time(day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    """A moment of the season: day 0 is the deadline day (2026-07-07), negative days before it."""
    return DEADLINE.replace(hour=hour, minute=minute, second=second) + timedelta(days=day)
