"""The status service's settings (docs/configuration.md): the shared runtime's and
authenticator's (shared/config.py), its ports, the license-key keyring, and the domain's own
configuration: the year-end closure of R12's business calendar."""
from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.status.domain.calendar import YearEndClosure
from shared.config import ApiSettings, ConsumerSettings, LicenseKeyKeyring, Port


class StatusSettings(ApiSettings, ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="STATUS_")

    port: Port = Field(8081, description="the status service's HTTP API (reads)")
    metrics_port: Port = Field(9081, description="the status service's operator port: /metrics, /healthz, /readyz; "
                                                 "internal, never exposed to tenants")
    license_key_keyring: LicenseKeyKeyring = SecretStr("")
    year_end_closure: str = Field(
        "12-29/01-03", pattern=r"^(\d\d-\d\d/\d\d-\d\d|none)?$", validation_alias="ARCSERVE_YEAR_END_CLOSURE",
        description="closed days for R12, `MM-DD/MM-DD`, or `none` (an empty variable is an unset one: the default)")

    @field_validator("year_end_closure")
    @classmethod
    def _closure(cls, value: str) -> str:
        try:
            YearEndClosure.parse(value)  # a month and a day that exist
        except ValueError:
            raise ValueError("must be two days of the year, MM-DD/MM-DD, e.g. 12-29/01-03") from None
        return value
