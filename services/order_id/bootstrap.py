from __future__ import annotations

from services.order_id.boundary import BOUNDARY
from services.order_id.config import OrderIdSettings
from services.order_id.fulfilment import Simulator as Fulfilment
from services.order_id.handlers import Deps
from services.order_id.orders import PostgresOrders
from shared.clock import Clock, utc_now
from shared.runtime import Service


def build(settings: OrderIdSettings, clock: Clock = utc_now) -> Service:
    fulfilment = Fulfilment(settings.sim_new_delay_s, PostgresOrders)
    service = Service(BOUNDARY, settings, deps=Deps(fulfilment, settings.fulfilment), clock=clock)
    service.add_job("fulfilment-simulator", lambda: fulfilment.job.run(service.transaction, clock))
    return service
