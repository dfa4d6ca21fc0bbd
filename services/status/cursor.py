"""A list's cursor: where a page ended, the (time, id) of its last row, as base64url of a JSON pair.

A cursor comes back from the client, so it is read as hostile input: anything but a pair of an ISO 8601
time with its offset and a UUID is refused, and so is a time that has no instant in UTC (year 9999 at
−14:00 is past the last day Python can hold once converted; Postgres would be handed the overflow)."""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from uuid import UUID

from shared.contracts import limits

Cursor = tuple[datetime, UUID]


class InvalidCursor(ValueError):
    """Not a cursor this API returned; the message says what is wrong, never echoing it."""


def encode_cursor(at: datetime, ident: UUID) -> str:
    raw = json.dumps([at.isoformat(), str(ident)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    try:
        # Non-ASCII text and a wrong padding are ValueErrors; so are bytes that are not UTF-8 or not JSON.
        value = limits.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise InvalidCursor("not base64url of JSON") from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(item, str) for item in value)):
        raise InvalidCursor("not a pair of a time and an id")
    try:
        at, ident = datetime.fromisoformat(value[0]), UUID(value[1])
    except ValueError:
        raise InvalidCursor("not a pair of a time and an id") from None
    if at.utcoffset() is None:
        raise InvalidCursor("its time has no offset")
    try:
        return at.astimezone(UTC), ident
    except OverflowError:
        raise InvalidCursor("its time is out of range") from None
