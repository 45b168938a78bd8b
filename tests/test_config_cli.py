"""Configuration strictness, file ingest (.eml, folders, Maildir, mbox), replay and CLI exit codes."""

from __future__ import annotations

import json
import mailbox
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from intake.config import ConfigError, load_config
from tests import mailgen
from tests.support import REPO, run_intake, write_config


def test_shipped_config_loads_with_spec_defaults() -> None:
    cfg = load_config(REPO / "config.toml")
    assert cfg.call.deadline.isoformat() == "2026-07-07T17:00:00+08:00"
    assert cfg.call.timezone == "Asia/Shanghai"
    assert (cfg.mailbox.host, cfg.mailbox.port, cfg.mailbox.tls) == ("imap.126.com", 993, "ssl")
    assert cfg.mailbox.password_env == "INTAKE_IMAP_PASSWORD"
    assert cfg.mailbox.poll_interval == timedelta(minutes=2)
    assert (cfg.smtp.host, cfg.smtp.port, cfg.smtp.from_) == ("smtp.126.com", 465, "whaicj@126.com")
    assert (cfg.dashboard.host, cfg.dashboard.port) == ("127.0.0.1", 8000)
    assert cfg.db_url == f"sqlite:///{REPO / 'data' / 'intake.db'}"


def test_shipped_config_lists_every_key_with_its_default_and_a_comment() -> None:
    import tomllib

    from intake.config import Config

    text = (REPO / "config.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    defaults = Config()
    for section in Config.model_fields:
        if section == "base_dir":
            continue
        sub = getattr(defaults, section)
        for key, field in type(sub).model_fields.items():
            if key.startswith("resolved_"):
                continue
            name = field.alias or key
            assert name in data.get(section, {}), f"[{section}] {name} missing from config.toml"
            parsed = getattr(load_config(REPO / "config.toml"), section)
            assert getattr(parsed, key) == getattr(sub, key), f"[{section}] {name} differs from the default"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", "[")) and "=" in line:
            assert lines[i - 1].startswith("#"), f"config.toml line {i + 1} ({line!r}) has no comment above it"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[mailbox]\nport = "993"\n', "mailbox.port: Input should be a valid integer"),
        ('[mailbox]\npoll_intervall = "2m"\n', "mailbox.poll_intervall: unknown key"),
        ('[mailboxes]\nhost = "x"\n', "mailboxes: unknown key"),
        ('[call]\ndeadline = "2026-07-07T17:00:00"\n', "call.deadline"),
        ('[call]\ntimezone = "Mars/Olympus"\n', "unknown time zone"),
        ('[mailbox]\ntls = "none"\nhost = "imap.126.com"\n', "only allowed for 127.0.0.1"),
        ('[mailbox]\npoll_interval = "soon"\n', "expected a duration"),
        ('[mailbox]\nafter = "delete"\n', "mailbox.after"),
        ('[pipeline]\nstages = ["parse_message", "no_such_stage"]\n', "unknown stage(s) no_such_stage"),
        ("[mailbox\n", "not valid TOML"),
    ],
)
def test_bad_config_stops_start_up_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    res = run_intake("check-config", config=path)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr, res.stderr
    assert str(path) in res.stderr or "pipeline.stages" in res.stderr
    assert "Traceback" not in res.stderr


def test_secret_comes_from_the_named_environment_variable(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path))
    with pytest.raises(ConfigError, match="INTAKE_TEST_UNSET_VARIABLE is not set"):
        cfg.secret("INTAKE_TEST_UNSET_VARIABLE")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    res = run_intake("messages", "--class", "spam", config=config)
    assert res.returncode == 2 and "--class must be one of" in res.stderr
    res = run_intake("messages", "--no-such-option", config=config)
    assert res.returncode == 2 and "No such option" in res.stderr


def _corpus_bytes() -> list[tuple[str, bytes]]:
    return [(name, raw) for name, raw, _ in mailgen.corpus()]


def test_ingest_eml_folder_maildir_and_mbox_as_if_arrived(tmp_path: Path) -> None:
    corpus = _corpus_bytes()
    eml_dir = tmp_path / "in" / "eml"
    eml_dir.mkdir(parents=True)
    for name, raw in corpus[:10]:
        (eml_dir / f"{name}.eml").write_bytes(raw)
    md = mailbox.Maildir(tmp_path / "in" / "Maildir", create=True)
    for _name, raw in corpus[10:20]:
        md.add(raw)
    mb = mailbox.mbox(tmp_path / "in" / "archive.mbox", create=True)
    for _name, raw in corpus[20:]:
        mb.add(raw)
    mb.flush()
    config = write_config(tmp_path)
    single = eml_dir / f"{corpus[0][0]}.eml"

    res = run_intake(
        "ingest", str(eml_dir), str(tmp_path / "in" / "Maildir"), str(tmp_path / "in" / "archive.mbox"), config=config
    )
    assert res.returncode == 0, res.stderr
    assert f"{len(corpus)} new, 0 already known, 0 rejected" in res.stderr
    listed = json.loads(run_intake("messages", "--format", "json", config=config).stdout)
    assert len(listed) == len(corpus)
    assert {m["state"] for m in listed} == {"processed"}
    # Files carry no INTERNALDATE: arrival is the newest Received header, else Date — and it says which.
    assert {m["received_source"] for m in listed} <= {"received", "date", None}
    by_source = {m["source"]: m for m in listed}
    assert str(single) in by_source
    assert any("#" in s for s in by_source)  # Maildir / mbox members are named by container#key

    again = run_intake("ingest", str(single), str(tmp_path / "in" / "archive.mbox"), config=config)
    assert again.returncode == 0
    assert "0 new" in again.stderr
    assert len(json.loads(run_intake("messages", "--format", "json", config=config).stdout)) == len(corpus)


def test_ingest_reports_each_rejected_input_with_file_and_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(mailgen.corpus()[0][1])
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    pdf = tmp_path / "scan.eml"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\n")
    msg = tmp_path / "outlook.msg"
    msg.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    missing = tmp_path / "nope.eml"
    config = write_config(tmp_path)
    res = run_intake("ingest", str(good), str(empty), str(pdf), str(msg), str(missing), config=config)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert f"{empty}: empty file" in lines
    assert f"{pdf}: a document, not an email message" in lines
    assert any(line.startswith(f"{msg}: an Outlook .msg") for line in lines)
    assert f"{missing}: no such file or folder" in lines
    assert "1 new" in res.stderr and "Traceback" not in res.stderr
    assert len(json.loads(run_intake("messages", "--format", "json", config=config).stdout)) == 1


def test_messages_json_has_the_spec_keys(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _name, raw, exp = next(c for c in mailgen.corpus() if c[0] == "qq_cloud")
    (tmp_path / "m.eml").write_bytes(raw)
    assert run_intake("ingest", str(tmp_path / "m.eml"), config=config).returncode == 0
    item = json.loads(run_intake("messages", "--format", "json", config=config).stdout)[0]
    for key in (
        "sha256",
        "message_id",
        "from",
        "subject",
        "received_at",
        "class",
        "quarantined",
        "attachments",
        "cloud_links",
    ):
        assert key in item
    assert item["class"] == exp["class"] == "submission"
    assert item["quarantined"] is None
    assert item["received_at"].endswith("+08:00")
    assert item["cloud_links"] and all(u.startswith("http") for u in item["cloud_links"])


def test_quarantined_message_is_kept_listed_and_replayed_after_a_fix(tmp_path: Path) -> None:
    # A deployment mistake: stages in the wrong order. The message is kept and quarantined with the reason.
    config = write_config(tmp_path, sections={"pipeline": {"stages": ["store_attachments", "parse_message"]}})
    src = tmp_path / "m.eml"
    src.write_bytes(mailgen.corpus()[0][1])
    res = run_intake("ingest", str(src), config=config)
    assert res.returncode == 1
    assert f"{src}: quarantined: store_attachments: store_attachments needs parse_message" in res.stderr
    listed = json.loads(run_intake("messages", "--quarantined", "--format", "json", config=config).stdout)
    assert len(listed) == 1 and listed[0]["quarantined"].startswith("store_attachments:")

    # The fix, then replay: same message, same id, processed once.
    config = write_config(tmp_path, sections={"pipeline": {"stages": ["parse_message", "store_attachments"]}})
    res = run_intake("replay", str(listed[0]["id"]), config=config)
    assert res.returncode == 0, res.stderr
    after = json.loads(run_intake("messages", "--format", "json", config=config).stdout)
    assert [(m["id"], m["state"], m["quarantined"]) for m in after] == [(listed[0]["id"], "processed", None)]
    assert run_intake("replay", "999", config=config).returncode == 1


def test_disk_trouble_during_processing_is_retried_not_quarantined(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    src = tmp_path / "m.eml"
    src.write_bytes(next(raw for name, raw, _ in mailgen.corpus() if name == "octet_stream_parts"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blobs").write_text("a file where the blob folder should be")  # writes will fail
    res = run_intake("ingest", str(src), config=config)
    assert res.returncode == 1
    assert "processing stopped, nothing is lost" in res.stderr and "Traceback" not in res.stderr
    listed = json.loads(run_intake("messages", "--format", "json", config=config).stdout)
    assert [m["state"] for m in listed] == ["new"]

    (tmp_path / "data" / "blobs").unlink()
    res = run_intake("ingest", str(src), config=config)  # known bytes; pending work is processed
    assert res.returncode == 0, res.stderr
    listed = json.loads(run_intake("messages", "--format", "json", config=config).stdout)
    assert [m["state"] for m in listed] == ["processed"]
    assert len(listed[0]["attachments"]) == 2


def test_demo_config_is_valid() -> None:
    demo = REPO / "demo" / "config.toml"
    if not demo.exists():
        pytest.fail("demo/config.toml is missing")
    cfg = load_config(demo)
    assert cfg.store.url.startswith("sqlite")
    assert cfg.dashboard.host == "127.0.0.1"
    assert shutil.which("soffice") is not None
