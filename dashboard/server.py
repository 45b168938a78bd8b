"""Serve the dashboard with uvicorn in the calling thread until a stop event is set."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from intake.pipeline import Services

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon's handlers set the stop event, which ends it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def serve_until(services: Services, daemon: Any, stop_event: threading.Event) -> None:
    """Build the app and serve it on [dashboard] host:port; returns after `stop_event` is set."""
    from dashboard.app import create_app

    cfg = services.config.dashboard
    app = create_app(services, daemon)
    config = uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level="warning",
        access_log=False,
        # Proxy headers are interpreted by the app itself, and only when [dashboard] trust_proxy says so.
        proxy_headers=False,
        server_header=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)

    def watch() -> None:
        stop_event.wait()
        server.should_exit = True

    threading.Thread(target=watch, name="dashboard-stop", daemon=True).start()
    log.info("dashboard on http://%s:%d/", cfg.host, cfg.port)
    server.run()
    if not server.started and not stop_event.is_set():
        # Could not bind (port taken): say so instead of polling on without a dashboard unnoticed.
        raise RuntimeError(f"the dashboard could not listen on {cfg.host}:{cfg.port}")


def server_factory(services: Services, daemon: Any) -> Callable[[threading.Event], None]:
    """What `intake run` calls (intake.daemon.register_server): serve in the daemon's main thread."""

    def serve(stop_event: threading.Event) -> None:
        serve_until(services, daemon, stop_event)

    return serve
