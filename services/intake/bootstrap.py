from __future__ import annotations

from services.intake import api
from shared.config import Settings
from shared.http.auth import Authenticator
from shared.runtime import Service


def build(settings: Settings, port: int | None = None) -> Service:
    # Intake only publishes with confirms: no consumers, no outbox.
    service = Service("intake", settings, settings.intake_port if port is None else port, relay=False)
    service.app.include_router(
        api.router(service.broker, Authenticator(lambda: service.pool), settings.status_url.rstrip("/"))
    )
    return service
