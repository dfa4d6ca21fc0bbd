"""Who published a message, as the broker proved it (docs/architecture.md, "Security").

RabbitMQ refuses a `user_id` that is not the publishing connection's user, so `user_id`
names who published a message; nothing else on it does. Two kinds of user pass on a message
someone else published, and say whose it was in PUBLISHER_HEADER:
- the consumer itself: its delayed retries and its dead letters are copies it published;
- the relays, the deployment's administrators (a port: shared/runtime.py wires it): the operator's
  dead-letter replays put a message back into the queue it was dead-lettered from. Their word
  counts only there: what a relay publishes to an exchange is its own message.
From anyone else every `x-arcserve-*` header, and any `x-death` entry, is only the
publisher's claim: a consumer drops them from the copies it makes, and the dead-letter
tooling never reads them.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Who first published a message that a copy (a retry, a dead letter, a replay) now carries;
# "" for a message that came without `user_id`.
PUBLISHER_HEADER = "x-arcserve-publisher"
PROJECT_HEADER_PREFIX = "x-arcserve-"
# The broker's record of its dead-letterings: trusted only where the broker wrote it.
BROKER_DEATH_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


@dataclass(frozen=True)
class Provenance:
    user: str | None  # the broker-validated `user_id` of this copy
    publisher: str | None  # who first published the message, as far as it is proven
    relayed: bool  # a copy of our own or a relay's: its `x-arcserve-*` headers are the project's


def header_text(headers: Mapping[str, Any] | None, name: str) -> str | None:
    value = (headers or {}).get(name)
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def provenance(user_id: str | None, headers: Mapping[str, Any] | None, trusted: frozenset[str]) -> Provenance:
    """Whose message this is: its `user_id`, or, on a copy published by one of the `trusted`
    users (the consumer itself and the relays), the publisher the copy names."""
    if not user_id:
        return Provenance(None, None, False)
    if user_id not in trusted:
        return Provenance(user_id, user_id, False)
    named = header_text(headers, PUBLISHER_HEADER)
    if named is None:  # a relay's (or our own) message of its own
        return Provenance(user_id, user_id, True)
    return Provenance(user_id, named or None, True)


def publishers_claims_dropped(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A publisher's headers without what only the project and the broker may say."""
    return {k: v for k, v in headers.items() if not k.startswith((PROJECT_HEADER_PREFIX, *BROKER_DEATH_HEADERS))}


class Relays:
    """The relays' broker users, read again at most every `ttl_s` (a consumer asks for each
    message that is not its own copy; the list changes only at provisioning)."""

    def __init__(self, load: Callable[[], Awaitable[frozenset[str]]], *, ttl_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self._load = load
        self._ttl_s = ttl_s
        self._clock = clock
        self._known: frozenset[str] | None = None
        self._read_at = 0.0

    async def __call__(self) -> frozenset[str]:
        now = self._clock()
        if self._known is None or now - self._read_at >= self._ttl_s:
            self._known, self._read_at = await self._load(), now
        return self._known
