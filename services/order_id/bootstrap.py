from __future__ import annotations

from services.order_id.boundary import BOUNDARY
from services.order_id.handlers import Deps
from shared.clock import Clock, utc_now
from shared.config import Settings
from shared.issuance import Simulator
from shared.runtime import Service


def build(settings: Settings, clock: Clock = utc_now) -> Service:
    deps = Deps(Simulator(settings.sim_new_delay_s, settings.sim_change_delay_s))
    return Service(BOUNDARY, settings, deps=deps, clock=clock)
