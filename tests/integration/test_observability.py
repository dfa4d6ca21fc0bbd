"""What operators watch (docs/operations.md, "Observability"): metrics on each service's internal port,
JSON log lines that name the message they are about, one line per decision, an access log,
and probes that tell "not ready" (broker, database, schema) from "wedged"."""
from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.status.handlers import SUBMISSIONS
from shared.observability import logs
from shared.observability.logs import MESSAGE_FIELDS
from tests.support.stack import Stack, Tenant, dead_letters, eventually, new_application, submission


async def scrape(stack: Stack, service: str = "status") -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample the service's operator port serves: (name, labels) → value."""
    text = (await stack.http.get(stack.operator_url(service, "/metrics"))).text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_an_application_is_measured_from_submission_to_completion(stack: Stack, tenant: Tenant) -> None:
    before = await scrape(stack)
    application = await stack.apply(tenant, new_application())
    assert application["status"] == "completed"
    await stack.drained()
    after = await scrape(stack)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("arcserve_application_completion_seconds_count", kind="new") >= 1
    assert grew("arcserve_application_completion_seconds_sum", kind="new") > 0
    for queue in ("arcserve.status.submissions", "arcserve.status.results", "arcserve.license-issuer",
                  "arcserve.order-id"):
        assert grew("arcserve_handler_duration_seconds_count", queue=queue, outcome="handled") >= 1, queue
        assert grew("arcserve_unit_of_work_messages_count", queue=queue) >= 1, queue  # its transactions
    assert grew("arcserve_http_request_duration_seconds_count", service="intake", method="POST",
                route="/v1/applications", status="202") == 1
    assert grew("arcserve_http_request_duration_seconds_count", service="status", method="GET",
                route="/v1/applications/{application_id}", status="200") >= 1
    assert grew("arcserve_application_decisions_total", kind="new", outcome="accepted") >= 1
    for service in ("status", "license-issuer", "order-id"):  # each relay caught up
        samples = await eventually(partial(_empty_outbox, stack, service), f"{service}'s outbox backlog at 0")
        assert value(samples, "arcserve_outbox_oldest_age_seconds", service=service) == 0


async def _empty_outbox(stack: Stack, service: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    samples = await scrape(stack, service.replace("-", "_"))
    present = ("arcserve_outbox_backlog", frozenset({("service", service)})) in samples
    return samples if present and value(samples, "arcserve_outbox_backlog", service=service) == 0 else None


async def test_duplicates_absorbed_and_dead_letters_are_counted_by_reason(stack: Stack, tenant: Tenant) -> None:
    queue = SUBMISSIONS.name
    before = await scrape(stack)
    application_id = str(uuid.uuid4())
    body = json.dumps(submission(tenant.name, new_application(), application_id=application_id,
                                 event_id=application_id)).encode()
    for _ in range(2):  # the same message twice: one effect
        await stack.publish_raw(stack.topology.applications, "new", body, message_id=application_id)
    await stack.wait_application(tenant, application_id)
    await stack.publish_raw(stack.topology.applications, "new", b"{not json", message_id=str(uuid.uuid4()))
    await dead_letters(stack, SUBMISSIONS.name, 1)

    async def counted() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        after = await scrape(stack)
        done = (value(after, "arcserve_inbox_duplicates_total", queue=queue)
                - value(before, "arcserve_inbox_duplicates_total", queue=queue) >= 1
                and value(after, "arcserve_dead_lettered_total", queue=queue, reason="not_json")
                - value(before, "arcserve_dead_lettered_total", queue=queue, reason="not_json") == 1)
        return after if done else None

    after = await eventually(counted, "the duplicate and the dead letter counted")
    reasons = {dict(labels)["reason"] for name, labels in after if name == "arcserve_dead_lettered_total"}
    assert all(reason.replace("_", "").isalpha() for reason in reasons), reasons  # codes, never free text


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the services log, as the JSON lines a process writes."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.ContextFilter("test-stack"))
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # setLevel, not `.level =`: loggers cache what they last allowed
    root.addHandler(handler)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


async def test_log_lines_name_the_message_they_are_about(stack: Stack, tenant: Tenant,
                                                         json_lines: io.StringIO) -> None:
    accepted = await stack.apply(tenant, new_application())
    rejected = await stack.apply(tenant, new_application())  # R2: one live contract per product
    assert rejected["status"] == "rejected"
    await stack.drained()
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]

    about_messages = [line for line in lines if line.get("message_id")]
    assert about_messages
    for line in about_messages:
        assert set(MESSAGE_FIELDS) <= set(line) and line["trace_id"], line
    decisions = {line["application_id"]: line for line in lines if line.get("decision")}
    assert decisions[accepted["application_id"]]["decision"] == "accepted"
    assert decisions[accepted["application_id"]]["contract_id"] == accepted["contract_id"]
    refusal = decisions[rejected["application_id"]]
    assert refusal["decision"] == "rejected" and refusal["reason"]["code"] == "contract_exists"
    assert refusal["tenant_id"] == tenant.name and refusal["kind"] == "new"
    assert sum(1 for line in lines if line.get("decision") and line["application_id"] == accepted["application_id"]) == 1

    access = [line for line in lines if line["logger"] == "arcserve.access" and line["http"]["method"] == "POST"]
    assert {line["application_id"] for line in access} >= {accepted["application_id"], rejected["application_id"]}
    assert all(line["http"]["status"] == 202 and line["tenant_id"] == tenant.name for line in access)
    assert tenant.key not in json_lines.getvalue()  # the bearer key is never logged


async def test_a_request_through_the_portal_is_one_trace_with_intakes(stack: Stack, tenant: Tenant,
                                                                      json_lines: io.StringIO) -> None:
    answer = await stack.http.post(f"{stack.portal_url}/v1/applications", json=new_application(),
                                   headers={"Authorization": f"Bearer {tenant.key}"})
    assert answer.status_code == 202

    def posts() -> dict[str, dict[str, Any]]:  # one process here: the access lines told apart by route
        lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
        return {line["http"]["route"]: line for line in lines
                if line["logger"] == "arcserve.access" and line["http"]["method"] == "POST"}

    async def both() -> dict[str, dict[str, Any]] | None:  # the portal's, once its streamed answer ended
        seen = posts()
        return seen if {"/v1/{path:path}", "/v1/applications"} <= set(seen) else None

    seen = await eventually(both, "the portal's and intake's access lines")
    portal, intake = seen["/v1/{path:path}"], seen["/v1/applications"]
    # The portal's forwarder sends its trace on (httpx instrumentation); intake continues it.
    assert portal["trace_id"] == intake["trace_id"] and intake["trace_id"]
    assert intake["application_id"] == answer.json()["application_id"]


async def test_readiness_follows_the_schema_and_liveness_a_dead_relay(new_stack: Any) -> None:
    system: Stack = await new_stack()
    await system.start("status")
    service = system.services["status"]

    async def probe(path: str) -> int:
        return (await system.http.get(system.operator_url("status", path))).status_code

    assert (await probe("/readyz"), await probe("/healthz")) == (200, 200)
    conn = await asyncpg.connect(system.settings.database_url)
    try:  # as after a restore from before the last migration: the schema is behind this code
        version = await conn.fetchval("DELETE FROM status.schema_migrations WHERE version = "
                                      "(SELECT max(version) FROM status.schema_migrations) RETURNING version")
        try:
            assert await eventually(lambda: _is(probe("/readyz"), 503), "readiness to fail")
            assert await probe("/healthz") == 200  # not wedged: a restart would not help
        finally:
            await conn.execute("INSERT INTO status.schema_migrations (version) VALUES ($1)", version)
    finally:
        await conn.close()
    assert await eventually(lambda: _is(probe("/readyz"), 200), "readiness back")

    relay = service._relay_task
    assert relay is not None
    relay.cancel()  # the outbox relay died: nothing it writes would leave any more
    assert await eventually(lambda: _is(probe("/healthz"), 503), "liveness to fail")
    assert (await system.http.get(system.operator_url("status", "/healthz"))).json()["problem"] == "status-relay ended"


async def test_a_relay_that_cannot_publish_shows_as_outbox_backlog_and_age(new_stack: Any) -> None:
    system: Stack = await new_stack()
    await system.start("status")
    tenant = await system.tenant()
    events_exchange = system.topology.name("arcserve.events")
    await system.servers.rabbitmqctl("eval", f'rabbit_exchange:delete(rabbit_misc:r(<<"/">>, exchange, '
                                             f'<<"{events_exchange}">>), false, <<"test">>).')
    application_id = str(uuid.uuid4())
    body = json.dumps(submission(tenant.name, new_application(), application_id=application_id,
                                 event_id=application_id)).encode()
    await system.publish_raw(system.topology.applications, "new", body, message_id=application_id)

    async def stuck() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        samples = await scrape(system)
        backlog = value(samples, "arcserve_outbox_backlog", service="status")
        return samples if backlog >= 1 and value(samples, "arcserve_outbox_oldest_age_seconds", service="status") > 1 \
            else None

    await eventually(stuck, "the decision's events waiting in the outbox, growing older")
    assert system.deployment is not None
    await system.deployment.provision()  # the runbook's fix: provision the broker side again
    assert await eventually(lambda: _empty_outbox(system, "status"), "the relay to catch up", timeout=30)
    await system.wait_application(Tenant(tenant.name, tenant.key), application_id, "processing")


async def _is(status: Any, expected: int) -> bool:
    return await status == expected
