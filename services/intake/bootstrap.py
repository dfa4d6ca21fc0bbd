from __future__ import annotations

from services.intake import api
from services.intake.boundary import BOUNDARY
from shared.config import Settings
from shared.http.auth import Authenticator
from shared.runtime import Service


def build(settings: Settings, port: int | None = None) -> Service:
    # Intake only publishes, each with its confirm: no consumers, no outbox.
    service = Service(BOUNDARY, settings, settings.intake_port if port is None else port)
    service.app.include_router(
        api.router(service.broker, Authenticator(lambda: service.pool), BOUNDARY.source, settings.status_url.rstrip("/"))
    )
    return service
