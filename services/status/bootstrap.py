"""Wires the status service: its boundary, its handlers' dependencies, the read API."""
from __future__ import annotations

from services.status import api
from services.status.boundary import BOUNDARY
from services.status.domain.calendar import BusinessCalendar, YearEndClosure
from services.status.handlers import Deps
from shared.clock import Clock, utc_now
from shared.config import Settings
from shared.http.auth import Authenticator
from shared.runtime import Service


def build(settings: Settings, port: int | None = None, clock: Clock = utc_now) -> Service:
    try:
        closure = YearEndClosure.parse(settings.year_end_closure)
    except ValueError as exc:
        raise SystemExit(f"ARCSERVE_YEAR_END_CLOSURE: {exc}") from None
    deps = Deps(BusinessCalendar(closure))
    service = Service(BOUNDARY, settings, settings.status_port if port is None else port, deps=deps, clock=clock)
    service.app.include_router(api.router(lambda: service.pool, Authenticator(lambda: service.pool)))
    return service
