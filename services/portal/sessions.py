"""Portal sessions, held by the browser in one cookie sealed with the server's keyring
(AES-256-GCM, shared/sealing.py): the tenant's API key never reaches script (httpOnly), another
site (SameSite=Strict) or the server's disk. The same cookie carries the CSRF token every form
must echo, and exists before sign-in, so that the sign-in form is protected too."""
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
_CONTEXT = "arcserve-portal-session"


@dataclass(frozen=True)
class Session:
    csrf: str
    issued_at: float
    api_key: str | None = None  # signed in when set

    @classmethod
    def anonymous(cls, now: float) -> Session:
        return cls(csrf=secrets.token_urlsafe(32), issued_at=now)

    def signed_in(self, api_key: str, now: float) -> Session:
        """A new token on sign-in: one learnt before it is worth nothing after."""
        return replace(Session.anonymous(now), api_key=api_key)

    def accepts(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionCodec:
    def __init__(self, keyring: Keyring, max_age_s: float):
        self._keyring = keyring
        self.max_age_s = max_age_s

    def encode(self, session: Session) -> str:
        plain = json.dumps({"c": session.csrf, "t": session.issued_at, "k": session.api_key})
        return base64.urlsafe_b64encode(self._keyring.seal(plain, context=_CONTEXT).encode()).decode()

    def decode(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session of a cookie this server sealed and that has not expired; None otherwise."""
        if not cookie:
            return None
        try:
            raw = json.loads(self._keyring.open(base64.urlsafe_b64decode(cookie.encode()).decode(), context=_CONTEXT))
            session = Session(csrf=str(raw["c"]), issued_at=float(raw["t"]), api_key=raw["k"])
        except (KeyringError, binascii.Error, ValueError, KeyError, TypeError, UnicodeError):
            return None
        if (time.time() if now is None else now) - session.issued_at > self.max_age_s:
            return None
        return session
