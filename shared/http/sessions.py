"""Sessions of the server-rendered pages (the tenants' portal, the provider's back-office
console), held by the browser in one cookie sealed with the server's keyring (AES-256-GCM,
shared/sealing.py): the key the visitor signed in with (a tenant's API key, an operator key)
never reaches script (httpOnly), another site (SameSite=Strict) or the server's disk. The
same cookie carries the CSRF token every form must echo, and exists before sign-in, so that
the sign-in form is protected too. Each server seals under its own context: one's cookie
never opens on the other."""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace

from shared.sealing import Keyring, KeyringError

COOKIE = "arcserve_session"


@dataclass(frozen=True)
class Session:
    csrf: str
    issued_at: float
    key: str | None = None  # signed in when set: the key the visitor signed in with

    @classmethod
    def anonymous(cls, now: float) -> Session:
        return cls(csrf=secrets.token_urlsafe(32), issued_at=now)

    def signed_in(self, key: str, now: float) -> Session:
        """A new token on sign-in: one learnt before it is worth nothing after."""
        return replace(Session.anonymous(now), key=key)

    def accepts(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionCodec:
    def __init__(self, keyring: Keyring, max_age_s: float, context: str):
        self._keyring = keyring
        self.max_age_s = max_age_s
        self._context = context  # the server's: e.g. "arcserve-portal-session"

    def encode(self, session: Session) -> str:
        plain = json.dumps({"c": session.csrf, "t": session.issued_at, "k": session.key})
        return base64.urlsafe_b64encode(self._keyring.seal(plain, context=self._context).encode()).decode()

    def decode(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session of a cookie this server sealed and that has not expired; None otherwise."""
        if not cookie:
            return None
        try:
            raw = json.loads(self._keyring.open(base64.urlsafe_b64decode(cookie.encode()).decode(),
                                                context=self._context))
            session = Session(csrf=str(raw["c"]), issued_at=float(raw["t"]), key=raw["k"])
        except (KeyringError, binascii.Error, ValueError, KeyError, TypeError, UnicodeError):
            return None
        if (time.time() if now is None else now) - session.issued_at > self.max_age_s:
            return None
        return session
