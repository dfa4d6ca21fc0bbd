from __future__ import annotations

from services.license_issuer.boundary import BOUNDARY
from services.license_issuer.config import LicenseIssuerSettings
from services.license_issuer.fulfilment import Simulator as Fulfilment
from services.license_issuer.handlers import Deps
from services.license_issuer.keys import PostgresKeys
from services.license_issuer.overdue import Overdue
from services.license_issuer.revocations import Revoker
from shared.clock import Clock, utc_now
from shared.runtime import Service
from shared.sealing import keyring_or_exit


def build(settings: LicenseIssuerSettings, clock: Clock = utc_now) -> Service:
    keyring = keyring_or_exit(settings.license_key_keyring.get_secret_value())
    fulfilment = Fulfilment(settings.sim_new_delay_s, settings.sim_change_delay_s, keyring=keyring, keys=PostgresKeys)
    overdue = Overdue(settings.fulfilment)
    revoker = Revoker(settings.fulfilment, settings.revocation_retry_s, settings.sim_change_delay_s, keyring=keyring)
    deps = Deps(keyring, fulfilment, settings.fulfilment, overdue.job.wake, revoker=revoker)
    service = Service(BOUNDARY, settings, deps=deps, clock=clock)
    service.add_job("fulfilment-simulator", lambda: fulfilment.job.run(service.transaction, clock))
    service.add_job("overdue-watch", lambda: overdue.job.run(service.transaction, clock))
    service.add_job("revocations", lambda: revoker.job.run(service.transaction, clock))
    service.on_scrape(overdue.read)
    service.on_scrape(revoker.read)
    return service
