from __future__ import annotations

from services.order_id.boundary import BOUNDARY
from services.order_id.config import OrderIdSettings
from services.order_id.handlers import Deps
from shared.clock import Clock, utc_now
from shared.issuance import Simulator
from shared.runtime import Service


def build(settings: OrderIdSettings, clock: Clock = utc_now) -> Service:
    deps = Deps(Simulator(new_delay_s=settings.sim_new_delay_s))
    return Service(BOUNDARY, settings, deps=deps, clock=clock)
