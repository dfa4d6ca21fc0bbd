"""License keys are secrets (docs/architecture.md, "Security"): never on `arcserve.events`, which other
systems read; sealed at rest in every table that holds them; on their own route only the
status service reads; redacted in the dead-letter tool unless asked for; and in no log,
metric or error of a whole run."""
from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import aiormq
import asyncpg
import pytest

from services.provisioning import broker
from services.status.handlers import RESULTS
from tests.support.stack import EventTap, Stack, Tenant, eventually
from tests.support.tools import run_tool

THREE_KEYS = [{"usage": "virtual_server", "license_type": "per_server", "quantity": 2},
              {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 4}]


def _keys(contract: dict[str, Any]) -> dict[str, str]:
    return {lic["license_id"]: lic["license_key"] for lic in contract["licenses"] if lic["license_key"]}


async def test_a_spy_on_the_events_exchange_sees_no_key_and_the_tables_hold_them_sealed(
    stack: Stack, tenant: Tenant
) -> None:
    async with EventTap(stack) as spy:  # another system's queue, bound to everything
        contract = await stack.active_contract(tenant, THREE_KEYS)
        await spy.wait_for("license.issued", contract_id=contract["contract_id"])
        await stack.drained()
    keys = _keys(contract)
    assert len(keys) == 3
    seen = json.dumps([event for _, event in spy.events])
    assert not [key for key in keys.values() if key in seen], "a license key travelled on arcserve.events"
    [issued] = spy.matching("license.issued", contract_id=contract["contract_id"])
    assert {lic["license_id"] for lic in issued["data"]["licenses"]} == set(keys)  # which licenses, not their keys

    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        held = {
            "status.licenses": await conn.fetch(
                "SELECT license_id::text AS id, sealed_key FROM status.licenses WHERE contract_id = $1",
                uuid.UUID(contract["contract_id"])),
            "license_issuer.keys": await conn.fetch(
                "SELECT license_id::text AS id, sealed_key FROM license_issuer.keys WHERE contract_id = $1",
                uuid.UUID(contract["contract_id"])),
        }
        for table in ("status", "license_issuer"):  # no column anywhere holds a key in clear
            text = await conn.fetchval(f"SELECT string_agg(t::text, ' ') FROM {table}.{'licenses' if table == 'status' else 'keys'} t")
            assert not [key for key in keys.values() if key in text], table
    finally:
        await conn.close()
    for table, rows in held.items():
        assert {r["id"] for r in rows} == set(keys), table
        for row in rows:
            assert row["sealed_key"].startswith("v1:") and keys[row["id"]] not in row["sealed_key"], table
            assert stack.keyring.open(row["sealed_key"], context=row["id"]) == keys[row["id"]], table


async def test_no_other_system_may_bind_a_queue_to_the_keys_route(stack: Stack) -> None:
    """A consumer of the public events (it may read arcserve.events, and make queues of its
    own) gets nothing of the keys' exchange."""
    name, password = f"{stack.settings.topology_prefix}reporting-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(16)
    own = f"^{stack.topology.prefix}reporting\\..*"
    management = broker.Management.for_amqp_url(stack.settings.amqp_url, stack.servers.management_url)
    management.import_definitions({
        "users": [{"name": name, "password_hash": broker.password_hash(password), "hashing_algorithm": broker.HASHING,
                   "tags": []}],
        "permissions": [{"user": name, "vhost": "/", "configure": own, "write": own,
                         "read": f"{own}|^{stack.topology.events.replace('.', chr(92) + '.')}$"}],
    })
    parts = urlsplit(stack.settings.amqp_url)
    url = urlunsplit(parts._replace(netloc=f"{quote(name, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"))
    try:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{stack.topology.prefix}reporting.{uuid.uuid4().hex[:6]}",
                                                exclusive=True)
            await queue.bind(stack.topology.events, "#")  # the public events: allowed
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await queue.bind(stack.keys_exchange, "#")
    finally:
        management.delete_users([name])


async def test_the_dead_letter_tool_redacts_keys_unless_asked_and_audits_when_it_shows_them(
    stack: Stack, tenant: Tenant
) -> None:
    application_id, contract_id, license_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    key = "ZZZZZ-SECRET-KEY-00000-99999"
    stray = stack.license_keys(tenant.name, application_id, contract_id, {license_id: key})  # for no contract
    await stack.publish_event(stack.keys_exchange, "license.keys", stray)
    await eventually(lambda: _dead_lettered(stack, stray["id"]), "the stray keys to be dead-lettered", timeout=30)

    code, out, err = await run_tool(stack, "dlq", "show", stray["id"], **{"ARCSERVE_LICENSE_KEY_KEYRING": ""})
    assert code == 0, err
    assert "<redacted: --reveal-keys shows it>" in out and key not in out and "v1:" not in out
    listed = (await run_tool(stack, "dlq", "list", "--json"))[1]
    assert key not in listed and "v1:" not in listed

    code, out, err = await run_tool(stack, "dlq", "show", stray["id"], "--reveal-keys",
                                    ARCSERVE_LICENSE_KEY_KEYRING=stack.settings.license_key_keyring.get_secret_value())
    assert code == 0, err
    assert key in out and "showing license keys in clear" in err
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        assert await conn.fetchval("SELECT action FROM audit.records WHERE subject = $1", stray["id"]) == "dlq.reveal_keys"
    finally:
        await conn.close()
    await run_tool(stack, "dlq", "purge", stray["id"])


async def _dead_lettered(stack: Stack, message_id: str) -> bool:
    code, out, _ = await run_tool(stack, "dlq", "list", "--json", "--queue", RESULTS.name)
    return code == 0 and message_id in out


async def test_no_log_or_metric_of_a_whole_run_holds_a_key(
    new_stack: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Every service at DEBUG, a contract through every kind, then every log line and every
    metric searched for every key issued."""
    caplog.set_level(logging.DEBUG)
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    contract = await stack.active_contract(tenant, THREE_KEYS)
    cid = contract["contract_id"]
    hypervisor = next(lic for lic in contract["licenses"] if lic["license_type"] == "dedicated_hypervisor")
    for body in ({"kind": "addition", "contract_id": cid, "licenses": [THREE_KEYS[0]]},
                 {"kind": "vm_count_increase", "contract_id": cid, "license_id": hypervisor["license_id"],
                  "additional_vms": 2},
                 {"kind": "cancellation", "contract_id": cid, "scope": "all"}):
        assert (await stack.apply(tenant, body))["status"] == "completed"
    await stack.drained()
    keys = _keys(await stack.contract(tenant, cid))
    assert len(keys) == 6  # 3 new, 2 added, 1 VM key: all issued, then cancelled

    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert len(caplog.records) > 50  # the run was logged, at DEBUG
    metrics = "".join([(await stack.http.get(stack.operator_url(name, "/metrics"))).text for name in stack.services])
    for key in keys.values():
        assert key not in logged, "a license key in a log line"
        assert key not in metrics, "a license key in a metric"
