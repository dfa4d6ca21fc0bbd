"""Wires the status service: its boundary, its handlers' dependencies, the read API."""
from __future__ import annotations

from services.status import api
from services.status.boundary import BOUNDARY
from services.status.config import StatusSettings
from services.status.domain.calendar import BusinessCalendar, YearEndClosure
from services.status.handlers import Deps
from shared.clock import Clock, utc_now
from shared.config import FORWARDING_SECRET
from shared.http.auth import Authenticator
from shared.http.failures import FailureThrottle
from shared.http.ratelimit import limiter_for
from shared.runtime import Service
from shared.sealing import keyring_or_exit
from shared.secrets import FORWARDING_WHY, PEPPER_WHY, optional, required


def build(settings: StatusSettings, clock: Clock = utc_now) -> Service:
    closure = YearEndClosure.parse(settings.year_end_closure)  # validated with the settings
    keyring = keyring_or_exit(settings.license_key_keyring.get_secret_value())
    deps = Deps(BusinessCalendar(closure), keyring)
    service = Service(BOUNDARY, settings, deps=deps, clock=clock)
    auth = Authenticator(lambda: service.pool, settings.database_url,
                         required("ARCSERVE_API_KEY_PEPPER", settings.api_key_pepper.get_secret_value(), PEPPER_WHY),
                         limiter_for(settings.rate_limit_per_s, settings.rate_limit_burst),
                         FailureThrottle(settings.auth_failure_burst, settings.auth_failure_refill_s),
                         service=BOUNDARY.name, forwarding_secret=optional(
                             FORWARDING_SECRET, settings.forwarding_secret.get_secret_value(), FORWARDING_WHY))
    service.on_stop.append(auth.close)
    service.app.include_router(api.router(lambda: service.pool, auth, keyring, clock))
    return service
