from __future__ import annotations

from services.intake import api
from services.intake.boundary import BOUNDARY
from services.intake.config import IntakeSettings
from shared.config import FORWARDING_SECRET
from shared.http.auth import Authenticator
from shared.http.failures import FailureThrottle
from shared.http.ratelimit import limiter_for
from shared.runtime import Service
from shared.secrets import FORWARDING_WHY, PEPPER_WHY, optional, required


def build(settings: IntakeSettings) -> Service:
    # Intake only publishes, each with its confirm: no consumers, no outbox.
    service = Service(BOUNDARY, settings)
    id_secret = required("ARCSERVE_ID_SECRET", settings.id_secret.get_secret_value(), "intake derives application ids with it")
    pepper = required("ARCSERVE_API_KEY_PEPPER", settings.api_key_pepper.get_secret_value(), PEPPER_WHY)
    auth = Authenticator(lambda: service.pool, settings.database_url, pepper,
                         limiter_for(settings.rate_limit_per_s, settings.rate_limit_burst),
                         FailureThrottle(settings.auth_failure_burst, settings.auth_failure_refill_s),
                         service=BOUNDARY.name, forwarding_secret=optional(
                             FORWARDING_SECRET, settings.forwarding_secret.get_secret_value(), FORWARDING_WHY))
    service.on_stop.append(auth.close)
    service.app.include_router(api.router(
        service.broker, auth, lambda: service.pool, id_secret, BOUNDARY.source, settings.status_url.rstrip("/"),
    ))
    return service
