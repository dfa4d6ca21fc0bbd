"""License keys sealed with AES-256-GCM (docs/architecture.md, "Security"): at rest in every
table that holds them, and on the one route that carries them (license issuer → status).

A keyring is `ARCSERVE_LICENSE_KEY_KEYRING` (or `…_FILE`): `id:base64-key,id:base64-key`,
each key 32 random bytes. The first seals; every one opens what it sealed, so a key is
rotated by putting a new one first and dropping the old one once nothing sealed with it is
left. A sealed value names its key id and is bound to its context (the license id), so a
value copied onto another row does not open.

    sealed = keyring.seal("ABCDE-…", context=str(license_id))   # "v1:k2:<base64>"
    keyring.open(sealed, context=str(license_id))
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12


class KeyringError(ValueError):
    """A keyring that cannot be used as configured, or a value it cannot open."""


def keyring_or_exit(text: str) -> Keyring:
    """The configured keyring of a service, or exit saying what is wrong with it."""
    try:
        return Keyring.parse(text)
    except KeyringError as exc:
        raise SystemExit(str(exc)) from None


class Keyring:
    def __init__(self, keys: dict[str, bytes], current: str):
        if current not in keys:
            raise KeyringError(f"the current key {current!r} is not in the keyring")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} has {len(key)} bytes; AES-256 takes 32")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        # Fingerprints tell whether a value was sealed before without opening anything: an
        # HMAC under a key derived from each sealing key (never the sealing key itself).
        self._fingerprinting = {key_id: hmac.new(key, b"arcserve fingerprint", hashlib.sha256).digest()
                                for key_id, key in keys.items()}
        self.current = current

    @classmethod
    def parse(cls, text: str, variable: str = "ARCSERVE_LICENSE_KEY_KEYRING") -> Keyring:
        """`id:base64,id:base64`, the first one current; errors name the variable, never a key."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id or ":" in encoded:
                raise KeyringError(f"{variable} must look like id:base64-key,id:base64-key")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyringError(f"{variable}: key {key_id!r} is not base64") from None
            order.append(key_id)
        if not order:
            raise KeyringError(f"{variable} (or {variable}_FILE) is not set: license keys are sealed with it; "
                               "`make run` makes one for you; see docs/configuration.md")
        return cls(keys, order[0])

    @staticmethod
    def new_key_text(key_id: str = "k1") -> str:
        """A fresh keyring entry, `id:base64` (for `make run` and the tests)."""
        return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}:{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, *, context: str) -> str:
        version, _, rest = sealed.partition(":")
        key_id, _, encoded = rest.partition(":")
        if version != VERSION or key_id not in self._ciphers:
            raise KeyringError(f"a sealed value of key {key_id!r} (format {version!r}), which this keyring does not hold")
        try:
            raw = base64.b64decode(encoded, validate=True)
            return self._ciphers[key_id].decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise KeyringError(f"a sealed value of key {key_id!r} does not open for its context") from None

    def fingerprint(self, plaintext: str) -> bytes:
        """The value's fingerprint under the current key (stored beside its sealed copy)."""
        return self._fingerprint(self.current, plaintext)

    def fingerprints(self, plaintext: str) -> list[bytes]:
        """Its fingerprint under every key of the keyring: what a value sealed before any
        rotation was stored with."""
        return [self._fingerprint(key_id, plaintext) for key_id in self._fingerprinting]

    def _fingerprint(self, key_id: str, plaintext: str) -> bytes:
        return hmac.new(self._fingerprinting[key_id], plaintext.encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"Keyring(current={self.current!r}, keys={sorted(self._ciphers)})"  # never the keys
