"""The back-office console's settings (docs/configuration.md): the shared runtime's and a
consumer's (shared/config.py), its ports, the pepper operator keys are looked up under, the
license-key keyring (it fingerprints the keys typed in, to refuse one used before), the
throttle of wrong operator keys, and its pages' sessions."""
from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ApiKeyPepper, ConsumerSettings, LicenseKeyKeyring, Port

SESSION_KEYRING = "ARCSERVE_BACKOFFICE_SESSION_KEYRING"


class BackofficeSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="BACKOFFICE_")

    port: Port = Field(8085, description="the back-office console: its pages and /ops/v1 (operators only)")
    metrics_port: Port = Field(9085, description="the console's operator port: /metrics, /healthz, /readyz")
    api_key_pepper: ApiKeyPepper = SecretStr("")
    license_key_keyring: LicenseKeyKeyring = SecretStr("")
    auth_failure_burst: int = Field(
        10, ge=1, validation_alias="ARCSERVE_AUTH_FAILURE_BURST",
        description="wrong keys a source address may send before 429 `too_many_failures` (per replica)")
    auth_failure_refill_s: float = Field(
        30.0, gt=0, validation_alias="ARCSERVE_AUTH_FAILURE_REFILL_S",
        description="then one more wrong key every this many seconds")
    session_keyring: SecretStr = Field(
        SecretStr(""), validation_alias=SESSION_KEYRING,
        description="required by the console (`make run` makes one; compose has a marked demo value): `id:base64-key,…` "
                    "like the license-key keyring; the first key seals its pages' session cookies, every one opens "
                    "them (or `…_FILE`)")
    session_max_age_s: float = Field(8 * 3600.0, gt=0, description="how long a sign-in to the console's pages lasts")
    secure_cookies: bool = Field(
        False, description="`true` behind a TLS-terminating proxy: the pages' cookies are `Secure`; without it they "
                           "are when the request came over HTTPS")
    trusted_user_header: str = Field(
        "", pattern=r"^([A-Za-z0-9-]{1,64})?$",
        description="off when empty (the default). Set it (e.g. `X-Forwarded-User`) only where every request reaches the "
                    "console through an authenticating proxy that sets this header and drops it from what clients send: "
                    "the console then takes the operator of that name (one unrevoked operator, `operators create NAME`) "
                    "without a key")
