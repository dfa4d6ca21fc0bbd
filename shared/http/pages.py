"""What every server-rendered page answers with (the tenants' portal, the provider's console):
security headers, and the keyring its session cookies are sealed with (shared/http/sessions.py)."""
from __future__ import annotations

from shared.sealing import Keyring, KeyringError

# Scripts and styles only from this origin, no inline ones, no frames, forms only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def session_keyring(text: str, variable: str, server: str) -> Keyring:
    """The keyring `variable` holds, or exit saying what is missing."""
    if not text:
        raise SystemExit(f"{variable} (or {variable}_FILE) is not set: the {server} seals its session cookies with "
                         "it; `make run` makes one for you; see docs/configuration.md")
    try:
        return Keyring.parse(text, variable)
    except KeyringError as exc:
        raise SystemExit(str(exc)) from None
