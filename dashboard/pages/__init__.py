"""The dashboard's pages, one module per area; ROUTERS is what the app includes."""

from __future__ import annotations

from dashboard.pages import applications, auth, documents, messages, overview, paper, reconcile

ROUTERS = [
    auth.router,
    overview.router,
    applications.router,
    documents.router,
    messages.router,
    paper.router,
    reconcile.router,
]
