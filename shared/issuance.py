"""The vendor's immediate calls, and the shape of what it hands out.

Keys and order IDs take days to come from Arcserve, so they are fulfilments: requested and
completed later (services/license_issuer/fulfilment.py, services/order_id/fulfilment.py).
What stays immediate for the tenant (R8, R9) is a call: `IssuanceBackend`, with our ids so
the vendor can deduplicate. `Simulator` stands in for it, and the simulated keys and order
IDs are well-formed, so that what is typed in later can be checked against the same shapes.
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

# Crockford base32 without I, L, O, U: nothing to misread when a key is typed in.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IssuanceBackend(Protocol):
    async def revoke_license_keys(self, application_id: UUID, license_keys: Sequence[str]) -> None: ...

    async def cancel_order_id(self, order_id: str) -> None: ...


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def simulated_license_key() -> str:
    """Five groups of five, e.g. `7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA`."""
    return "-".join(_random(5) for _ in range(5))


def simulated_order_id(now: datetime | None = None) -> str:
    """`ARC-` + issue date + ten random characters, e.g. `ARC-20261128-7K2QD-M9XHT`."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"ARC-{day}-{_random(5)}-{_random(5)}"


class Simulator:
    """The vendor's immediate calls, simulated: they take effect at once (R8, R9)."""

    async def revoke_license_keys(self, application_id: UUID, license_keys: Sequence[str]) -> None:
        return None

    async def cancel_order_id(self, order_id: str) -> None:
        return None
