"""`intake serve`: the staff dashboard alone (no polling); `intake run` serves it beside the poller (issue 7)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from intake.cli import ConfigOpt, DbOpt, VerboseOpt, _context, app, err
from intake.daemon import register_server
from intake.pipeline import Services


@register_server
def _dashboard(services: Services, daemon: Any) -> Callable[[threading.Event], None]:
    # Imported when `intake run` starts, not by every command (FastAPI, templates).
    from dashboard.server import server_factory

    return server_factory(services, daemon)


@app.command()
def serve(
    config: ConfigOpt = Path("config.toml"),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
    host: Annotated[str | None, typer.Option("--host", help="Overrides [dashboard] host.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Overrides [dashboard] port.")] = None,
) -> None:
    """Serve the staff dashboard (no polling) until SIGTERM/SIGINT."""
    from dashboard.server import serve_until
    from intake.daemon import install_signal_handlers

    stop = threading.Event()
    install_signal_handlers(stop)
    with _context(config, db, verbose) as (services, _stages):
        dash = services.config.dashboard
        if host is not None or port is not None:
            dash = dash.model_copy(update={"host": host or dash.host, "port": port if port is not None else dash.port})
            services.config = services.config.model_copy(update={"dashboard": dash})
        err.print(f"dashboard on http://{dash.host}:{dash.port}/", markup=False, highlight=False)
        serve_until(services, None, stop)
