"""The license issuer's settings (docs/configuration.md): the shared runtime's
(shared/config.py), its ports, the license-key keyring it seals keys with, and where results
come from (`ARCSERVE_FULFILMENT`), the simulator's delays, and how often an unconfirmed
revocation is announced again."""
from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ConsumerSettings, Fulfilment, LicenseKeyKeyring, Port


class LicenseIssuerSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="LICENSE_ISSUER_")

    port: Port = Field(8082, description="the license issuer's probes")
    metrics_port: Port = Field(9082, description="the license issuer's operator port: /metrics, /healthz, /readyz")
    license_key_keyring: LicenseKeyKeyring = SecretStr("")
    fulfilment: Fulfilment = "simulator"
    sim_new_delay_s: float = Field(0.0, ge=0, validation_alias="ARCSERVE_SIM_NEW_DELAY_S",
                                   description="the issuance simulator's delay for new applications")
    sim_change_delay_s: float = Field(0.0, ge=0, validation_alias="ARCSERVE_SIM_CHANGE_DELAY_S",
                                      description="its delay for additions, VM-count increases and revocations")
    revocation_retry_s: float = Field(900.0, gt=0, description=(
        "outside simulator mode, how long a revocation at Arcserve waits for its confirmation before it is "
        "announced again; twice as long after each announcement, up to a day"))
