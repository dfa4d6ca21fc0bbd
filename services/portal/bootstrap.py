"""Wires the portal: the pages, `/v1` forwarded to intake and status, static files, the
security headers every answer carries, and its own health, readiness and metrics."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.portal import forward, pages
from services.portal.config import SESSION_KEYRING, PortalSettings
from services.portal.form_limit import FormLimit
from services.portal.sessions import SessionCodec
from services.portal.upstream import Upstream
from shared import metrics
from shared.contracts import asyncapi
from shared.http import openapi
from shared.http.errors import error_response, install_error_handlers
from shared.http.server import HttpServer
from shared.sealing import Keyring, KeyringError

log = logging.getLogger(__name__)
NAME = "portal"
# Scripts and styles only from this origin, no inline ones, no frames, forms only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def session_keyring(text: str) -> Keyring:
    if not text:
        raise SystemExit(f"{SESSION_KEYRING} (or {SESSION_KEYRING}_FILE) is not set: the portal seals its session "
                         "cookies with it; `make run` makes one for you; see README, Configuration")
    try:
        return Keyring.parse(text, SESSION_KEYRING)
    except KeyringError as exc:
        raise SystemExit(str(exc)) from None


class Portal:
    def __init__(self, settings: PortalSettings, port: int | None = None):
        self.name = NAME
        self.settings = settings
        self.stopping = asyncio.Event()
        self.upstream = Upstream(settings.intake_url, settings.status_url, settings.upstream_timeout_s)
        codec = SessionCodec(session_keyring(settings.session_keyring), settings.session_max_age_s)
        self.app = FastAPI(title="arcserve-licensing portal", docs_url=None, redoc_url=None, openapi_url=None)
        install_error_handlers(self.app)
        self.app.middleware("http")(self._headers)
        self.app.add_middleware(FormLimit)
        self._add_health_routes()
        self.app.include_router(forward.router(self.upstream))
        self.app.include_router(pages.router(self.upstream, codec, secure_cookies=settings.secure_cookies))
        self.app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")
        self._server = HttpServer(self.app, host=settings.host, port=settings.port if port is None else port,
                                  name=NAME, grace_s=settings.drain_timeout_s)

    async def start(self) -> None:
        await self._server.start()
        log.info("portal ready on port %d (intake %s, status %s)", self.bound_port,
                 self.settings.intake_url, self.settings.status_url)

    async def stop(self) -> None:
        self.stopping.set()
        await self._server.stop()
        await self.upstream.close()
        log.info("portal stopped")

    @property
    def bound_port(self) -> int:
        return self._server.bound_port

    async def _headers(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        if not request.url.path.startswith("/v1/"):  # the API's answers are the services' own
            response.headers.update(SECURITY_HEADERS)
            if not request.url.path.startswith("/static/"):
                response.headers["Cache-Control"] = "no-store"  # pages show license keys
        route = request.scope.get("route")
        metrics.HTTP_LATENCY.labels(NAME, getattr(route, "path", "unmatched"), str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

    def _add_health_routes(self) -> None:
        @self.app.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": NAME}

        @self.app.get("/readyz", include_in_schema=False)
        async def readyz(response: Response) -> dict[str, str]:
            if await self.upstream.ready():
                return {"status": "ready", "service": NAME}
            response.status_code = 503
            return {"status": "not_ready", "service": NAME}

        contract = asyncapi.document()
        one_origin: list[dict[str, Any]] = []  # merged once both services answered

        @self.app.get("/openapi.json", include_in_schema=False)
        async def openapi_document() -> Any:
            """Intake's and status's documents as one: the API this origin serves."""
            if not one_origin:
                try:
                    documents = [(await self.upstream.client.get(f"{base}/openapi.json", timeout=5)).raise_for_status().json()
                                 for base in (self.upstream.intake_url, self.upstream.status_url)]
                except httpx.HTTPError:
                    return error_response(503, "unavailable", "intake or status is not reachable; retry later")
                one_origin.append(openapi.merge(documents))
            return one_origin[0]

        @self.app.get("/asyncapi.json", include_in_schema=False)
        async def asyncapi_document() -> dict[str, Any]:
            """The AMQP contract for other systems; every event's `dataschema` points into it."""
            return contract

        @self.app.get("/metrics", include_in_schema=False)
        async def metrics_() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def build(settings: PortalSettings, port: int | None = None) -> Portal:
    return Portal(settings, port)
