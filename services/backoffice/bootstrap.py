"""Wires the back-office console: its task subscription and its operators' API."""
from __future__ import annotations

from services.backoffice import api
from services.backoffice.boundary import BOUNDARY
from services.backoffice.config import BackofficeSettings
from services.backoffice.handlers import Deps
from services.backoffice.operators import OperatorAuth
from shared.clock import Clock, utc_now
from shared.http.failures import FailureThrottle
from shared.runtime import Service
from shared.sealing import keyring_or_exit
from shared.secrets import PEPPER_WHY, required


def build(settings: BackofficeSettings, clock: Clock = utc_now) -> Service:
    keyring = keyring_or_exit(settings.license_key_keyring.get_secret_value())
    pepper = required("ARCSERVE_API_KEY_PEPPER", settings.api_key_pepper.get_secret_value(), PEPPER_WHY)
    service = Service(BOUNDARY, settings, deps=Deps(), clock=clock)
    auth = OperatorAuth(lambda: service.pool, pepper,
                        FailureThrottle(settings.auth_failure_burst, settings.auth_failure_refill_s))
    service.app.include_router(api.router(lambda: service.pool, service.broker, auth, keyring, BOUNDARY.source, clock))
    return service
