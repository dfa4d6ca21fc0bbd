"""The CloudEvents 1.0 envelope (structured JSON mode) of every message (docs/architecture.md, "Public contract")."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

CONTENT_TYPE = "application/cloudevents+json"
MAX_MESSAGE_BYTES = 256 * 1024  # docs/architecture.md, "Security": bodies have size limits


class CloudEvent(BaseModel):
    # Extensions (like `tenantid`) are allowed by the spec; `tenantid` is ours and typed.
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=1024)
    type: str = Field(min_length=1, max_length=256)
    time: AwareDatetime | None = None  # RFC 3339 requires the offset; R12 counts from it
    subject: str | None = Field(default=None, max_length=256)
    datacontenttype: str | None = None
    tenantid: str | None = Field(default=None, min_length=1, max_length=128)
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
    """Decode a message body; raise PoisonMessage saying what is wrong with it."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise PoisonMessage(f"oversized: {len(body)} bytes, limit {MAX_MESSAGE_BYTES}")
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessage(f"not_json: {exc}") from None
    if not isinstance(raw, dict):
        raise PoisonMessage("not_cloudevent: body is JSON but not an object")
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
) -> CloudEvent:
    return CloudEvent(
        specversion="1.0",
        id=id or str(uuid.uuid4()),
        source=source,
        type=type,
        time=time or datetime.now(UTC),
        subject=subject,
        datacontenttype="application/json",
        tenantid=tenant_id,
        data=data,
    )
