"""The CloudEvents RabbitMQ binding (shared/contracts/binding.py) against the official SDK's
(`cloudevents.core.bindings.rabbitmq`): what the SDK writes in either content mode reads as
the same event, a broken binary message is refused naming the problem as a structured one
is, and what the services write the SDK reads back."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import rabbitmq as sdk
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from shared.contracts import binding, catalogue
from shared.contracts.applications import NewSubmission
from shared.contracts.envelope import CONTENT_TYPE, PoisonMessage
from shared.contracts.events import ApplicationCompleted

TENANT = "tenant-a"


def _submission() -> SdkEvent:
    application_id = str(uuid.uuid4())
    return SdkEvent(
        attributes={"id": application_id, "source": "urn:system:billing", "type": "arcserve.application.new",
                    "tenantid": TENANT, "datacontenttype": "application/json",
                    "time": datetime(2026, 12, 4, 9, 30, tzinfo=UTC)},
        data={"kind": "new", "product": "arcserve-udp-10", "application_id": application_id,
              "contact": {"email": "ops@example.co.jp", "company_name": "Example K.K."},
              "licenses": [{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]},
    )


def _read(message: sdk.RabbitMQMessage) -> Any:
    return binding.read(message.body, message.content_type, message.headers)


def test_the_sdks_binary_and_structured_messages_read_as_the_same_submission() -> None:
    event = _submission()
    binary, structured = _read(sdk.to_binary_event(event)), _read(sdk.to_structured_event(event))
    assert binary == structured
    assert (binary.id, binary.type, binary.tenantid, binary.time) == (
        event.get_id(), "arcserve.application.new", TENANT, datetime(2026, 12, 4, 9, 30, tzinfo=UTC))
    assert binary.datacontenttype == "application/json"
    submission = catalogue.parse(binary)
    assert isinstance(submission, NewSubmission) and str(submission.application_id) == event.get_id()


def test_header_names_are_read_whatever_their_case_and_values_as_the_broker_hands_them() -> None:
    message = sdk.to_binary_event(_submission())
    shouted = {name.upper(): value.encode() for name, value in message.headers.items()}  # bytes, as AMQP may give
    assert binding.read(message.body, message.content_type, shouted) == _read(message)


def _binary(**headers: Any) -> tuple[bytes, str, dict[str, Any]]:
    message = sdk.to_binary_event(_submission())
    given = {**message.headers, **headers}
    return message.body, "application/json", {name: value for name, value in given.items() if value is not None}


@pytest.mark.parametrize(
    ("headers", "content_type", "reason"),
    [
        pytest.param({"ce-id": None}, None, "not_cloudevent: id: Field required", id="missing ce-id"),
        pytest.param({"ce-specversion": "0.3"}, None, "not_cloudevent: specversion: Input should be '1.0'",
                     id="wrong ce-specversion"),
        pytest.param({"ce-id": "a\r\nb"}, None, "not_cloudevent: id: Value error, must not contain control",
                     id="a line break in ce-id"),
        pytest.param({"ce-source": "x" * 5000}, None, "limit_exceeded: a string of 5000 characters at $.source",
                     id="a 5,000-character ce-source"),
        pytest.param({"CE-ID": "again"}, None, "not_cloudevent: header ce-id given twice", id="ce-id twice"),
        pytest.param({"ce-tenantid": {"nested": "table"}}, None, "not_cloudevent: header ce-tenantid must be a string",
                     id="a table as a header"),
        pytest.param({}, "text/plain", "unsupported_content_type: data of type 'text/plain'", id="data not JSON"),
    ],
)
def test_a_broken_binary_message_is_refused_naming_the_problem(
    headers: dict[str, Any], content_type: str | None, reason: str
) -> None:
    body, json_type, given = _binary(**headers)
    with pytest.raises(PoisonMessage) as refused:
        binding.read(body, content_type or json_type, given)
    assert refused.value.reason.startswith(reason), refused.value.reason


def test_an_unknown_binary_type_is_refused_as_a_structured_one_is() -> None:
    body, content_type, headers = _binary(**{"ce-type": "arcserve.application.upgrade"})
    event = binding.read(body, content_type, headers)
    with pytest.raises(PoisonMessage) as refused:
        catalogue.parse(event)
    assert refused.value.reason == "unknown_type: 'arcserve.application.upgrade'"


def test_a_binary_body_is_held_to_the_same_limits_as_a_structured_one() -> None:
    body, content_type, headers = _binary()
    with pytest.raises(PoisonMessage) as oversized:
        binding.read(b" " * (300 * 1024) + body, content_type, headers)
    assert oversized.value.reason.startswith("oversized: ")
    with pytest.raises(PoisonMessage) as not_json:
        binding.read(b"{not json", content_type, headers)
    assert not_json.value.reason.startswith("not_json: ")


def test_a_message_without_ce_headers_or_with_the_cloudevents_content_type_is_structured() -> None:
    structured = sdk.to_structured_event(_submission())
    assert binding.read(structured.body, None, {}) == _read(structured)
    # ce- headers beside a structured body are not the event's: the body is (the SDK ignores them too).
    forged = binding.read(structured.body, CONTENT_TYPE, {"ce-id": "other"})
    assert forged.id == json.loads(structured.body)["id"]


def _published() -> bytes:
    completed = ApplicationCompleted(application_id=uuid.uuid4(), contract_id=uuid.uuid4(), kind="new")
    _, event = catalogue.to_event(completed, source="urn:arcserve:status", tenant_id=TENANT,
                                  subject=str(completed.contract_id))
    return event.to_json()


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_what_the_services_publish_the_sdk_reads_with_its_tenantid(mode: binding.ContentMode) -> None:
    written = _published()
    wire = binding.write(written, mode)
    message = sdk.RabbitMQMessage(headers=wire.headers, content_type=wire.content_type, body=wire.body)
    read = (sdk.from_structured_event if mode == "structured" else sdk.from_binary_event)(message)
    original = json.loads(written)
    assert read.get_extension("tenantid") == TENANT
    assert (read.get_id(), read.get_type(), read.get_subject()) == (original["id"], original["type"], original["subject"])
    assert read.get_data() == original["data"]
    assert wire.content_type == (CONTENT_TYPE if mode == "structured" else "application/json")
    # And the services read it back as the event they wrote.
    assert binding.read(wire.body, wire.content_type, wire.headers).to_json() == written
