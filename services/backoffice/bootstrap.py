"""Wires the back-office console: its task subscription, its operators' API and its pages."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import Request, Response
from fastapi.staticfiles import StaticFiles

from services.backoffice import api, pages
from services.backoffice.boundary import BOUNDARY
from services.backoffice.config import SESSION_KEYRING, BackofficeSettings
from services.backoffice.console import Console
from services.backoffice.handlers import Deps
from services.backoffice.operators import OperatorAuth
from shared.clock import Clock, utc_now
from shared.http.failures import FailureThrottle
from shared.http.form_limit import FormLimit
from shared.http.pages import SECURITY_HEADERS, session_keyring
from shared.http.sessions import SessionCodec
from shared.runtime import Service
from shared.sealing import keyring_or_exit
from shared.secrets import PEPPER_WHY, required

SESSION_CONTEXT = "arcserve-backoffice-session"  # its cookies never open anywhere else


def build(settings: BackofficeSettings, clock: Clock = utc_now) -> Service:
    keyring = keyring_or_exit(settings.license_key_keyring.get_secret_value())
    pepper = required("ARCSERVE_API_KEY_PEPPER", settings.api_key_pepper.get_secret_value(), PEPPER_WHY)
    codec = SessionCodec(session_keyring(settings.session_keyring.get_secret_value(), SESSION_KEYRING, "console"),
                         settings.session_max_age_s, SESSION_CONTEXT)
    service = Service(BOUNDARY, settings, deps=Deps(), clock=clock)
    auth = OperatorAuth(lambda: service.pool, pepper,
                        FailureThrottle(settings.auth_failure_burst, settings.auth_failure_refill_s),
                        settings.trusted_user_header)
    console = Console(lambda: service.pool, service.broker, keyring, BOUNDARY.source, clock)
    service.app.include_router(api.router(console, auth))
    service.app.include_router(pages.router(console, auth, codec, secure_cookies=settings.secure_cookies))
    service.app.add_middleware(FormLimit, api_prefix="/ops/")
    service.app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")

    @service.app.middleware("http")
    async def page_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"  # pages and answers hold what operators typed
        return response

    return service
