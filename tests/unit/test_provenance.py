"""Who published a message (shared/messaging/provenance.py): the broker-checked `user_id`, and
a named first publisher only on a copy of the consumer's own or a relay's replay; what a
publisher says of itself in the project's or the broker's headers is dropped. Pure: no broker."""
from __future__ import annotations

import asyncio

from shared.messaging.provenance import PUBLISHER_HEADER, Provenance, Relays, provenance, publishers_claims_dropped

OWN, RELAY, STRANGER = "arcserve-status", "admin", "billing"


def test_a_message_is_its_user_ids_whatever_its_headers_name() -> None:
    assert provenance(STRANGER, {PUBLISHER_HEADER: "arcserve-intake"}, frozenset({OWN})) == \
        Provenance(STRANGER, STRANGER, False)


def test_a_message_without_user_id_is_nobodys() -> None:
    assert provenance(None, {PUBLISHER_HEADER: "arcserve-intake"}, frozenset({OWN, RELAY})) == \
        Provenance(None, None, False)


def test_a_trusted_copy_names_its_first_publisher_even_nobody() -> None:
    trusted = frozenset({OWN, RELAY})
    assert provenance(OWN, {PUBLISHER_HEADER: STRANGER}, trusted) == Provenance(OWN, STRANGER, True)
    assert provenance(RELAY, {PUBLISHER_HEADER: b"arcserve-order-id"}, trusted).publisher == "arcserve-order-id"
    # A copy of a message that came without user_id stays nobody's: not the copier's.
    assert provenance(OWN, {PUBLISHER_HEADER: ""}, trusted) == Provenance(OWN, None, True)
    # A relay's message of its own (no header) is the relay's.
    assert provenance(RELAY, {}, trusted) == Provenance(RELAY, RELAY, True)


def test_the_publishers_claims_are_dropped_and_its_own_headers_kept() -> None:
    sent = {"x-arcserve-original-exchange": "arcserve.events", "x-arcserve-reason": "delivery_limit",
            PUBLISHER_HEADER: OWN, "x-death": [{"reason": "delivery_limit"}], "x-first-death-reason": "rejected",
            "x-last-death-queue": "q", "traceparent": "00-abc", "x-custom": "kept"}
    assert publishers_claims_dropped(sent) == {"traceparent": "00-abc", "x-custom": "kept"}


def test_relays_are_read_again_only_after_their_time() -> None:
    reads, now = [], [0.0]

    async def load() -> frozenset[str]:
        reads.append(now[0])
        return frozenset({RELAY})

    relays = Relays(load, ttl_s=10.0, clock=lambda: now[0])

    async def ask_at(*times: float) -> None:
        for at in times:
            now[0] = at
            assert await relays() == {RELAY}

    asyncio.run(ask_at(0.0, 5.0, 9.9, 10.0, 15.0, 20.5))
    assert reads == [0.0, 10.0, 20.5]
