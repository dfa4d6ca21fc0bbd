from __future__ import annotations

from functools import partial

from shared.config import Settings
from shared.issuance import Simulator
from shared.messaging.topology import LICENSE_ISSUER
from shared.runtime import Service
from services.license_issuer import handlers


def build(settings: Settings, port: int | None = None) -> Service:
    service = Service("license-issuer", settings, settings.license_issuer_port if port is None else port)
    backend = Simulator(settings.sim_new_delay_s, settings.sim_change_delay_s)
    ctx = handlers.Context(service, backend)
    service.consume(LICENSE_ISSUER, {t: partial(r, ctx) for t, r in handlers.ROUTES.items()})
    return service
