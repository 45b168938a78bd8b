"""Stage that queues the message's acknowledgement after its applications are written (issue 6)."""

from __future__ import annotations

from intake.acks.outbox import enqueue
from intake.pipeline import MessageContext, stage


@stage("enqueue_ack")
def enqueue_ack_stage(ctx: MessageContext) -> None:
    """Decide and compose the acknowledgement in the message's transaction: it is committed with the
    application data it reports, or not at all; the daemon's job sends it."""
    config = ctx.services.config
    if not config.ack.enabled or ctx.message.id is None:
        return
    ctx.data["ack"] = enqueue(ctx.session, config, ctx.message, ctx.services.clock())
