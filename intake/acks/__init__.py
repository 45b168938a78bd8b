"""Acknowledgement emails (SPEC 8): decide, compose, queue in the outbox, send exactly once, never loop."""

from __future__ import annotations

from intake.acks.decide import Decision, decide
from intake.acks.outbox import AckSender, SendReport, enqueue, mark_sent, preview, retry
from intake.daemon import Job
from intake.pipeline import Services

# `intake.acks.decide` says who gets one, `intake.acks.render` what it says, `intake.acks.outbox` how it is
# queued and sent (its header comment has the exactly-once argument). The pipeline stage is `enqueue_ack`
# (intake/stages/acks.py); the daemon's sending job is `ack_job`, registered by intake/commands/acks.py.


def ack_job(services: Services) -> Job | None:
    """`intake run` sends pending acknowledgements every [ack] send_interval (none when off or dry-run)."""
    cfg = services.config
    if not cfg.ack.enabled or cfg.ack.dry_run:
        return None
    # Fail at start-up, naming the variable, rather than at the first acknowledgement.
    cfg.secret(cfg.smtp.password_env)
    if cfg.ack.sent_folder or cfg.ack.sent_check_folder:
        cfg.secret(cfg.mailbox.password_env)
    sender = AckSender(services)
    return Job("acks", cfg.ack.send_interval, sender.run_job)


__all__ = ["AckSender", "Decision", "SendReport", "ack_job", "decide", "enqueue", "mark_sent", "preview", "retry"]
