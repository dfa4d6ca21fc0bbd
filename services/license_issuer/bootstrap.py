from __future__ import annotations

from services.license_issuer import handlers
from shared.config import Settings
from shared.messaging.topology import LICENSE_ISSUER
from shared.runtime import Service
from shared.workers import build_worker


def build(settings: Settings, port: int | None = None) -> Service:
    port = settings.license_issuer_port if port is None else port
    return build_worker("license-issuer", settings, port, LICENSE_ISSUER, handlers.ROUTES)
