"""The consumer's failure policy (shared/messaging/consumer.py's table), on the in-memory
harness: what is dead-lettered at once and with which reason, what is retried in place, what
goes to the delayed retries and when they end, what a copy says of its publisher.
tests/integration/test_retries.py and test_reliability.py prove the same on the real broker."""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest

from shared.contracts import catalogue, events
from shared.contracts.catalogue import InvalidData
from shared.contracts.envelope import PoisonMessage, RetryLater
from shared.messaging.consumer import CONFLICT_RETRIES, ORIGINAL_ROUTING_KEY_HEADER, PUBLISHER_HEADER
from shared.messaging.delivery import Delivery
from shared.messaging.subscriber import Subscriber
from shared.messaging.testing import Harness, MemoryMessage
from shared.messaging.unit_of_work import ConsumeContext


@dataclass
class Script:
    """What the handler does on its next calls: raise these, one each, then succeed."""

    failures: list[BaseException] = field(default_factory=list)
    handled: list[uuid.UUID] = field(default_factory=list)
    invalid: list[InvalidData] = field(default_factory=list)
    poison: set[uuid.UUID] = field(default_factory=set)  # contracts whose messages are refused


POLICY: Subscriber[Script] = Subscriber("test.policy")


async def record_invalid(problem: InvalidData, ctx: ConsumeContext[Script]) -> None:
    ctx.deps.invalid.append(problem)


@POLICY.handler(events.OrderIdIssued, on_invalid=record_invalid)
async def handle(message: events.OrderIdIssued, ctx: ConsumeContext[Script]) -> None:
    if ctx.deps.failures:
        raise ctx.deps.failures.pop(0)
    if message.contract_id in ctx.deps.poison:
        raise PoisonMessage(f"invalid_data: contract {message.contract_id} is refused")
    ctx.deps.handled.append(message.contract_id)
    ctx.publish(events.OrderIdCancelled(contract_id=message.contract_id, arcserve_order_id=message.arcserve_order_id))


def issued() -> events.OrderIdIssued:
    return events.OrderIdIssued(contract_id=uuid.uuid4(), arcserve_order_id="ARC-20260601-00001")


def harness(*failures: BaseException, relays: tuple[str, ...] = (), batch: int = 1) -> tuple[Harness[Script], Script]:
    script = Script(list(failures))
    return Harness(POLICY, script, service="policy", retry_delays_s=(1, 4), relays=relays, batch=batch), script


def conflict() -> asyncpg.SerializationError:
    return asyncpg.SerializationError("could not serialize access due to concurrent update")


async def test_a_handled_message_is_acked_and_what_it_published_committed():
    consumer, script = harness()
    message = issued()

    assert await consumer.send(message) == "handled"

    assert script.handled == [message.contract_id] and consumer.messages[0].settled == "acked"
    [published] = consumer.published
    assert isinstance(published, events.OrderIdCancelled) and published.contract_id == message.contract_id


async def test_a_duplicate_is_acked_with_no_second_effect():
    consumer, script = harness()
    message = issued()
    await consumer.send(message, id="one")

    assert await consumer.send(message, id="one") == "handled"

    assert len(script.handled) == 1 and len(consumer.published) == 1 and consumer.messages[1].settled == "acked"


@pytest.mark.parametrize("body, reason", [
    (b"\xff not json", "not_json"),
    (b"[1, 2]", "not_cloudevent"),
    (json.dumps({"specversion": "1.0"}).encode(), "not_cloudevent"),
])
async def test_what_is_no_cloudevent_is_dead_lettered_at_once(body, reason):
    consumer, script = harness()

    assert await consumer.deliver(MemoryMessage(body, "arcserve-order-id", "arcserve.events", "order_id.issued")) \
        == "dead_lettered"

    [letter] = consumer.dead_letters
    assert letter.reason.startswith(reason) and letter.body == body
    assert consumer.retries == [] and consumer.messages[0].settled == "acked"


async def test_a_type_the_queue_does_not_handle_is_dead_lettered_unknown_type():
    consumer, script = harness()

    assert await consumer.send(events.OrderIdCancelled(contract_id=uuid.uuid4(), arcserve_order_id="A")) == "dead_lettered"

    [letter] = consumer.dead_letters
    assert letter.reason == "unknown_type: 'arcserve.order_id.cancelled' is not handled by test.policy"
    assert letter.headers[ORIGINAL_ROUTING_KEY_HEADER] == "order_id.cancelled"


async def test_data_that_does_not_fit_its_model_runs_on_invalid_then_is_dead_lettered():
    consumer, script = harness()
    entry_message = issued()
    _, event = catalogue.to_event(entry_message, source="/test", tenant_id="acme")
    broken = json.loads(event.to_json())
    broken["data"]["arcserve_order_id"] = ""  # min_length 1

    outcome = await consumer.deliver(MemoryMessage(json.dumps(broken).encode(), "arcserve-order-id",
                                                   "arcserve.events", "order_id.issued", broken["id"]))

    assert outcome == "dead_lettered"
    [letter] = consumer.dead_letters
    assert letter.reason.startswith("invalid_data: arcserve_order_id")
    [problem] = script.invalid
    assert problem.errors[0]["field"] == "arcserve_order_id" and script.handled == []


async def test_a_message_not_from_its_types_owner_is_dead_lettered_before_its_handler():
    consumer, script = harness()

    for publisher in ("arcserve-intake", None):
        assert await consumer.send(issued(), publisher=publisher) == "dead_lettered"

    assert [m.reason for m in consumer.dead_letters] == [
        "unauthorized_publisher: arcserve-intake does not publish arcserve.order_id.issued",
        "unauthorized_publisher: a message without user_id does not publish arcserve.order_id.issued",
    ]
    assert script.handled == [] and consumer.work.handled == set()


async def test_a_handler_that_says_poison_is_dead_lettered_with_its_reason():
    consumer, script = harness(PoisonMessage("invalid_data: the key does not open"))

    assert await consumer.send(issued()) == "dead_lettered"

    [letter] = consumer.dead_letters
    assert letter.reason == "invalid_data: the key does not open"
    assert consumer.published == [] and consumer.work.handled == set()  # nothing committed


async def test_an_outage_is_waited_out_in_place_however_long():
    outages = [ConnectionRefusedError("database restarting")] * 20 + [asyncpg.CannotConnectNowError("starting up")]
    consumer, script = harness(*outages)

    assert await consumer.send(issued()) == "handled"

    assert consumer.broker.moved == [] and len(script.handled) == 1


async def test_a_lost_race_is_retried_in_place_a_few_times_then_goes_to_the_delayed_retries():
    consumer, script = harness(*[conflict()] * CONFLICT_RETRIES)
    assert await consumer.send(issued()) == "handled"
    assert consumer.broker.moved == []

    consumer, script = harness(*[conflict()] * (CONFLICT_RETRIES + 1))
    assert await consumer.send(issued()) == "retry_scheduled"
    [retry] = consumer.retries
    assert retry.reason.startswith("handler_error: SerializationError") and script.handled == []


async def test_retry_later_goes_through_each_delay_then_is_dead_lettered_retries_exhausted():
    consumer, script = harness(*[RetryLater("unknown_contract: not there yet")] * 3)

    assert await consumer.send(issued()) == "retry_scheduled"
    first = consumer.retries[0]
    assert (first.routing_key, first.attempt) == (consumer.topology.retry_key(1), 1)
    assert await consumer.redeliver_moved(first) == "retry_scheduled"
    second = consumer.retries[1]
    assert (second.routing_key, second.attempt) == (consumer.topology.retry_key(4), 2)
    assert await consumer.redeliver_moved(second) == "dead_lettered"

    [letter] = consumer.dead_letters
    assert letter.reason == "retries_exhausted: unknown_contract: not there yet"
    assert letter.headers[PUBLISHER_HEADER] == "arcserve-order-id"  # still the first publisher's
    assert script.handled == []


async def test_a_retried_copy_that_succeeds_is_handled_as_its_first_publishers():
    consumer, script = harness(RuntimeError("flaky"))
    assert await consumer.send(issued()) == "retry_scheduled"

    assert await consumer.redeliver_moved(consumer.retries[0]) == "handled"  # published by the consumer itself

    assert len(script.handled) == 1


async def test_a_publishers_own_claims_never_reach_a_copy():
    consumer, script = harness(PoisonMessage("invalid_data: no"))
    forged = {PUBLISHER_HEADER: "arcserve-order-id", "x-arcserve-reason": "delivery_limit",
              "x-death": [{"queue": "elsewhere"}], "x-trace": "kept"}
    _, event = catalogue.to_event(events.OrderIdIssued(contract_id=uuid.uuid4(), arcserve_order_id="A"), source="/x", tenant_id="acme")

    await consumer.deliver(MemoryMessage(event.to_json(), "arcserve-intake", "arcserve.events", "order_id.issued",
                                         event.id, forged))

    [letter] = consumer.dead_letters
    assert letter.headers[PUBLISHER_HEADER] == "arcserve-intake"
    assert letter.reason.startswith("unauthorized_publisher") and "x-death" not in letter.headers
    assert letter.headers["x-trace"] == "kept"


async def test_a_relays_replay_into_the_queue_is_judged_as_the_first_publishers():
    consumer, script = harness(relays=("operator",))
    _, event = catalogue.to_event(issued(), source="/x", tenant_id="acme")
    queue = consumer.topology.queue(consumer.consumer.spec)

    replayed = MemoryMessage(event.to_json(), "operator", "", queue, event.id, {PUBLISHER_HEADER: "arcserve-order-id"})
    assert await consumer.deliver(replayed) == "handled"
    to_exchange = MemoryMessage(event.to_json(), "operator", "arcserve.events", "order_id.issued", "other",
                                {PUBLISHER_HEADER: "arcserve-order-id"})
    assert await consumer.deliver(to_exchange) == "dead_lettered"  # a relay's own message, to an exchange

    assert consumer.dead_letters[0].reason.startswith("unauthorized_publisher: operator does not publish")


async def test_a_copy_that_cannot_be_moved_stays_in_its_queue():
    consumer, script = harness(PoisonMessage("invalid_data: no"))
    consumer.broker.refuse = ConnectionResetError("broker away")

    assert await consumer.send(issued()) == "requeued"

    assert consumer.messages[0].settled == "requeued"


async def test_a_filter_refuses_re_keys_and_informs_the_handler():
    seen: list[str] = []

    async def tenant_keyed(delivery: Delivery[object]) -> None:
        if delivery.event.tenantid == "blocked":
            raise PoisonMessage("unauthorized_publisher: not for this tenant")
        delivery.key = f"{delivery.event.tenantid}/{delivery.event.id}"
        delivery.attach(delivery.event.tenantid or "")

    filtered: Subscriber[object] = Subscriber("test.filtered", filters=(tenant_keyed,))

    @filtered.handler(events.OrderIdIssued)
    async def record(message: events.OrderIdIssued, ctx: ConsumeContext[object]) -> None:
        seen.append(ctx.fact(str))

    consumer = Harness(filtered, object(), service="filtered")
    assert await consumer.send(issued(), tenant="acme", id="same") == "handled"
    assert await consumer.send(issued(), tenant="globex", id="same") == "handled"  # another tenant's id: not a duplicate
    assert await consumer.send(issued(), tenant="acme", id="same") == "handled"  # a duplicate: absorbed
    assert await consumer.send(issued(), tenant="blocked") == "dead_lettered"

    assert seen == ["acme", "globex"] and consumer.work.handled == {"acme/same", "globex/same"}
    assert consumer.dead_letters[0].reason == "unauthorized_publisher: not for this tenant"


async def test_a_message_about_no_tenant_is_dead_lettered_before_any_filter():
    consumer, script = harness()
    _, event = catalogue.to_event(issued(), source="/x", tenant_id="acme")
    body = json.loads(event.to_json())
    del body["tenantid"]

    assert await consumer.deliver(MemoryMessage(json.dumps(body).encode(), "arcserve-intake", "arcserve.events",
                                                "order_id.issued", event.id)) == "dead_lettered"

    assert consumer.dead_letters[0].reason.startswith("missing_tenant")  # not the owner check's refusal


async def test_messages_that_arrive_together_commit_together_and_one_refused_is_refused_alone():
    consumer, script = harness(batch=8)
    messages = [issued() for _ in range(4)]
    together = await asyncio.gather(*(consumer.send(m) for m in messages))
    assert together == ["handled"] * 4 and consumer.work.committed == [4]  # one transaction for the four

    refused = issued()
    script.poison.add(refused.contract_id)
    outcomes = await asyncio.gather(*(consumer.send(m) for m in (issued(), refused, issued())))

    # The batch rolled back whole; each then ran alone, and only the refused one was refused.
    assert outcomes == ["handled", "dead_lettered", "handled"] and consumer.work.committed == [4, 1, 1]
    assert [m.reason for m in consumer.dead_letters] == [f"invalid_data: contract {refused.contract_id} is refused"]
    assert len(consumer.published) == 6
    assert refused.contract_id not in {p.contract_id for p in consumer.published if isinstance(p, events.OrderIdCancelled)}
