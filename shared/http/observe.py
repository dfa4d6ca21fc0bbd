"""Every HTTP request observed once, the same way in every process: its duration in
`arcserve_http_request_duration_seconds` (service, method, route, status) and one access-log
line. A plain ASGI middleware, so it sees the request's own context (its trace) and the
route the router matched, and adds no task per request.

The line names the route template and the path, never a query string's or a header's
values (a bearer key, a cookie); the tenant once authentication named it
(`request.state.tenant_id`, set by shared/http/auth.py)."""
from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.observability.tracing import UNTRACED_URLS

access = logging.getLogger("arcserve.access")
# Probes and scrapes every few seconds: counted, not logged.
QUIET_PATHS = frozenset(UNTRACED_URLS.split(","))
# HTTP lets a client send any token as its method: as a label, only these, else `other`, or
# anyone could grow every replica's metrics (and Prometheus) without end.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Observe:
    def __init__(self, app: ASGIApp, service: str):
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"
            metrics.HTTP_SECONDS.labels(self.service, method, route, str(status)).observe(seconds)
            if scope["path"] not in QUIET_PATHS:
                state = scope.get("state") or {}
                access.info("%s %s %d", method, scope["path"], status, extra={
                    "http": {"method": method, "path": scope["path"], "route": route, "status": status,
                             "duration_ms": round(seconds * 1000, 2)},
                    "tenant_id": state.get("tenant_id"),
                })
