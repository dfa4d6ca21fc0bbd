"""Intake's settings (docs/configuration.md): the shared runtime's and authenticator's
(shared/config.py), its ports, the secret application ids are derived with, and where its
`Location` headers point."""
from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ApiSettings, Port


class IntakeSettings(ApiSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_")

    port: Port = Field(8080, description="intake's HTTP API")
    metrics_port: Port = Field(9080, description="intake's operator port: /metrics, /healthz, /readyz; internal, "
                                                 "never exposed to tenants")
    id_secret: SecretStr = Field(
        SecretStr(""), validation_alias="ARCSERVE_ID_SECRET",
        description="the server secret application ids are derived from `Idempotency-Key`s with "
                    "(16 characters or more; or `…_FILE`)")
    status_url: str = Field(
        "", validation_alias="ARCSERVE_STATUS_URL",
        description="public base URL of the status API; intake's `Location` header points there "
                    "(`make run` and compose: the portal's origin)")
