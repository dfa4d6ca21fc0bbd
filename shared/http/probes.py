"""/healthz, /readyz and /metrics, the same in every process.

- `/healthz` (liveness): 503 only when the process is wedged, i.e. a restart is what would
  help: something it cannot run without has died (its outbox relay, say). A process that
  merely waits for the broker or the database is alive: restarting it would not bring them.
- `/readyz` (readiness): 503 until the process can do its work, and whenever it cannot:
  broker or database unreachable, schema behind.
- `/metrics` (Prometheus): only on the internal operator port, never on the public API's.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)
SCRAPE_REFRESH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Probes:
    name: str
    ready: Callable[[], Awaitable[bool]]
    wedged: Callable[[], str | None] = lambda: None  # what has died, if anything
    refresh: Callable[[], Awaitable[None]] | None = None  # gauges read at scrape time (the outbox backlog)

    def add_to(self, app: FastAPI) -> None:
        @app.get("/healthz", include_in_schema=False)
        async def healthz(response: Response) -> dict[str, str]:
            if (problem := self.wedged()) is not None:
                response.status_code = 503
                return {"status": "wedged", "service": self.name, "problem": problem}
            return {"status": "ok", "service": self.name}

        @app.get("/readyz", include_in_schema=False)
        async def readyz(response: Response) -> dict[str, str]:
            if await self.ready():
                return {"status": "ready", "service": self.name}
            response.status_code = 503
            return {"status": "not_ready", "service": self.name}

    def operator_app(self) -> FastAPI:
        """The internal port's app: the probes and /metrics."""
        app = FastAPI(title=f"arcserve-licensing {self.name}: operators", docs_url=None, redoc_url=None,
                      openapi_url=None)
        self.add_to(app)

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            if self.refresh is not None:
                try:
                    await asyncio.wait_for(self.refresh(), SCRAPE_REFRESH_TIMEOUT_S)
                except Exception as exc:  # the last values stay; the scrape still answers
                    log.warning("%s: metrics read at scrape time are stale (%r)", self.name, exc)
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        return app
