"""The AsyncAPI 3.0 document of the AMQP contract (docs/asyncapi.json): generated from the message
catalogue, committed, valid by the AsyncAPI project's own parser, and what every event's
CloudEvents `dataschema` points into."""
from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from cloudevents.core.bindings import rabbitmq as sdk
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from shared.contracts import asyncapi, catalogue, routing
from shared.contracts.applications import NewApplication, parse_application, submission_of

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.json"
TOOLS = Path(__file__).resolve().parent
VALIDATOR = TOOLS / "validate_asyncapi.mjs"


def validate(document: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not (TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("the AsyncAPI parser is not installed: `make contract-tools` (npm ci in tests/contracts)")
    file = tmp_path / "asyncapi.json"
    file.write_text(json.dumps(document))
    return subprocess.run(["node", str(VALIDATOR), str(file)], capture_output=True, text=True, timeout=120)


def test_the_committed_document_is_the_one_the_catalogue_generates() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi.render(), \
        "docs/asyncapi.json is not what the message catalogue says: run `make contracts` and commit it"


def test_the_asyncapi_parser_finds_the_document_valid_and_a_broken_one_not(tmp_path: Path) -> None:
    valid = validate(json.loads(COMMITTED.read_text(encoding="utf-8")), tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "0 error(s)" in valid.stdout

    broken = asyncapi.document()
    del broken["components"]["messages"]["application.new"]  # a channel now names a message that is not there
    refused = validate(broken, tmp_path)
    assert refused.returncode == 1 and "error" in refused.stdout, refused.stdout


def test_every_public_message_is_there_with_its_routing_key_and_the_private_one_is_not() -> None:
    document = asyncapi.document()
    operations = document["operations"]
    public = [e for e in catalogue.CATALOGUE if e.exchange in routing.PUBLIC_EXCHANGES]
    assert len(operations) == len(public) == 31
    by_type = {op["messages"][0]["$ref"].rsplit("/", 1)[1]: op for op in operations.values()}
    for entry in public:
        key = entry.type.removeprefix("arcserve.")
        operation = by_type[key]
        assert operation["bindings"]["amqp"]["cc"] == [entry.routing_key]
        # Ours to receive: submissions and fulfilment results; the rest we send.
        theirs = entry.exchange == routing.APPLICATIONS_EXCHANGE or entry.type in (
            "arcserve.fulfilment.fulfilled", "arcserve.fulfilment.rejected", "arcserve.fulfilment.revocation_confirmed")
        assert operation["action"] == ("receive" if theirs else "send")
        channel = operation["channel"]["$ref"].rsplit("/", 1)[1]
        assert document["channels"][channel]["address"] == entry.exchange
        envelope = document["components"]["schemas"][f"{key}.event"]["allOf"][1]["properties"]
        assert envelope["type"] == {"const": entry.type}
    assert document["channels"]["applications"]["bindings"]["amqp"]["exchange"] == {
        "name": "arcserve.applications", "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}
    for private in (routing.LICENSE_KEYS_EXCHANGE, routing.ORDER_IDS_EXCHANGE):
        assert private not in json.dumps(document)  # never on a public channel
    assert "LicenseKeys" not in document["components"]["schemas"]
    assert "OrderIdObtained" not in document["components"]["schemas"]


def test_every_events_dataschema_names_its_schema_in_the_document() -> None:
    document = asyncapi.document()
    body = parse_application({"kind": "new", "product": "arcserve-udp-10",
                              "contact": {"email": "ops@example.co.jp", "company_name": "A"},
                              "licenses": [{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]})
    assert isinstance(body, NewApplication)
    _, event = catalogue.to_event(submission_of(body, uuid.uuid4()), source="urn:test", tenant_id="acme")
    assert event.dataschema is not None and event.dataschema.startswith(catalogue.DATASCHEMA + "#/")
    pointer = event.dataschema.split("#/", 1)[1].split("/")
    found: Any = document
    for part in pointer:
        found = found[part]
    assert found["title"] == "NewSubmission" and "application_id" in found["properties"]
    assert json.loads(event.to_json())["dataschema"] == event.dataschema  # on the wire


def test_a_binary_mode_messages_headers_fit_the_documented_headers_and_a_broken_one_does_not() -> None:
    document = asyncapi.document()
    assert {m["headers"]["$ref"] for m in document["components"]["messages"].values()} == {
        "#/components/schemas/CloudEventHeaders"}
    schema = document["components"]["schemas"]["CloudEventHeaders"]
    event = SdkEvent(attributes={"id": str(uuid.uuid4()), "source": "urn:system:billing", "tenantid": "acme",
                                 "type": "arcserve.application.new", "datacontenttype": "application/json"},
                     data={"kind": "new"})
    headers = sdk.to_binary_event(event).headers
    jsonschema.validate(headers, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**headers, "ce-specversion": "0.3"}, schema)
