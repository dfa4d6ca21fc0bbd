"""The provisioning step's settings (docs/configuration.md): the administrator's connections
(shared/config.py), its logs, the management API, the deployment it provisions (topology prefix, retry
delays, role prefix), and the API keys it seeds."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from shared.config import (
    DEFAULT_RETRY_DELAYS_S,
    AdministratorSettings,
    ApiKeyPepper,
    LogFormat,
    LogLevel,
    RetryDelays,
    parse_api_keys,
)


class ProvisioningSettings(AdministratorSettings):
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"  # on stderr: stdout carries what `definitions` and `kubernetes` print
    management_url: str = Field(
        "", validation_alias="RABBITMQ_MANAGEMENT_URL",
        description="the RabbitMQ management API (default: port 15672 of the AMQP host)")
    role_prefix: str = Field("arcserve_", min_length=1, validation_alias="ARCSERVE_DB_ROLE_PREFIX",
                             description="prefix of the Postgres roles it makes")
    # The delayed-retry queues it declares: one per delay, as the services retry.
    retry_delays_s: RetryDelays = DEFAULT_RETRY_DELAYS_S
    api_keys: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, repr=False, validation_alias="ARCSERVE_API_KEYS",
        description="`tenant:key,…` to seed (local runs and tests; `python -m services.tools.api_keys` makes real "
                    "ones)")
    api_key_pepper: ApiKeyPepper = SecretStr("")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys(cls, value: Any) -> Any:
        return parse_api_keys(value) if isinstance(value, str) else value
