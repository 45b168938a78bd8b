"""Overview: counts by status, direction and district, arrivals against the deadline, problems, health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from dashboard import charts, queries
from dashboard.web import db, render, state

router = APIRouter()


@router.get("/")
def overview(request: Request, s: Annotated[Session, Depends(db)]) -> Response:
    st = state(request)
    cfg = st.config
    ov = queries.overview(s)
    health = getattr(st.daemon, "health", None)
    return render(
        request,
        "overview.html",
        ov=ov,
        health=health,
        deadline=cfg.call.deadline,
        form_types=queries.FORM_TYPES,
        statuses=queries.STATUSES,
        daily=charts.daily(ov.arrivals, cfg.call.deadline, cfg.call.tz),
        hourly=charts.hourly(ov.arrivals, cfg.call.deadline, cfg.call.tz),
        mailbox=cfg.mailbox,
    )
