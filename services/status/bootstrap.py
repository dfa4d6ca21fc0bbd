"""Wires the status service: consumers and their routing tables, the read API."""
from __future__ import annotations

from functools import partial

from services.status import api, handlers
from shared.config import Settings
from shared.domain.calendar import BusinessCalendar, YearEndClosure
from shared.http.auth import Authenticator
from shared.messaging.topology import STATUS_RESULTS, STATUS_SUBMISSIONS
from shared.runtime import Service


def build(settings: Settings, port: int | None = None) -> Service:
    service = Service("status", settings, settings.status_port if port is None else port)
    ctx = handlers.Context(service, BusinessCalendar(YearEndClosure.parse(settings.year_end_closure)))
    service.consume(STATUS_SUBMISSIONS, {t: partial(r, ctx) for t, r in handlers.SUBMISSION_ROUTES.items()})
    service.consume(STATUS_RESULTS, {t: partial(r, ctx) for t, r in handlers.RESULT_ROUTES.items()})
    service.app.include_router(api.router(lambda: service.pool, Authenticator(lambda: service.pool)))
    return service
