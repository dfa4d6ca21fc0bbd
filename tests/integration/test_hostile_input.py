"""Limits, never a 500 (docs/architecture.md, "Security"): hostile bodies are refused with
a 422 naming the problem at intake and publish nothing; the same inputs published straight
to the broker are dead-lettered at once (never retried), a parseable submission among them
is rejected for its tenant to see, and what was accepted around them is not lost."""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.status.handlers import SUBMISSIONS
from shared.messaging.consumer import ATTEMPT_HEADER, REASON_HEADER
from tests.support.stack import (
    EventTap,
    Stack,
    SubmissionTap,
    Tenant,
    assert_error,
    dead_letters,
    eventually,
    new_application,
    submission,
)

NESTED = b"[" * 20_000 + b"]" * 20_000  # 40 KB
CONTROL_NAME = "Example\x00K.K.\r\nBcc: victim@example.com"


def _with_company(name: str) -> dict[str, Any]:
    return {**new_application(), "contact": {"email": "ops@example.co.jp", "company_name": name}}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(NESTED, "nested deeper than 16 levels", id="nested-brackets"),
        pytest.param(b'{"kind": "new", "quantity": ' + b"9" * 5000 + b"}", "a number of 5000 characters", id="5000-digits"),
        pytest.param(json.dumps(_with_company(CONTROL_NAME)).encode(), "a NUL character at $.contact.company_name",
                     id="NUL-and-CRLF"),
        pytest.param(json.dumps(_with_company("Example\r\nBcc: victim@example.com")).encode(),
                     "contact.company_name: must not contain control characters", id="CRLF"),
        pytest.param(json.dumps({**new_application(), "licenses": [
            {"usage": "virtual_server", "license_type": "per_server", "quantity": 100},
            {"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]}).encode(),
            "101 license keys in one application; the limit is 100", id="keys-per-application"),
    ],
)
async def test_hostile_bodies_answer_422_naming_the_problem_and_publish_nothing(
    stack: Stack, tenant: Tenant, body: bytes, problem: str
) -> None:
    async with SubmissionTap(stack) as submissions:
        response = await stack.http.post(
            stack.url("intake", "/v1/applications"), content=body,
            headers={"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"},
        )
        answer = assert_error(response, 422, "invalid_application")
        assert problem in answer["message"], answer
        good = await stack.submit(tenant, new_application())  # the intake still serves, and this one is the only one
        assert good.status_code == 202, good.text
        await submissions.wait_for(good.json()["application_id"])
    assert [m["data"]["application_id"] for m in submissions.of(tenant)] == [good.json()["application_id"]]


async def test_hostile_submissions_over_amqp_are_dead_lettered_at_once_and_lose_nothing(
    new_stack: Callable[..., Any],
) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    exchange = stack.topology.applications
    named = str(uuid.uuid4())  # a parseable submission with a NUL in its company name
    hostile = {
        "nested": (NESTED, "limit_exceeded: nested deeper than 16 levels"),
        "digits": (b'{"specversion": "1.0", "n": ' + b"9" * 5000 + b"}", "limit_exceeded: a number of 5000 characters"),
        "tenant": (json.dumps(submission(f"{tenant.name}\r\nx", new_application())).encode(),
                   "not_cloudevent: tenantid: Value error, must not contain control characters"),
        "name": (json.dumps(submission(tenant.name, _with_company(CONTROL_NAME), application_id=named)).encode(),
                 "invalid_application: data: a NUL character at data.contact.company_name"),
        # Which tenant would a reader take, the first or the last? Neither: refused.
        "twice": (json.dumps(submission(tenant.name, new_application())).encode()[:-1] + b', "tenantid": "other"}',
                  "duplicate_key: tenantid: named more than once in its object"),
    }
    good: list[str] = []
    async with EventTap(stack) as events:
        for label, (body, _) in hostile.items():
            await stack.publish_raw(exchange, "new", body, message_id=label)
            application_id = str(uuid.uuid4())
            await stack.publish_event(exchange, "new", submission((await stack.tenant()).name, new_application(),
                                                                  application_id=application_id))
            good.append(application_id)
        rejected = await events.wait_for("application.rejected.new", application_id=named)
        for application_id in good:  # every good submission among them completes
            await events.wait_for("application.completed.new", application_id=application_id)
    assert rejected["data"]["reason"]["code"] == "invalid_application"
    assert "a NUL character at data.contact.company_name" in rejected["data"]["reason"]["message"]

    letters = {m.message_id: m for m in await dead_letters(stack, SUBMISSIONS.name, len(hostile))}
    for label, (_, reason) in hostile.items():
        headers = letters[label].headers or {}
        assert str(headers[REASON_HEADER]).startswith(reason), (label, headers[REASON_HEADER])
        assert ATTEMPT_HEADER not in headers, f"{label} was retried before it was dead-lettered"
    await stack.drained()
    application = await stack.wait_application(tenant, named, "rejected")
    assert application["reason"]["code"] == "invalid_application"


async def test_the_detail_view_shows_the_newest_applications_and_how_many_there_are(
    stack: Stack, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.status import service

    monkeypatch.setattr(service, "DETAIL_HISTORY", 2)
    contract = await stack.active_contract(tenant)
    changes = []
    for n in range(3):
        body = {"kind": "contact_change", "contract_id": contract["contract_id"],
                "contact": {"email": "ops@example.co.jp", "company_name": f"Renamed {n}"}}
        changes.append((await stack.apply(tenant, body, "completed"))["application_id"])

    detail = await stack.contract(tenant, contract["contract_id"])
    assert [a["application_id"] for a in detail["applications"]] == changes[1:]  # the newest, oldest first
    assert detail["applications_total"] == 4


async def test_a_client_that_goes_away_halfway_through_its_body_is_no_server_error(
        stack: Stack, tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.services["intake"].bound_port)
    writer.write(b"POST /v1/applications HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + tenant.key.encode() + b"\r\nContent-Length: 4000\r\n\r\n{\"kind\": \"new\", ")
    await writer.drain()
    writer.close()  # gone, 3,980 bytes short
    await writer.wait_closed()
    await eventually(lambda: _said(caplog, "the client went away before its request was read"),
                     "intake to notice the client left")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a client leaving is no error of ours"
    assert (await stack.submit(tenant, new_application())).status_code == 202  # and intake carries on


async def _said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("body", "field"), [
    pytest.param(b'{"kind": "new", "kind": "cancellation", "product": "arcserve-udp-10", "contact": '
                 b'{"email": "ops@example.co.jp", "company_name": "Example K.K."}, "licenses": '
                 b'[{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]}', "kind", id="kind"),
    pytest.param(b'{"kind": "new", "product": "arcserve-udp-10", "contact": {"email": "ops@example.co.jp", '
                 b'"email": "attacker@example.com", "company_name": "Example K.K."}, "licenses": '
                 b'[{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]}', "contact.email",
                 id="contact.email"),
    pytest.param(b'{"kind": "new", "product": "arcserve-udp-10", "contact": {"email": "ops@example.co.jp", '
                 b'"company_name": "Example K.K."}, "licenses": [{"usage": "virtual_server", "license_type": '
                 b'"per_server", "quantity": 1, "quantity": 100}]}', "licenses.0.quantity", id="licenses.0.quantity"),
])
async def test_a_member_named_twice_answers_422_naming_it_and_publishes_nothing(
    stack: Stack, tenant: Tenant, body: bytes, field: str
) -> None:
    """Readers disagree on which of the two values counts (the first, the last): the body is refused, not read."""
    async with SubmissionTap(stack) as submissions:
        for origin in (stack.url("intake", ""), stack.portal_url):  # the portal forwards the body as it came
            response = await stack.http.post(
                f"{origin}/v1/applications", content=body,
                headers={"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"},
            )
            answer = assert_error(response, 422, "invalid_application")
            assert answer["errors"] == [{"field": field, "problem": "named more than once in its object"}], answer
            assert field in answer["message"], answer
        good = await stack.submit(tenant, new_application())
        assert good.status_code == 202, good.text
        await submissions.wait_for(good.json()["application_id"])
    assert [m["data"]["application_id"] for m in submissions.of(tenant)] == [good.json()["application_id"]]
