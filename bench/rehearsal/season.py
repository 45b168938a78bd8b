"""A season to play into the mailbox: messages with arrival times, and what intake must make of them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from parsers.types import Kind
from tests import formgen, mailgen, seasongen
from tests.seasongen import DEADLINE, Applicant, AppPlan, BuiltApplication, build_applications, compose


@dataclass
class SeasonMessage:
    """One email: its bytes, when the server receives it (INTERNALDATE), and when to drop it in (0..1 of
    the run), plus what intake must do with it."""

    name: str
    raw: bytes
    internaldate: datetime
    at: float  # fraction of the run's playing time
    message_id: str
    sender: str  # where an acknowledgement must go (Reply-To in From's domain, else From)
    ack: str  # "receipt" | "question" | "none"


@dataclass
class ExpectedApplication:
    org: str
    form_type: str
    must_have: set[str] = field(default_factory=set)  # problem codes that must be there
    must_not_have: set[str] = field(default_factory=set)


@dataclass
class Season:
    messages: list[SeasonMessage]
    applications: list[ExpectedApplication]

    @property
    def submissions(self) -> list[SeasonMessage]:
        return [m for m in self.messages if m.ack == "receipt"]


KINDS = (Kind.form_scenario, Kind.form_model, Kind.form_platform, Kind.form_terminal)


def _mid(raw: bytes) -> str:
    import email

    return str(email.message_from_bytes(raw).get("Message-ID", "")).strip()


def make_season(n_apps: int, *, seed: int = 1, scans: int = 1) -> Season:
    """`n_apps` applications (a trickle over weeks, then the rush of the last day, some after 17:00) and the
    other mail a call mailbox gets. Deterministic for a seed."""
    rng = random.Random(seed)
    plans: list[AppPlan] = []
    expect: list[ExpectedApplication] = []
    roles: list[str] = []
    for i in range(n_apps):
        kind = KINDS[i % 4]
        applicant = Applicant.make(1000 * seed + i, domain=rng.choice(["qq.com", "126.com", "163.com", "corp.cn"]))
        role = "normal"
        files = set(seasongen.ALL_FILES)
        # Licence images cost an OCR pass each: most applicants here send it inside the PDF bundle's
        # commitment-free set, a few as an image (the parsers' own tests cover licences at length).
        if i % 3:
            files.discard("license")
        r = i % 11
        if r == 3:
            role, files = "missing_pdf", files - {"pdf"}
        elif r == 5:
            role, files = "missing_evidence", files - {"evidence"}
        elif r == 7:
            role = "late"
        elif r == 9:
            role = "resubmitted"
        plans.append(AppPlan(kind, seed=1000 * seed + i, applicant=applicant, files=files, scan=i < scans))
        roles.append(role)
        e = ExpectedApplication(applicant.org, kind.form_type or "")
        if "license" not in files:
            e.must_have.add("missing_license")
        if role == "missing_pdf":
            e.must_have.add("missing_pdf")
        if role == "missing_evidence":
            e.must_have.add("missing_evidence")
        if role == "late":
            e.must_have.add("late")
        else:
            e.must_not_have.add("late")
        expect.append(e)
    built = build_applications(plans)
    # One project in two directions: the unit of application 1 also sends it as a 场景 (附件1).
    dup = plans[1].applicant
    assert dup is not None
    dup_plan = AppPlan(
        Kind.form_scenario,
        seed=1000 * seed + 999,
        applicant=dup,
        files={"word", "pdf"},
        values={"project_name": built[1].project},
    )
    built += build_applications([dup_plan])
    roles.append("duplicate")
    expect.append(ExpectedApplication(dup.org, "scenario", must_have={"duplicate_direction"}))
    expect[1].must_have.add("duplicate_direction")

    messages: list[SeasonMessage] = []
    rush_start = DEADLINE - timedelta(hours=6)

    def when(k: int, total: int) -> tuple[datetime, float]:
        """30 % trickle over three weeks (first half of the run), 70 % in the last six hours."""
        if k < int(total * 0.3):
            frac = k / max(1, int(total * 0.3))
            return DEADLINE - timedelta(days=21) + timedelta(days=20 * frac), 0.5 * frac
        frac = (k - int(total * 0.3)) / max(1, total - int(total * 0.3))
        return rush_start + timedelta(hours=5.9 * frac), 0.5 + 0.45 * frac

    district_group = [j for j, role in enumerate(roles) if role == "normal"][:3]
    total = len(built)
    for k, (app, role) in enumerate(zip(built, roles, strict=True)):
        if k in district_group[1:]:
            continue  # sent inside the district's archive below
        received, at = when(k, total)
        if role == "late":
            received, at = DEADLINE + timedelta(minutes=rng.randint(1, 90)), 0.97
        a = app.applicant
        if k == district_group[0]:
            messages.append(_district_email([built[j] for j in district_group], received, at))
            continue
        raw = compose(
            a.sender,
            f"申报材料-{a.org}",
            app.attachments(),
            sent=received - timedelta(seconds=40),
            sender_name=a.contact,
        )
        messages.append(SeasonMessage(f"app{k}", raw, received, at, _mid(raw), a.sender, "receipt"))
        if role == "resubmitted":
            later = received + timedelta(hours=2)
            raw2 = compose(
                a.sender,
                f"更正：{app.project}（以此为准）",
                [app.files["word"]],
                sent=later,
                body="前次材料有误，以此为准。",
            )
            messages.append(
                SeasonMessage(f"app{k}-v2", raw2, later, min(0.99, at + 0.02), _mid(raw2), a.sender, "receipt")
            )

    # The edges of the deadline, to the second: one just before, one exactly at 17:00:00.
    edge = build_applications(
        [
            AppPlan(Kind.form_terminal, seed=1000 * seed + 500, files={"word", "pdf", "commitment", "evidence"}),
            AppPlan(Kind.form_model, seed=1000 * seed + 501, files={"word", "pdf", "commitment", "evidence"}),
        ]
    )
    for app, received, late in [(edge[0], DEADLINE - timedelta(seconds=1), False), (edge[1], DEADLINE, True)]:
        a = app.applicant
        raw = compose(a.sender, f"申报材料-{a.org}", app.attachments(), sent=received - timedelta(seconds=30))
        messages.append(
            SeasonMessage(f"edge-{'late' if late else 'ontime'}", raw, received, 0.96, _mid(raw), a.sender, "receipt")
        )
        e = ExpectedApplication(a.org, app.plan.kind.form_type or "", must_have={"missing_license"})
        (e.must_have if late else e.must_not_have).add("late")
        expect.append(e)

    # What else a public mailbox receives.
    corpus = {name: (raw, exp) for name, raw, exp in mailgen.corpus()}
    extras = [
        ("qq_auto_reply", "none"),
        ("qq_holiday_gbk", "none"),
        ("bounce_dsn", "none"),
        ("out_of_office", "none"),
        ("list_mail", "none"),
        ("qq_cloud", "receipt"),
        ("netease_cloud", "receipt"),
    ]
    for j, (name, ack) in enumerate(extras):
        raw, _exp = corpus[name]
        if not _mid(raw):
            # The harness matches acknowledgements to messages by In-Reply-To: give each an identity.
            raw = f"Message-ID: <rehearsal-{name}-{seed}@mailgen.test>\r\n".encode() + raw
        received, at = when(int(total * (j + 1) / (len(extras) + 1)), total)
        sender = _reply_address(raw)
        messages.append(SeasonMessage(f"mail-{name}", raw, received, at, _mid(raw), sender, ack))
    q_at = DEADLINE - timedelta(days=4)
    raw = compose(
        "zhangsan@example.com",
        "咨询：联合申报单位最多几家？",
        [],
        sent=q_at,
        body="您好，请问同一项目最多可以几家单位联合申报？",
    )
    messages.append(SeasonMessage("question", raw, q_at, 0.3, _mid(raw), "zhangsan@example.com", "question"))
    messages.sort(key=lambda m: m.at)
    return Season(messages, expect)


def _reply_address(raw: bytes) -> str:
    import email
    from email.utils import parseaddr

    m = email.message_from_bytes(raw)
    sender = parseaddr(str(m.get("From") or ""))[1].lower()
    reply_to = parseaddr(str(m.get("Reply-To") or ""))[1].lower()
    # SECURITY.md F1: a Reply-To is honoured only in the From's own domain (else the mailbox is a relay).
    if reply_to and "@" in reply_to and reply_to.rpartition("@")[2] == sender.rpartition("@")[2]:
        return reply_to
    return sender


def _district_email(apps: list[BuiltApplication], received: datetime, at: float) -> SeasonMessage:
    rows = [
        {
            "section": app.plan.kind.form_type,
            "seq": i + 1,
            "district": "江汉区",
            "org_name": app.applicant.org,
            "project_name": app.project,
            "direction": "" if app.plan.kind == Kind.form_terminal else "其他",
            "description": "见申报书。",
            "contact_name": app.applicant.contact,
            "contact_phone": "027-85310000",
        }
        for i, app in enumerate(apps)
    ]
    for r in rows:
        if r["section"] == "terminal":
            r.pop("direction")
    summary = formgen.make_summary(
        rows, recommender="江汉区经济和信息化局", contact_name="李明", contact_phone="027-85310002"
    )
    rec = formgen.make_recommendation("江汉区", [(a.applicant.org, a.project) for a in apps])
    members = [(f"{a.applicant.org}/{n}", b) for a in apps for n, b in a.attachments()]
    members += [("附件5 江汉区汇总表.docx", summary.data), ("江汉区推荐意见.docx", rec.data)]
    raw = compose(
        "office@jianghan.gov.cn",
        "江汉区“人工智能+社会治理”申报材料汇总",
        [("江汉区申报材料.zip", seasongen.zip_files(members))],
        sent=received - timedelta(minutes=1),
        sender_name="江汉区经信局",
    )
    return SeasonMessage("district", raw, received, at, _mid(raw), "office@jianghan.gov.cn", "receipt")
