"""The issuance backend: where license keys and Arcserve order IDs come from.

The real vendor is slow and external (days, minutes); the default backend is a simulator
with configurable delays (R12: the expected time is shown, not slept). A real backend
implements `IssuanceBackend`; calls carry our ids so the vendor can deduplicate them.
"""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

# Crockford base32 without I, L, O, U: nothing to misread when a key is typed in.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IssuanceBackend(Protocol):
    async def issue_license_keys(self, application_id: UUID, license_ids: Sequence[UUID], *, new: bool) -> dict[UUID, str]:
        """One new key per license id."""

    async def revoke_license_keys(self, application_id: UUID, license_keys: Sequence[str]) -> None: ...

    async def issue_order_id(self, contract_id: UUID) -> str: ...

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
    """Random, well-formed keys and order IDs after a configurable delay. Uniqueness is
    enforced where they are stored (unique columns), not trusted to chance."""

    def __init__(self, new_delay_s: float = 0.0, change_delay_s: float = 0.0):
        self.new_delay_s = new_delay_s
        self.change_delay_s = change_delay_s

    async def issue_license_keys(self, application_id: UUID, license_ids: Sequence[UUID], *, new: bool) -> dict[UUID, str]:
        await asyncio.sleep(self.new_delay_s if new else self.change_delay_s)
        return {license_id: simulated_license_key() for license_id in license_ids}

    async def revoke_license_keys(self, application_id: UUID, license_keys: Sequence[str]) -> None:
        return None  # cancellations take effect at once (R8)

    async def issue_order_id(self, contract_id: UUID) -> str:
        await asyncio.sleep(self.new_delay_s)
        return simulated_order_id()

    async def cancel_order_id(self, order_id: str) -> None:
        return None  # at once (R9)
