"""The CloudEvents 1.0 envelope of every message (docs/architecture.md, "Public contract"): the model, and
the structured JSON mode's reader; shared/contracts/binding.py carries it on AMQP in either content mode."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.contracts import limits

CONTENT_TYPE = "application/cloudevents+json"
# docs/architecture.md, "Security": bodies have size limits. The broker refuses bigger
# messages still (`max_message_size` in deploy/images/rabbitmq/rabbitmq.conf).
MAX_MESSAGE_BYTES = 256 * 1024

# Identifiers end up in tables, logs and headers: one line of text.
Line = Annotated[str, AfterValidator(limits.no_control_characters)]


class CloudEvent(BaseModel):
    # Extensions (like `tenantid`) are allowed by the spec; `tenantid` is ours and typed.
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Line = Field(min_length=1, max_length=256)
    source: Line = Field(min_length=1, max_length=1024)
    type: Line = Field(min_length=1, max_length=256)
    time: AwareDatetime | None = None  # as the publisher claims it; R12 counts from receipt
    subject: Line | None = Field(default=None, max_length=256)
    datacontenttype: Line | None = Field(default=None, max_length=256)
    dataschema: Line | None = Field(default=None, max_length=1024)  # where `data`'s schema is (docs/asyncapi.json)
    tenantid: Line | None = Field(default=None, min_length=1, max_length=128)
    data: Any = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class PoisonMessage(Exception):
    """A message no retry can fix; it is dead-lettered with `reason` (docs/architecture.md, "Public contract")."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class RetryLater(Exception):
    """A message that may succeed later (e.g. a result that overtook the event it follows);
    it goes to a delayed retry queue, and is dead-lettered once the retries run out."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def parse_event(body: bytes) -> CloudEvent:
    """Decode a structured-mode message body; raise PoisonMessage saying what is wrong with
    it. The limits of `data` are checked with its model (shared/contracts/catalogue.py), so
    that a submission past them is still rejected for its tenant to see."""
    raw = parse_json(body)
    if not isinstance(raw, dict):
        raise PoisonMessage("not_cloudevent: body is JSON but not an object")
    return event_of(raw)


def parse_json(body: bytes) -> Any:
    """A message body as JSON within the limits (shared/contracts/limits.py), or PoisonMessage."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise PoisonMessage(f"oversized: {len(body)} bytes, limit {MAX_MESSAGE_BYTES}")
    try:
        return limits.parse(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessage(f"not_json: {exc}") from None
    except limits.LimitExceeded as exc:
        raise PoisonMessage(f"limit_exceeded: {exc}") from None
    except limits.DuplicateKey as exc:
        raise PoisonMessage(f"duplicate_key: {exc}") from None


def event_of(raw: dict[str, Any]) -> CloudEvent:
    """The CloudEvent of its attributes and `data`, however they travelled (either content
    mode, shared/contracts/binding.py): one set of checks for both."""
    try:
        limits.check({name: value for name, value in raw.items() if name != "data"})
    except limits.LimitExceeded as exc:
        raise PoisonMessage(f"limit_exceeded: {exc}") from None
    try:
        return CloudEvent.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(event)'}: {e['msg']}" for e in exc.errors()
        )
        raise PoisonMessage(f"not_cloudevent: {problems}") from None


def new_event(
    *,
    type: str,
    source: str,
    data: dict[str, Any],
    tenant_id: str | None,
    subject: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
    extensions: dict[str, str] | None = None,
    dataschema: str | None = None,
) -> CloudEvent:
    return CloudEvent(
        **(extensions or {}),
        specversion="1.0",
        id=id or str(uuid.uuid4()),
        source=source,
        type=type,
        time=time or datetime.now(UTC),
        subject=subject,
        datacontenttype="application/json",
        dataschema=dataschema,
        tenantid=tenant_id,
        data=data,
    )
