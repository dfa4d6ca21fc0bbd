"""Hostile query parameters, never a 500 (docs/architecture.md, "Security"): each request is made the way an
outside test made it, over real HTTP against the running services and the portal in front of them."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support.stack import Stack, Tenant, assert_error


def cursor_of(value: Any) -> str:
    """A cursor as the API spells its own (base64url of JSON, no padding), of any value."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Cursors the status API never returned; each was a 500 (an id of the wrong type, a time that overflows once
# converted to UTC, which Postgres then refused).
CRAFTED_CURSORS = {
    "int-id": ["2024-01-01T00:00:00+00:00", 5],
    "list-id": ["2024-01-01T00:00:00+00:00", ["x"]],
    "null-id": ["2024-01-01T00:00:00+00:00", None],
    "object-id": ["2024-01-01T00:00:00+00:00", {"a": 1}],
    "year-9999-minus-14h": ["9999-12-31T23:59:59-14:00", "00000000-0000-0000-0000-000000000000"],
    "year-1-plus-14h": ["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"],
    "no-offset": ["2024-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"],
    "three-items": ["2024-01-01T00:00:00+00:00", "00000000-0000-0000-0000-000000000000", 1],
    "an-object": {"at": "2024-01-01T00:00:00+00:00", "id": "00000000-0000-0000-0000-000000000000"},
    "two-keys": {"2024-01-01T00:00:00+00:00": 1, "00000000-0000-0000-0000-000000000000": 2},
    "a-number": 5,
    "not-utf-8": b"\xff\xfe[\x80]",
}


@pytest.mark.parametrize("path", ["/v1/contracts", "/v1/applications"])
@pytest.mark.parametrize("value", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
async def test_a_crafted_cursor_answers_422_naming_the_cursor(stack: Stack, tenant: Tenant, path: str,
                                                              value: Any) -> None:
    response = await stack.get(tenant, f"{path}?cursor={cursor_of(value)}")
    body = assert_error(response, 422, "invalid_request")
    assert body["message"].startswith("cursor: "), body
    assert body["errors"] == [{"field": "cursor", "problem": body["message"].removeprefix("cursor: ")}], body


@pytest.mark.parametrize("query", [
    "product=%00", "product=a%00b", "product=%0d%0a", "status=%00", "contract_id=%00", "limit=%00",
    "limit=99999999999999999999999", "limit=-1", "limit=1e3", "contract_id=1", "status=active%00",
])
async def test_hostile_list_parameters_answer_422(stack: Stack, tenant: Tenant, query: str) -> None:
    for path in ("/v1/contracts", "/v1/applications"):
        response = await stack.get(tenant, f"{path}?{query}")
        assert response.status_code in (200, 422), (path, query, response.text)
        if response.status_code == 422:
            assert_error(response, 422, "invalid_request")
