"""The client address the portal vouches for (docs/architecture.md, "Security"). Intake and
status see the portal's own address on everything it forwards and on its sign-in checks;
counting failed keys by that address would put all of the portal's clients in one bucket,
so one guesser would lock every tenant out of signing in. The portal therefore names its
client in `X-Arcserve-Client`, signed with a secret it shares with the services
(ARCSERVE_FORWARDING_SECRET), and they count by that address instead.

Signed rather than trusted by network address: intake and status may be reachable directly
(compose publishes their ports), and anyone could send the header. The signature binds the
address and a time, so a copy is good for MAX_AGE_S only, and only for the address it
names. A header that does not verify is ignored (the peer's address counts), never an error."""
from __future__ import annotations

import hashlib
import hmac

HEADER = "x-arcserve-client"
MAX_AGE_S = 60
_CONTEXT = b"arcserve-client-address\n"


def _mac(secret: bytes, address: str, at: int) -> str:
    return hmac.new(secret, _CONTEXT + f"{address}\n{at}".encode(), hashlib.sha256).hexdigest()


def sign(secret: bytes, address: str, now: float) -> str:
    at = int(now)
    return f"{address};{at};{_mac(secret, address, at)}"


def verify(secret: bytes, value: str, now: float) -> str | None:
    """The address `value` vouches for, if this secret signed it lately; else None."""
    parts = value.split(";")
    if len(parts) != 3 or not parts[1].isdecimal() or len(parts[1]) > 12:
        return None
    address, at_text, mac = parts
    at = int(at_text)
    if not address or abs(now - at) > MAX_AGE_S or not hmac.compare_digest(mac, _mac(secret, address, at)):
        return None
    return address
