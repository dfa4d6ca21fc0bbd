"""The AsyncAPI 3.0 document of the public AMQP contract (docs/architecture.md, "Public contract"), generated from
the message catalogue: the three public exchanges as channels (AMQP bindings 0.3.0), one
operation per routing key, every message as its CloudEvents envelope with `tenantid` (and the
`ce-` headers of binary content mode), and a JSON Schema per `data` under `components/schemas`. The private
exchanges between two services (`arcserve.license-keys`, `arcserve.fulfilled-order-ids`) are
nobody else's and are left out.

    python -m shared.contracts.asyncapi > docs/asyncapi.json      (make contracts)

A test fails when the committed document and this one drift, and another validates it with
the AsyncAPI project's own parser. Every event's CloudEvents `dataschema` names its `data`
schema here (`catalogue.dataschema_of`); the portal serves the document at /asyncapi.json."""
from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from shared.contracts import binding, routing
from shared.contracts.catalogue import CATALOGUE, CONTRACT_VERSION, MessageType, dataschema_of
from shared.contracts.envelope import CONTENT_TYPE

DOCUMENT_ID = "urn:arcserve-licensing"
AMQP_BINDING = "0.3.0"
CHANNELS = {
    routing.APPLICATIONS_EXCHANGE: ("applications", "Submissions: another system (or intake) applies for a tenant."),
    routing.EVENTS_EXCHANGE: ("events", "What happened: decisions, issued and revoked keys (never the keys), "
                                        "order IDs, contract status."),
    routing.FULFILMENT_EXCHANGE: ("fulfilment", "Fulfilment tasks out to the provider's order system, their "
                                                "results (order ID and license keys, or Arcserve's refusal) back in; "
                                                "only from broker users allowed for fulfilment."),
}


def _key(entry: MessageType) -> str:
    """A message's name in the document: `application.new` for a submission, the routing key
    for an event."""
    return entry.type.removeprefix("arcserve.")


def _envelope() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "description": "CloudEvents 1.0 in structured content mode: the whole event is the JSON body (content type "
                       "application/cloudevents+json). In binary content mode the same attributes travel as `ce-` "
                       "headers (CloudEventHeaders), the content type is the `datacontenttype`, and the body is "
                       "`data` alone.",
        "required": ["specversion", "id", "source", "type", "tenantid", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {**text, "maxLength": 256, "description": "Unique; the dedupe key (a resent message has the same id)."},
            "source": {**text, "maxLength": 1024, "format": "uri-reference", "examples": ["urn:arcserve:intake"]},
            "type": {**text, "maxLength": 256},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "maxLength": 256, "description": "The contract id, where there is one."},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"type": "string", "format": "uri", "description": "The schema of `data` in this document."},
            "tenantid": {**text, "maxLength": 128, "description": "Extension: the tenant the message acts for."},
            "data": {"type": "object"},
        },
    }


def _headers() -> dict[str, Any]:
    """The binary content mode's headers (the CloudEvents RabbitMQ binding): each attribute but
    `datacontenttype` as `ce-<name>`, a string. None of them in structured mode."""
    envelope = _envelope()["properties"]
    text = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "description": "Binary content mode only: the event's attributes, one header each (names read "
                       "case-insensitively). Structured mode sends none of them: the body holds the event.",
        "properties": {
            f"{binding.HEADER_PREFIX}{name}": {**(schema if "const" in schema else {**text, **schema}),
                                               "description": schema.get("description", f"The attribute `{name}`.")}
            for name, schema in envelope.items() if name not in ("data", "datacontenttype")
        },
    }


def _hoist(model: type[BaseModel], schemas: dict[str, Any]) -> None:
    """The model's JSON Schema under components/schemas, its definitions beside it."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in {**schema.pop("$defs", {}), model.__name__: schema}.items():
        if schemas.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas are called {name}: rename one of the models")


def _describe(entry: MessageType) -> str:
    doc = (entry.model.__doc__ or "").strip()
    return " ".join(doc.split()) if doc and entry.model.__module__.startswith("shared.contracts") else ""


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"CloudEvent": _envelope(), "CloudEventHeaders": _headers()}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {
        name: {
            "address": exchange,
            "description": description,
            "messages": {},
            "bindings": {"amqp": {
                "is": "routingKey",
                "exchange": {"name": exchange, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
                "bindingVersion": AMQP_BINDING,
            }},
        }
        for exchange, (name, description) in CHANNELS.items()
    }
    operations: dict[str, Any] = {}
    for entry in CATALOGUE:
        if entry.exchange not in routing.PUBLIC_EXCHANGES:
            continue
        channel, _ = CHANNELS[entry.exchange]
        key = _key(entry)
        _hoist(entry.model, schemas)
        schemas[f"{key}.event"] = {
            "allOf": [
                {"$ref": "#/components/schemas/CloudEvent"},
                {"type": "object", "properties": {
                    "type": {"const": entry.type},
                    "dataschema": {"const": dataschema_of(entry.model)},
                    "data": {"$ref": f"#/components/schemas/{entry.model.__name__}"},
                }},
            ],
        }
        messages[key] = {
            "name": key,
            "title": entry.type,
            **({"description": description} if (description := _describe(entry)) else {}),
            "contentType": CONTENT_TYPE,
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": f"#/components/schemas/{key}.event"},
            "bindings": {"amqp": {"messageType": entry.type, "bindingVersion": AMQP_BINDING}},
        }
        channels[channel]["messages"][key] = {"$ref": f"#/components/messages/{key}"}
        submitted = entry.publisher is None  # another system's: a submission, a fulfilment result
        operations[("submit." if submitted else "publish.") + key] = {
            # Ours to receive (another system's) or to send (ours).
            "action": "receive" if submitted else "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": f"routing key {entry.routing_key}",
            "messages": [{"$ref": f"#/channels/{channel}/messages/{key}"}],
            "bindings": {"amqp": {
                "cc": [entry.routing_key],
                "deliveryMode": 2,  # persistent
                "mandatory": True,
                "bindingVersion": AMQP_BINDING,
            }},
        }
    return {
        "asyncapi": "3.0.0",
        "id": DOCUMENT_ID,
        "info": {
            "title": "arcserve-licensing: the Arcserve license contract process over AMQP",
            "version": CONTRACT_VERSION,
            "description": (
                "Submissions go to `arcserve.applications` with the kind as routing key; events come out on "
                "`arcserve.events`. Every message is a CloudEvents 1.0 event with the extension `tenantid`, in "
                "either content mode of the CloudEvents RabbitMQ binding: structured (the event is the JSON body, "
                "`application/cloudevents+json`; the payloads below) or binary (the attributes in `ce-` headers, "
                "the content type `application/json`, the body the payload's `data`). Submissions may come in "
                "either, with the same checks; events come out structured unless the deployment sets "
                "`ARCSERVE_CLOUDEVENTS_MODE=binary`. A direct publisher connects with a broker user of its own, sets the AMQP "
                "`user_id` to it, and acts only for the tenants an operator allowed (docs/security.md, \"Onboarding a "
                "direct publisher\"). A message that breaks its schema is dead-lettered with the reason; a "
                "submission's tenant also sees `application.rejected.<kind>` with code `invalid_application`. "
                "With `ARCSERVE_FULFILMENT=external`, each accepted application that needs keys goes out on "
                "`arcserve.fulfilment` as `fulfilment.requested`, and its result comes back there as "
                "`fulfilment.fulfilled` or `fulfilment.rejected`, from a broker user allowed for fulfilment "
                "(docs/security.md, \"Onboarding a fulfilment system\"), else dead-lettered `unauthorized_publisher`."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
