"""API keys (docs/architecture.md, "Security"; `python -m services.tools.api_keys`): at least 128 random bits
behind a visible id, shown once, stored as an HMAC under the server pepper, listed without
the key, revoked with effect on every replica within a second, and named on each
application they submitted; creating and revoking are audited."""
from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from services.status.bootstrap import build as build_status
from tests.support.stack import Stack, Tenant, eventually, new_application
from tests.support.tools import ok, run_tool

REVOCATION_S = 1.0


def _created(out: str) -> tuple[str, str]:
    lines = out.strip().splitlines()
    assert lines[0].startswith("key id: "), out
    return lines[0].removeprefix("key id: "), lines[-1]


async def test_a_key_from_create_to_revoke(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant_name = f"tenant-{int(time.time() * 1000)}"
    key_id, key = _created(await ok(stack, "api_keys", "create", tenant_name))
    assert re.fullmatch(rf"arc_{key_id}_[A-Za-z0-9_-]{{43}}", key), key  # 256 random bits after the id
    tenant = Tenant(tenant_name, key)
    secret_part = key.removeprefix(f"arc_{key_id}_")

    # It works, on both services; an application it submits names it.
    application = await stack.apply(tenant, new_application())
    assert application["status"] == "completed"
    assert application["submitted_by"] == {"kind": "api_key", "id": key_id}

    # Listed by id, never shown again; stored as an HMAC under the pepper, not a plain hash.
    listed = await ok(stack, "api_keys", "list", "--tenant", tenant_name)
    assert key_id in listed and secret_part not in listed
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        stored = await conn.fetchrow("SELECT * FROM tenancy.api_keys WHERE key_id = $1", key_id)
        dumped = await conn.fetchval("SELECT string_agg(t::text, ' ') FROM tenancy.api_keys t")
    finally:
        await conn.close()
    assert stored is not None and stored["tenant_id"] == tenant_name and stored["revoked_at"] is None
    assert bytes(stored["key_hmac"]) != hashlib.sha256(key.encode()).digest()
    assert secret_part not in dumped

    # Revoked: 401 within a second on every replica, each with the key in its cache.
    second = build_status(stack.service_settings("status"))
    await second.start()
    try:
        replicas = [stack.url("status", "/v1/contracts"), f"http://127.0.0.1:{second.bound_port}/v1/contracts"]
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(timeout=5) as client:
            for url in replicas:
                assert (await client.get(url, headers=headers)).status_code == 200  # now cached
            revoked = await ok(stack, "api_keys", "revoke", key_id)
            started = time.monotonic()
            assert f"revoked {key_id} of tenant {tenant_name}" in revoked

            async def refused_everywhere() -> bool:
                codes = [(await client.get(url, headers=headers)).status_code for url in replicas]
                return codes == [401] * len(replicas)

            await eventually(refused_everywhere, "every replica to refuse the revoked key", timeout=5)
            elapsed = time.monotonic() - started
        assert elapsed < REVOCATION_S, f"revocation took {elapsed:.2f} s"
    finally:
        await second.stop()
    answer = await stack.submit(tenant, new_application(product="arcserve-udp-9"))
    assert answer.status_code == 401 and answer.json()["message"] == "unknown or revoked API key"
    assert f"{key_id}\t{tenant_name}\t" in await ok(stack, "api_keys", "list")

    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        actions = [r["action"] for r in await conn.fetch(
            "SELECT action FROM audit.records WHERE subject = $1 ORDER BY record_id", key_id)]
    finally:
        await conn.close()
    assert actions == ["api_keys.create", "api_keys.revoke"]


async def test_revoking_an_unknown_key_or_creating_without_the_pepper_is_refused(stack: Stack) -> None:
    code, _, err = await run_tool(stack, "api_keys", "revoke", "nosuchkeyid")
    assert code == 1 and "no such key id: nosuchkeyid" in err
    code, out, err = await run_tool(stack, "api_keys", "create", "someone", ARCSERVE_API_KEY_PEPPER="",
                                    ARCSERVE_CREDENTIALS_FILE="/nonexistent")
    assert code == 1 and "ARCSERVE_API_KEY_PEPPER" in err and "arc_" not in out
