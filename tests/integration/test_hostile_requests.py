"""Hostile requests, never a 500 (docs/architecture.md, "Security"): crafted cursors and query parameters answer
422 naming the parameter; oversized or too many header fields 431 on every HTTP port. Each request is made the
way an outside test made it, over real HTTP against the running services and the portal in front of them."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from shared.http import headers
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


# ---- request headers: 431 past the limits (shared/http/headers.py) -------------------------


async def raw_request(url: str, head: bytes, timeout_s: float = 20.0) -> tuple[int, bytes]:
    """Send `head` (a request line and headers, as bytes) on a connection of its own and read the answer to the
    end: (status, body). The head is written while the answer is read, as an attacker's client would: a server
    that answers early must not lose its answer to a reset."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(head)
            await writer.drain()

    sending = asyncio.create_task(send())
    try:
        async with asyncio.timeout(timeout_s):
            answer = await reader.read()  # to EOF: every request says Connection: close
            await sending
    finally:
        sending.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def head(path: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


MIB = 1024 * 1024
OVERSIZED = {
    "one-1-MiB-header": [("X-Big", "a" * MIB)],
    "one-8-MiB-header": [("X-Big", "a" * 8 * MIB)],
    "5000-headers": [(f"X-H-{i}", "a") for i in range(5000)],
    "101-headers": [(f"X-H-{i}", "a") for i in range(101 - 2)],  # with Host and Connection
    "one-field-over-8-KiB": [("X-Big", "a" * (headers.MAX_FIELD_BYTES - len("X-Big") + 1))],
    "33-KiB-in-8-KiB-fields": [(f"X-Big-{i}", "a" * 8000) for i in range(5)],
}


def public_urls(stack: Stack) -> dict[str, str]:
    return {"intake": stack.url("intake", ""), "status": stack.url("status", ""), "portal": stack.portal_url,
            "status-operator": stack.operator_url("status", "")}


@pytest.mark.parametrize("sent", OVERSIZED.values(), ids=OVERSIZED.keys())
async def test_oversized_or_too_many_headers_answer_431_on_every_http_service(stack: Stack, tenant: Tenant,
                                                                              sent: list[tuple[str, str]]) -> None:
    answers = {service: await raw_request(url, head("/v1/contracts", [("Authorization", f"Bearer {tenant.key}"), *sent]))
               for service, url in public_urls(stack).items()}
    assert {service: status for service, (status, _) in answers.items()} == dict.fromkeys(answers, 431), answers
    for service, (_, body) in answers.items():
        answer = json.loads(body)
        assert answer["code"] == "header_fields_too_large" and answer["message"], (service, answer)


async def test_headers_at_the_limits_are_served(stack: Stack, tenant: Tenant) -> None:
    """Exactly the limits: 100 header fields, one of them 8 KiB, 32 KiB in all."""
    auth = ("Authorization", f"Bearer {tenant.key}")
    fill = headers.MAX_HEADERS_BYTES - sum(len(k) + len(v) for k, v in [("Host", "127.0.0.1"), ("Connection", "close"), auth])
    at_limits = [auth, ("X-Big-0", "a" * (headers.MAX_FIELD_BYTES - len("X-Big-0")))]
    fill -= headers.MAX_FIELD_BYTES
    small = headers.MAX_HEADERS - 2 - len(at_limits)  # Host and Connection
    name = "X-S-00"
    at_limits += [(f"X-S-{i:02}", "a" * (fill // small - len(name))) for i in range(small)]
    assert len(at_limits) + 2 == headers.MAX_HEADERS
    # The portal's own page: what it forwards under /v1 carries a few headers of the hop's own besides.
    for service, url in {"intake": stack.url("intake", "/v1/applications"), "status": stack.url("status", "/v1/contracts"),
                         "portal": stack.portal_url + "/", "status-operator": stack.operator_url("status", "/healthz")}.items():
        parts = urlsplit(url)
        status, body = await raw_request(url, head(parts.path, at_limits))
        assert status in (200, 405), (service, status, body[:300])


async def test_the_head_limit_is_each_requests_on_a_kept_alive_connection(stack: Stack, tenant: Tenant) -> None:
    """Requests one after another on one connection, each with 24 KiB of fields: the count starts again each time."""
    fields = {"Authorization": f"Bearer {tenant.key}", **{f"X-F-{i}": "a" * 8000 for i in range(3)}}
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(4):
            response = await client.get(stack.url("status", "/v1/contracts"), headers=fields)
            assert response.status_code == 200, response.text


async def test_a_request_the_parser_refuses_answers_400_with_code_and_message(stack: Stack) -> None:
    """A control character in a field value is outside HTTP (RFC 9110 §5.5): uvicorn answered it in plain text."""
    for service, url in public_urls(stack).items():
        status, body = await raw_request(url, head("/v1/contracts", [("X-Odd", "a\x01b")]))
        assert status == 400, (service, status, body[:300])
        assert json.loads(body)["code"] == "bad_request", (service, body[:300])
