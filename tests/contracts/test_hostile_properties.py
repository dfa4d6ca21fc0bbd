"""No request of any shape is a server error (property-based, Hypothesis): every query parameter and header of the
HTTP API, over real HTTP against a running stack. The status API's lists, ids and cursors (base64url of any JSON:
pairs of odd or overflowing times and ids of any type, lists of anything, bytes that are not UTF-8), intake's
headers (Idempotency-Key, Content-Type, Authorization) and bodies, the portal's pages and its /v1 forwarding,
each with arbitrary header fields within what HTTP allows. Every answer is below 500, and every error of the API
says `{"code", "message"}`. Derandomized, so CI runs the same requests every time.

Unlike tests/contracts/test_api_properties.py, which generates from the OpenAPI document what it declares, this
one generates what an attacker sends. Requests run in a worker thread: the stack serves HTTP on this event loop."""
from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx
import hypothesis
import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from services.status.domain.model import ApplicationStatus, ContractStatus
from tests.support.infra import Servers
from tests.support.stack import Stack, Tenant, new_application

# The stack's tracing instruments httpx in this process too: its trace ids draw from `random` while a request is
# sent, which Hypothesis would warn of at every example.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

EXAMPLES = 150  # per test: about 5 to 10 s each here

# ---- what an attacker sends -----------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
# Any offset a datetime may have (strictly within a day): year 9999 at -14:00 or year 1 at +14:00 has no UTC instant.
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
edges = st.sampled_from([datetime(9999, 12, 31, 23, 59, 59), datetime(1, 1, 1), datetime(2024, 1, 1)])
times = st.one_of(
    st.builds(lambda at, offset: at.replace(tzinfo=timezone(offset)).isoformat(), edges | st.datetimes(), offsets),
    st.datetimes().map(datetime.isoformat),  # no offset
    st.text(max_size=30),
    json_values,
)
ids = st.uuids().map(str) | json_values
pairs = st.tuples(times, ids).map(list)  # the shape of the API's own cursors, the likeliest to get far
cursor_documents = st.one_of(pairs, pairs, pairs, st.lists(json_values, max_size=4), json_values)
cursor_bytes = cursor_documents.map(lambda value: json.dumps(value).encode()) | st.binary(max_size=160)
cursors = st.one_of(*[cursor_bytes.map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="))] * 3,
                    st.text(max_size=250))
numbers = st.integers().map(str) | st.floats().map(str) | st.text(max_size=12)
# Query values as bytes, so that some are not UTF-8 once percent-decoded.
any_value = st.text(max_size=40).map(str.encode) | st.binary(max_size=40)

LIST_PARAMETERS: dict[str, st.SearchStrategy[Any]] = {
    "cursor": cursors,
    "limit": numbers,
    "status": st.sampled_from([*ContractStatus, *ApplicationStatus]).map(str) | st.text(max_size=20),
    "product": st.just("arcserve-udp-10") | st.text(max_size=120),
    "contract_id": st.uuids().map(str) | st.text(max_size=40),
}
PAGE_PARAMETERS: dict[str, st.SearchStrategy[Any]] = {
    "cursor": cursors, "start": numbers, "since": numbers, "proof": st.text(max_size=40),
    "why": st.sampled_from(["bad_key", "signed_out", "session_expired"]) | st.text(max_size=20),
    "next": st.text(max_size=40), "product": st.text(max_size=40), "license_id": st.text(max_size=40),
}


def query(known: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """The named parameters in any mix, repeated or not, among parameters of any other name; the cursor, which
    goes furthest (decoded, then handed to the database), most often."""
    def of(name: str) -> st.SearchStrategy[tuple[bytes, bytes]]:
        return known[name].map(lambda value: (name.encode(), value if isinstance(value, bytes) else value.encode()))

    named = st.sampled_from(sorted(known)).flatmap(of)
    return st.lists(st.one_of(named, named, of("cursor"), of("cursor"), st.tuples(any_value, any_value)), max_size=6)


def query_string(pairs: list[tuple[bytes, bytes]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


# RFC 9110 §5.1, §5.5: a field name is a token; a value visible characters (and obs-text), spaces and tabs inside.
TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
field_names = st.text(alphabet=TCHAR, min_size=1, max_size=30).map(str.encode)
field_values = st.binary(max_size=200).map(lambda raw: bytes(b for b in raw if b == 0x09 or 0x20 <= b != 0x7F).strip())
# The framing of the request is the client's (httpx's) to write; a forged one would only stall the connection.
FRAMING = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te", "trailer"}
extra_fields = st.lists(st.tuples(field_names.filter(lambda name: name.decode().lower() not in FRAMING), field_values),
                        max_size=12)


@dataclass
class Target:
    """The running stack as the property's requests reach it (from a worker thread)."""

    status: str
    intake: str
    portal: str
    key: str
    contract_id: str
    application_id: str
    cookie: str
    seen: dict[str, set[int]] = field(default_factory=dict)

    def authorization(self) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
        valid = [(b"Authorization", f"Bearer {self.key}".encode())]
        # Mostly the tenant's key: the query is read only after the key is checked.
        return st.one_of(st.just(valid), st.just(valid), st.just(valid), st.just([]),
                         field_values.map(lambda value: [(b"Authorization", value)]),
                         field_values.map(lambda value: [(b"Authorization", (b"Bearer " + value).strip())]))

    def at(self, route: str) -> st.SearchStrategy[tuple[str, str]]:
        """`route` and a path it takes: its {id} one of the tenant's, any UUID or any text."""
        if "{id}" not in route:
            return st.just((route, route))
        real = self.contract_id if route.startswith(("/contracts/", "/v1/contracts/")) else self.application_id
        ids = st.just(real) | st.uuids().map(str) | st.text(min_size=1, max_size=60)
        return ids.map(lambda ident: (route, route.replace("{id}", quote(ident, safe=""))))


def run(target: Target, settings_examples: int, strategy: st.SearchStrategy[Any],
        check: Callable[[httpx.Client, Any], None]) -> None:
    with httpx.Client(timeout=15, follow_redirects=False) as client:
        @hypothesis.settings(max_examples=settings_examples, derandomize=True, database=None, deadline=None,
                             phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
        @hypothesis.given(strategy)
        def property_(drawn: Any) -> None:
            check(client, drawn)

        property_()


def send(client: httpx.Client, target: Target, route: str, url: str, fields: list[tuple[bytes, bytes]],
         content: bytes | None = None) -> httpx.Response:
    """`route` names what was asked (its method and path, an id as {id}), to say which answers were reached."""
    response = client.request(route.split()[0], url, headers=fields, content=content)
    target.seen.setdefault(route, set()).add(response.status_code)
    return response


def assert_no_server_error(response: httpx.Response, *, api: bool) -> None:
    request = response.request
    sent = f"{request.method} {request.url} with {[(k, v[:80]) for k, v in request.headers.raw]}"
    assert response.status_code < 500, f"{sent}\nanswered {response.status_code}: {response.text[:500]}"
    if api and response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str) and body["message"], \
            f"{sent}\nanswered {response.status_code} without code and message: {response.text[:500]}"


# ---- the properties -------------------------------------------------------------------------------------------
async def test_no_query_parameter_or_header_of_the_status_api_is_a_server_error(target: Target) -> None:
    """Directly and through the portal's /v1 forwarding."""
    def requests() -> st.SearchStrategy[Any]:
        path = st.sampled_from(["/v1/contracts", "/v1/applications", "/v1/contracts/{id}", "/v1/applications/{id}"]
                               ).flatmap(lambda route: target.at(route))
        return st.tuples(st.sampled_from([target.status, target.portal]), path, query(LIST_PARAMETERS),
                         target.authorization(), extra_fields)

    def check(client: httpx.Client, drawn: Any) -> None:
        origin, (route, path), pairs, auth, extra = drawn
        response = send(client, target, f"GET {route}", f"{origin}{path}?{query_string(pairs)}", [*auth, *extra])
        assert_no_server_error(response, api=True)

    await asyncio.to_thread(run, target, EXAMPLES, requests(), check)
    # The properties reached past authentication and validation: real pages and records, not only refusals.
    for route in ("/v1/contracts", "/v1/applications"):
        assert {200, 401, 422} <= target.seen[f"GET {route}"], target.seen
    for route in ("/v1/contracts/{id}", "/v1/applications/{id}"):
        assert {200, 404} <= target.seen[f"GET {route}"], target.seen


async def test_no_header_or_body_of_a_submission_is_a_server_error(target: Target) -> None:
    """POST /v1/applications at intake and through the portal: Idempotency-Key, Content-Type and Authorization of
    any value, among other header fields, with an application or any JSON."""
    bodies = st.one_of(st.just(new_application()).map(lambda body: json.dumps(body).encode()),
                       json_values.map(lambda value: json.dumps(value).encode()), st.binary(max_size=100))
    headers = st.tuples(
        target.authorization(),
        st.one_of(st.none(), st.text(alphabet=TCHAR, min_size=1, max_size=20).map(str.encode), field_values),
        st.one_of(st.none(), st.just(b"application/json"), field_values),  # Content-Type
        extra_fields,
    )

    def check(client: httpx.Client, drawn: Any) -> None:
        origin, (auth, idempotency_key, content_type, extra), body = drawn
        fields = [*auth, *extra]
        if idempotency_key is not None:
            fields.append((b"Idempotency-Key", idempotency_key))
        if content_type is not None:
            fields.append((b"Content-Type", content_type))
        response = send(client, target, "POST /v1/applications", f"{origin}/v1/applications", fields, body)
        assert_no_server_error(response, api=True)

    await asyncio.to_thread(run, target, EXAMPLES, st.tuples(st.sampled_from([target.intake, target.portal]),
                                                             headers, bodies), check)
    assert {202, 401, 422} <= target.seen["POST /v1/applications"], target.seen


async def test_no_query_parameter_or_header_of_the_portals_pages_is_a_server_error(target: Target) -> None:
    """Signed in (the session's cookie) or not."""
    def requests() -> st.SearchStrategy[Any]:
        # The menu (which reads the cursor) more often than the rest.
        path = st.sampled_from(["/", "/", "/menu/rows", "/menu/rows", "/apply/new", "/lang/en", "/contracts/{id}",
                                "/contracts/{id}/live", "/contracts/{id}/addition", "/contracts/{id}/vm_count_increase",
                                "/applications/{id}"]).flatmap(lambda route: target.at(route))
        cookie: st.SearchStrategy[list[tuple[bytes, bytes]]] = st.one_of(
            st.just([(b"Cookie", target.cookie.encode())]), st.just([(b"Cookie", target.cookie.encode())]),
            st.just([]), field_values.map(lambda value: [(b"Cookie", value)]))
        return st.tuples(path, query(PAGE_PARAMETERS), cookie, extra_fields)

    def check(client: httpx.Client, drawn: Any) -> None:
        (route, path), pairs, cookie, extra = drawn
        response = send(client, target, f"GET {route}", f"{target.portal}{path}?{query_string(pairs)}",
                        [*cookie, *extra])
        assert_no_server_error(response, api=False)

    await asyncio.to_thread(run, target, EXAMPLES, requests(), check)
    menu = target.seen["GET /"] | target.seen["GET /menu/rows"]
    assert {200, 303, 422} <= menu, target.seen


@pytest.fixture(scope="module")
async def target(new_stack_module: Stack) -> Target:
    stack = new_stack_module
    tenant: Tenant = await stack.tenant()
    contract = await stack.active_contract(tenant)
    for _ in range(3):  # more than one page at limit=1, so that cursors the API returned are in play too
        await stack.apply(tenant, {"kind": "contact_change", "contract_id": contract["contract_id"],
                                   "contact": {"email": "new@example.co.jp", "company_name": "New K.K."}})
    async with httpx.AsyncClient(base_url=stack.portal_url, timeout=10) as browser:
        page = await browser.get("/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text[:300]
        signed = await browser.post("/signin", data={"csrf": csrf.group(1), "api_key": tenant.key})
        assert signed.status_code == 303, signed.text
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    return Target(status=stack.url("status", ""), intake=stack.url("intake", ""), portal=stack.portal_url,
                  key=tenant.key, contract_id=contract["contract_id"],
                  application_id=contract["applications"][0]["application_id"], cookie=cookie)


@pytest.fixture(scope="module")
async def new_stack_module(infrastructure: Servers) -> AsyncIterator[Stack]:
    """A stack of this module's own without a rate limit: a 429 would check nothing."""
    stack = await Stack.create(infrastructure, rate_limit_per_s=0)
    try:
        await stack.start()
        await stack.start_portal()
        yield stack
    finally:
        await stack.close()

