from __future__ import annotations

from services.license_issuer.boundary import BOUNDARY
from services.license_issuer.config import LicenseIssuerSettings
from services.license_issuer.handlers import Deps
from shared.clock import Clock, utc_now
from shared.issuance import Simulator
from shared.runtime import Service
from shared.sealing import keyring_or_exit


def build(settings: LicenseIssuerSettings, clock: Clock = utc_now) -> Service:
    deps = Deps(Simulator(settings.sim_new_delay_s, settings.sim_change_delay_s),
                keyring_or_exit(settings.license_key_keyring.get_secret_value()))
    return Service(BOUNDARY, settings, deps=deps, clock=clock)
