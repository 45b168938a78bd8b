"""Stage that turns the message's documents into applications: regroup, recheck, receipts (issue 4)."""

from __future__ import annotations

from intake.pipeline import MessageContext, stage
from review.service import regroup


@stage("applications")
def applications_stage(ctx: MessageContext) -> None:
    """Regroup what this message can affect and recheck those applications, in the message's transaction."""
    if ctx.message.msg_class != "submission" or ctx.message.id is None:
        return
    result = regroup(ctx.session, ctx.services.config, message_ids={ctx.message.id})
    ctx.data["applications"] = result
