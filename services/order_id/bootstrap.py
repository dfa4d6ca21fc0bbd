from __future__ import annotations

from services.order_id import handlers
from shared.config import Settings
from shared.messaging.topology import ORDER_ID
from shared.runtime import Service
from shared.workers import build_worker


def build(settings: Settings, port: int | None = None) -> Service:
    port = settings.order_id_port if port is None else port
    return build_worker("order-id", settings, port, ORDER_ID, handlers.ROUTES)
