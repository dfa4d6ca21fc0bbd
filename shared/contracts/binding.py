"""How a CloudEvent rides on a RabbitMQ message: the CloudEvents RabbitMQ protocol binding
(Knative eventing-rabbitmq's spec, which the official SDK implements as
`cloudevents.core.bindings.rabbitmq`), in both of its content modes:

- **structured**: the whole event is the body, as JSON; the content type says so
  (`application/cloudevents+json`);
- **binary**: every attribute but `datacontenttype` is a header `ce-<name>` (names read
  case-insensitively), `datacontenttype` is the message's content type, and the body is
  `data` alone.

A message is binary when it carries `ce-` headers and its content type is not a CloudEvents
format; any other message is structured (one without a content type too, as every message
was before binary mode was read). Both become the same dict of attributes and `data`, read
by one reader (`envelope.event_of`): the same limits, the same reasons to dead-letter, and
after it the same tenant and publisher checks and the same inbox.

Sending: the outbox keeps each event as its structured JSON; `write` turns that into what
goes on the wire in the mode a deployment chose (`ARCSERVE_CLOUDEVENTS_MODE`), structured by
default.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.contracts.envelope import CONTENT_TYPE, CloudEvent, PoisonMessage, event_of, parse_event, parse_json
from shared.contracts.limits import printable

ContentMode = Literal["structured", "binary"]
HEADER_PREFIX = "ce-"
DATA_CONTENT_TYPE = "application/json"  # what every `data` of ours is


@dataclass(frozen=True)
class Wire:
    """What is sent: the body, the AMQP content type, and the headers it adds."""

    body: bytes
    content_type: str
    headers: dict[str, Any] = field(default_factory=dict)


def read(body: bytes, content_type: str | None, headers: Mapping[str, Any] | None) -> CloudEvent:
    """The CloudEvent a message carries, in whichever mode it came; PoisonMessage naming
    what is wrong with it."""
    attributes = _attributes(headers)
    if not attributes or is_structured(content_type):
        return parse_event(body)
    if content_type:
        attributes["datacontenttype"] = content_type
    attributes["data"] = _data(body, content_type)
    return event_of(attributes)


def write(structured: bytes, mode: ContentMode) -> Wire:
    """What to send for an event written in structured mode (`CloudEvent.to_json`)."""
    if mode == "structured":
        return Wire(structured, CONTENT_TYPE)
    attributes = json.loads(structured)
    data = attributes.pop("data", None)
    content_type = attributes.pop("datacontenttype", None) or DATA_CONTENT_TYPE
    headers = {HEADER_PREFIX + name: value if isinstance(value, str) else json.dumps(value)
               for name, value in attributes.items() if value is not None}
    body = b"" if data is None else json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Wire(body, content_type, headers)


def is_structured(content_type: str | None) -> bool:
    return (content_type or "").strip().lower().startswith("application/cloudevents")


def _attributes(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if not lowered.startswith(HEADER_PREFIX):
            continue
        attribute = lowered[len(HEADER_PREFIX):]
        if attribute in found:
            raise PoisonMessage(f"not_cloudevent: header {printable(lowered)} given twice")
        if attribute == "data":
            raise PoisonMessage("not_cloudevent: in binary mode `data` is the body, not a ce-data header")
        found[attribute] = _value(lowered, value)
    return found


def _value(header: str, value: Any) -> Any:
    """A header's value as an attribute: text (the binding sends strings; the broker may hand
    them over as bytes), or an AMQP boolean, integer or timestamp as it is."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise PoisonMessage(f"not_cloudevent: header {printable(header)} is not UTF-8 text") from None
    if isinstance(value, str | bool | int | datetime):
        return value
    raise PoisonMessage(f"not_cloudevent: header {printable(header)} must be a string, not {type(value).__name__}")


def _data(body: bytes, content_type: str | None) -> Any:
    """A binary-mode body as `data`: JSON, as every submission and event of ours is."""
    media_type = (content_type or DATA_CONTENT_TYPE).split(";", 1)[0].strip().lower()
    if media_type not in ("application/json", "text/json") and not media_type.endswith("+json"):
        raise PoisonMessage(f"unsupported_content_type: data of type {printable(content_type or '')!r}; "
                            f"submissions carry JSON ({DATA_CONTENT_TYPE})")
    return parse_json(body) if body else None
