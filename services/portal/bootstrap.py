"""Wires the portal: the pages, `/v1` forwarded to intake and status, static files, the
security headers every answer carries, and its own health and readiness (and, on its
internal operator port, its metrics)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from services.portal import forward, pages
from services.portal.config import SESSION_KEYRING, PortalSettings
from services.portal.upstream import CLIENT, Upstream
from shared.config import FORWARDING_SECRET
from shared.contracts import asyncapi
from shared.http import openapi
from shared.http.errors import error_response, install_error_handlers
from shared.http.form_limit import FormLimit
from shared.http.observe import Observe
from shared.http.pages import SECURITY_HEADERS, session_keyring
from shared.http.probes import Probes
from shared.http.server import HttpServer
from shared.http.sessions import SessionCodec
from shared.observability import tracing
from shared.secrets import FORWARDING_WHY, optional

log = logging.getLogger(__name__)
SESSION_CONTEXT = "arcserve-portal-session"  # its cookies never open anywhere else
NAME = "portal"
class Portal:
    def __init__(self, settings: PortalSettings):
        self.name = NAME
        self.settings = settings
        self.stopping = asyncio.Event()
        self.upstream = Upstream(settings.intake_url, settings.status_url, settings.upstream_timeout_s, optional(
            FORWARDING_SECRET, settings.forwarding_secret.get_secret_value(), FORWARDING_WHY))
        codec = SessionCodec(session_keyring(settings.session_keyring.get_secret_value(), SESSION_KEYRING, "portal"),
                             settings.session_max_age_s,
                             SESSION_CONTEXT)
        self.app = FastAPI(title="arcserve-licensing portal", docs_url=None, redoc_url=None, openapi_url=None)
        install_error_handlers(self.app)
        self.app.middleware("http")(self._headers)
        self.app.add_middleware(FormLimit, api_prefix="/v1/")
        self.app.add_middleware(Observe, service=NAME)
        tracing.configure(NAME, settings.traces_exporter)
        tracing.instrument(self.app)  # and its httpx client sends the trace on with what it forwards
        self.probes = Probes(NAME, self.upstream.ready)
        self.probes.add_to(self.app)
        self._add_documents()
        self.app.include_router(forward.router(self.upstream))
        self.app.include_router(pages.router(self.upstream, codec, secure_cookies=settings.secure_cookies))
        self.app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")
        self._server = HttpServer(self.app, host=settings.host, port=settings.port, name=NAME,
                                  grace_s=settings.drain_timeout_s)
        self._operator_server = HttpServer(self.probes.operator_app(), host=settings.host, port=settings.metrics_port,
                                           name=f"{NAME}-operator", grace_s=1)

    async def start(self) -> None:
        await self._operator_server.start()
        await self._server.start()
        log.info("portal ready on port %d (intake %s, status %s)", self.bound_port,
                 self.settings.intake_url, self.settings.status_url)

    async def stop(self) -> None:
        self.stopping.set()
        await self._server.stop()
        await self.upstream.close()
        await self._operator_server.stop()
        log.info("portal stopped")

    @property
    def bound_port(self) -> int:
        return self._server.bound_port

    @property
    def bound_metrics_port(self) -> int:
        return self._operator_server.bound_port

    async def _headers(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Whom the API is called for, while this request is answered (upstream.py); the peer's
        # address, or the one a proxy named where uvicorn trusts it (FORWARDED_ALLOW_IPS).
        CLIENT.set(request.client.host if request.client else None)
        response = await call_next(request)
        if not request.url.path.startswith("/v1/"):  # the API's answers are the services' own
            response.headers.update(SECURITY_HEADERS)
            if not request.url.path.startswith("/static/"):
                response.headers["Cache-Control"] = "no-store"  # pages show license keys
        return response

    def _add_documents(self) -> None:
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


def build(settings: PortalSettings) -> Portal:
    return Portal(settings)
