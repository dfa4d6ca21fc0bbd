"""What an API key may look like on the wire, said once for the services, the portal's sign-in
and the command line: printable ASCII without spaces (an HTTP header carries it), bounded."""
from __future__ import annotations

MAX_KEY_LENGTH = 256


def well_formed(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable() and " " not in key
