"""The shape of what Arcserve hands out, as the simulators make it up.

Keys and order IDs take days to come from Arcserve, so they are fulfilments: requested and
completed later (services/license_issuer/fulfilment.py, services/order_id/fulfilment.py),
and so is a revocation there (services/license_issuer/revocations.py). The simulated keys and
order IDs are well-formed, so that what is typed in later is checked against the same shapes.
"""
from __future__ import annotations

import secrets
from datetime import UTC, datetime

# Crockford base32 without I, L, O, U: nothing to misread when a key is typed in.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def simulated_license_key() -> str:
    """Five groups of five, e.g. `7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA`."""
    return "-".join(_random(5) for _ in range(5))


def simulated_order_id(now: datetime | None = None) -> str:
    """`ARC-` + issue date + ten random characters, e.g. `ARC-20261128-7K2QD-M9XHT`."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"ARC-{day}-{_random(5)}-{_random(5)}"
