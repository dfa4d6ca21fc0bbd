"""Other systems' CloudEvents in both content modes of the RabbitMQ binding, produced and read
by the official SDK (`cloudevents.core.bindings.rabbitmq`), as an integrator would: a
submission in binary mode (attributes in `ce-` headers, the body its `data`) goes through
the same checks as one in structured mode (the whole event as the body), and a deployment
set to publish in binary mode runs end to end with events the SDK reads."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import rabbitmq as sdk
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from services.status.handlers import SUBMISSIONS
from shared.contracts.envelope import CONTENT_TYPE
from shared.messaging.consumer import ATTEMPT_HEADER, REASON_HEADER
from tests.support.stack import EventTap, Stack, Tenant, dead_letters, dead_letters_kept, eventually, new_application
from tests.support.tools import ok

Mode = Callable[[BaseCloudEvent], sdk.RabbitMQMessage]
MODES: dict[str, Mode] = {"binary": sdk.to_binary_event, "structured": sdk.to_structured_event}


def _submission(tenant: str, body: dict[str, Any], *, source: str = "urn:system:billing",
                **attributes: Any) -> SdkEvent:
    """A submission as the SDK makes it: the application id is the event's id."""
    application_id = str(uuid.uuid4())
    return SdkEvent(
        attributes={"id": application_id, "source": source, "type": f"arcserve.application.{body['kind']}",
                    "tenantid": tenant, "datacontenttype": "application/json", **attributes},
        data={**body, "application_id": application_id},
    )


async def _publish(url: str, exchange: str, routing_key: str, message: sdk.RabbitMQMessage, message_id: str) -> None:
    """What the SDK's binding made, published as its user with aio-pika (persistent, confirmed)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(aio_pika.Message(
            message.body, headers=dict(message.headers), content_type=message.content_type, message_id=message_id,
            user_id=unquote(urlsplit(url).username or "guest"), delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ), routing_key, mandatory=True)


async def test_the_sdks_submissions_in_both_modes_go_end_to_end_under_the_same_trust_and_once(
    stack: Stack, tenant: Tenant,
) -> None:
    name, url = stack.new_publisher()
    await ok(stack, "publishers", "allow", name, tenant.name)
    products = {"binary": "arcserve-udp-10", "structured": "arcserve-udp-9"}  # R2: one live contract per product
    sent = {mode: _submission(tenant.name, new_application(product=products[mode]), source=f"urn:system:{name}")
            for mode in MODES}
    async with EventTap(stack) as events:
        for mode, event in sent.items():
            await _publish(url, stack.topology.applications, "new", MODES[mode](event), event.get_id())
        await _publish(url, stack.topology.applications, "new", sdk.to_binary_event(sent["binary"]),
                       sent["binary"].get_id())  # sent again: no second effect
        for mode, event in sent.items():
            application = await stack.wait_application(tenant, event.get_id(), "completed")
            assert application["submitted_by"] == {"kind": "publisher", "id": name}, mode
            contract = await stack.contract(tenant, application["contract_id"])
            assert (contract["status"], contract["status_label"]) == ("active", "提供中"), mode
        await stack.drained()
    accepted = events.matching("application.accepted.new", application_id=sent["binary"].get_id())
    assert len(accepted) == 1, accepted


async def test_broken_binary_submissions_are_dead_lettered_with_their_reason_and_kept_replayable(
    new_stack: Callable[..., Any],
) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    exchange = stack.topology.applications

    def broken(**headers: str | None) -> sdk.RabbitMQMessage:
        message = sdk.to_binary_event(_submission(tenant.name, new_application()))
        given = {**message.headers, **headers}
        return sdk.RabbitMQMessage({k: v for k, v in given.items() if v is not None}, message.content_type, message.body)

    hostile = {
        "no-id": (broken(**{"ce-id": None}), "not_cloudevent: id: Field required"),
        "old-spec": (broken(**{"ce-specversion": "0.3"}), "not_cloudevent: specversion: Input should be '1.0'"),
        "unknown-type": (broken(**{"ce-type": "arcserve.application.upgrade"}),
                         "unknown_type: 'arcserve.application.upgrade' is not handled by"),
    }
    invalid = _submission(tenant.name, {**new_application(), "licenses": []})  # fails its schema (R4)
    async with EventTap(stack) as events:
        for label, (message, _) in hostile.items():
            await _publish(stack.settings.amqp_url, exchange, "new", message, label)
        await _publish(stack.settings.amqp_url, exchange, "new", sdk.to_binary_event(invalid), invalid.get_id())
        rejected = await events.wait_for("application.rejected.new", application_id=invalid.get_id())
    assert rejected["data"]["reason"]["code"] == "invalid_application"
    assert "licenses" in rejected["data"]["reason"]["message"]

    letters = {m.message_id: m for m in await dead_letters(stack, SUBMISSIONS.name, len(hostile) + 1)}
    for label, (message, reason) in hostile.items():
        letter = letters[label]
        headers = letter.headers or {}
        assert str(headers[REASON_HEADER]).startswith(reason), (label, headers[REASON_HEADER])
        assert ATTEMPT_HEADER not in headers, f"{label} was retried before it was dead-lettered"
        # Dead-lettered as it came: still a binary-mode message, its body the data.
        assert letter.content_type == "application/json" and letter.body == message.body, label
        assert {k: str(v) for k, v in headers.items() if k.startswith("ce-")} == message.headers, label
    assert str((letters[invalid.get_id()].headers or {})[REASON_HEADER]).startswith("invalid_application: ")


async def test_a_binary_submission_from_a_publisher_not_yet_allowed_is_replayed_as_it_came(
    new_stack: Callable[..., Any],
) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    name, url = stack.new_publisher()
    event = _submission(tenant.name, new_application(), source=f"urn:system:{name}")
    await _publish(url, stack.topology.applications, "new", sdk.to_binary_event(event), event.get_id())
    [letter] = await dead_letters_kept(stack, SUBMISSIONS.name)
    assert str((letter.headers or {})[REASON_HEADER]).startswith(f"unauthorized_publisher: {name} may not act")
    assert (await stack.get(tenant, f"/v1/applications/{event.get_id()}")).status_code == 404

    await ok(stack, "publishers", "allow", name, tenant.name)
    await ok(stack, "dlq", "replay", event.get_id())
    application = await stack.wait_application(tenant, event.get_id(), "completed")
    assert application["submitted_by"] == {"kind": "publisher", "id": name}


def _read_with(reader: Callable[[sdk.RabbitMQMessage], BaseCloudEvent]) -> Callable[..., Any]:
    """An EventTap's decoder: the message's content type, and the event the SDK's `reader`
    (`from_structured_event` or `from_binary_event`) reads from it."""
    def decode(message: aio_pika.abc.AbstractIncomingMessage) -> tuple[str | None, BaseCloudEvent]:
        headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in (message.headers or {}).items()}
        return message.content_type, reader(sdk.RabbitMQMessage(headers, message.content_type, message.body))

    return decode


def _data(event: BaseCloudEvent) -> dict[str, Any]:
    data = event.get_data()
    return data if isinstance(data, dict) else {}


@pytest.mark.parametrize("mode", ["structured", "binary"])
async def test_the_sdk_reads_every_event_a_deployment_publishes_in_its_mode(
    new_stack: Callable[..., Any], mode: str,
) -> None:
    stack: Stack = await new_stack(cloudevents_mode=mode)
    await stack.start()
    tenant = await stack.tenant()
    reader = sdk.from_structured_event if mode == "structured" else sdk.from_binary_event
    everything = {"application.accepted.new", "license.issued", "order_id.issued", "contract.status_changed",
                  "application.completed.new"}
    async with EventTap(stack, decode=_read_with(reader)) as tap:
        answer = await stack.submit(tenant, new_application())
        assert answer.status_code == 202, answer.text
        application_id = answer.json()["application_id"]
        mine = await eventually(lambda: _all(tap, tenant, everything), f"every event of {application_id}")
    [completed] = [e for key, (_, e) in tap.events
                   if key == "application.completed.new" and _data(e).get("application_id") == application_id]
    application = await stack.wait_application(tenant, application_id, "completed")
    contract = await stack.contract(tenant, application["contract_id"])
    assert contract["status_label"] == "提供中"
    assert completed.get_type() == "arcserve.application.completed.new"
    assert completed.get_extension("tenantid") == tenant.name
    assert completed.get_subject() == application["contract_id"]
    sent_at = completed.get_time()
    assert isinstance(sent_at, datetime) and sent_at.tzinfo is not None
    expected = CONTENT_TYPE if mode == "structured" else "application/json"
    assert {content_type for _, content_type in mine} == {expected}


async def _all(tap: EventTap, tenant: Tenant, keys: set[str]) -> list[tuple[str, str | None]] | None:
    mine = [(key, content_type) for key, (content_type, e) in tap.events if e.get_extension("tenantid") == tenant.name]
    return mine if {key for key, _ in mine} >= keys else None
