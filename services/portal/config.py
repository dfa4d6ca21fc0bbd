"""The portal's settings (docs/configuration.md). It holds no broker or database credentials:
it reaches the system only through the public HTTP API, as its tenants do."""
from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from shared.config import ForwardingSecret, Port, ProcessSettings

SESSION_KEYRING = "ARCSERVE_PORTAL_SESSION_KEYRING"


class PortalSettings(ProcessSettings):
    port: Port = Field(8084, validation_alias="PORTAL_PORT", description="the portal: the tenants' one origin")
    metrics_port: Port = Field(9084, validation_alias="PORTAL_METRICS_PORT",
                               description="the portal's operator port: /metrics, /healthz, /readyz")
    intake_url: str = Field("http://127.0.0.1:8080", validation_alias="PORTAL_INTAKE_URL",
                            description="where it forwards `/v1` writes: intake")
    status_url: str = Field("http://127.0.0.1:8081", validation_alias="PORTAL_STATUS_URL",
                            description="where it forwards `/v1` reads: the status service")
    session_keyring: SecretStr = Field(
        SecretStr(""), validation_alias=SESSION_KEYRING,
        description="required by the portal (`make run` makes one; compose has a marked demo value): "
                    "`id:base64-key,…` like the license-key keyring; the first key seals session cookies, every one "
                    "opens them, so a rotation signs nobody out (or `…_FILE`)")
    session_max_age_s: float = Field(8 * 3600.0, gt=0, validation_alias="PORTAL_SESSION_MAX_AGE_S",
                                     description="how long a portal sign-in lasts")
    # Behind a TLS-terminating proxy the portal sees plain HTTP: say so, and cookies are Secure.
    secure_cookies: bool = Field(
        False, validation_alias="PORTAL_SECURE_COOKIES",
        description="`true` behind a TLS-terminating proxy (the portal sees HTTP, the browser HTTPS): cookies are "
                    "`Secure`; without it they are when the request came over HTTPS")
    upstream_timeout_s: float = Field(10.0, gt=0, validation_alias="PORTAL_UPSTREAM_TIMEOUT_S",
                                      description="how long the portal waits for intake or status")

    forwarding_secret: ForwardingSecret = SecretStr("")

    @field_validator("intake_url", "status_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
