"""The portal's settings (README, Configuration). It holds no broker or database credentials:
it reaches the system only through the public HTTP API, as its tenants do."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from shared.config import env_float, env_int, traces_exporter
from shared.secrets import secret

SESSION_KEYRING = "ARCSERVE_PORTAL_SESSION_KEYRING"


@dataclass(frozen=True)
class PortalSettings:
    host: str = "0.0.0.0"
    port: int = 8084
    metrics_port: int = 9084  # internal: /metrics, /healthz, /readyz
    intake_url: str = "http://127.0.0.1:8080"  # where /v1 writes go
    status_url: str = "http://127.0.0.1:8081"  # where /v1 reads go
    # Sessions are sealed into their cookie with this keyring (shared/sealing.py's format).
    session_keyring: str = field(default="", repr=False)
    session_max_age_s: float = 8 * 3600.0
    # Behind a TLS-terminating proxy the portal sees plain HTTP: say so, and cookies are Secure.
    secure_cookies: bool = False
    upstream_timeout_s: float = 10.0
    drain_timeout_s: float = 25.0
    traces_exporter: Literal["none", "otlp", "console"] = "none"  # OTEL_TRACES_EXPORTER

    @classmethod
    def from_env(cls) -> PortalSettings:
        env = os.environ.get
        return cls(
            host=env("ARCSERVE_HOST") or "0.0.0.0",
            port=env_int("PORTAL_PORT", 8084),
            metrics_port=env_int("PORTAL_METRICS_PORT", 9084),
            intake_url=(env("PORTAL_INTAKE_URL") or "http://127.0.0.1:8080").rstrip("/"),
            status_url=(env("PORTAL_STATUS_URL") or "http://127.0.0.1:8081").rstrip("/"),
            session_keyring=secret(SESSION_KEYRING),
            session_max_age_s=env_float("PORTAL_SESSION_MAX_AGE_S", 8 * 3600.0),
            secure_cookies=(env("PORTAL_SECURE_COOKIES") or "false").lower() in ("1", "true", "yes"),
            drain_timeout_s=env_float("ARCSERVE_DRAIN_TIMEOUT_S", 25.0),
            traces_exporter=traces_exporter(),
        )
