"""The operator commands' settings (docs/configuration.md): the administrator's connections
and topology prefix (shared/config.py), and the server secrets some commands need: the
pepper (api_keys), the license-key keyring (dlq, keyring)."""
from __future__ import annotations

from pydantic import SecretStr

from shared.config import AdministratorSettings, ApiKeyPepper, LicenseKeyKeyring


class ToolSettings(AdministratorSettings):
    api_key_pepper: ApiKeyPepper = SecretStr("")
    license_key_keyring: LicenseKeyKeyring = SecretStr("")
