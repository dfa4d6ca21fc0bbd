from __future__ import annotations

from functools import partial

from shared.config import Settings
from shared.issuance import Simulator
from shared.messaging.topology import ORDER_ID
from shared.runtime import Service
from services.order_id import handlers


def build(settings: Settings, port: int | None = None) -> Service:
    service = Service("order-id", settings, settings.order_id_port if port is None else port)
    backend = Simulator(settings.sim_new_delay_s, settings.sim_change_delay_s)
    ctx = handlers.Context(service, backend)
    service.consume(ORDER_ID, {t: partial(r, ctx) for t, r in handlers.ROUTES.items()})
    return service
