"""Rotating the license-key keyring (docs/operations.md, "Runbook"): a new key first in the ring, the
stored keys re-sealed under it (`python -m services.tools.keyring`), the old key dropped,
and every tenant still sees the same license keys."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.sealing import Keyring
from tests.support.stack import Stack, new_application
from tests.support.tools import run_tool


def _keys(contract: dict[str, Any]) -> dict[str, str]:
    return {lic["license_id"]: lic["license_key"] for lic in contract["licenses"]}


async def _status_with(stack: Stack, keyring: str) -> None:
    """The status service restarted with another keyring (the license issuer too)."""
    stack.settings = stack.settings.replace(license_key_keyring=keyring)
    await stack.stop("status", "license_issuer")
    await stack.start("status", "license_issuer")


async def test_a_keyring_rotation_keeps_every_license_key(new_stack: Callable[..., Any]) -> None:
    stack: Stack = await new_stack()
    await stack.start()
    tenant = await stack.tenant()
    old = stack.settings.license_key_keyring.get_secret_value()
    contract_id = (await stack.apply(tenant, new_application()))["contract_id"]
    before = _keys(await stack.contract(tenant, contract_id))
    assert len(before) == 2 and all(before.values())

    rotated = f"{Keyring.new_key_text('k2')},{old}"  # 1. the new key first, the old one still there
    await _status_with(stack, rotated)
    code, out, err = await run_tool(stack, "keyring", "status", "--json")
    assert code == 0, err
    assert json.loads(out) == {"status.licenses": {"k1": 2}, "license_issuer.keys": {"k1": 2}}

    code, out, err = await run_tool(stack, "keyring", "reseal", ARCSERVE_LICENSE_KEY_KEYRING=rotated)  # 2.
    assert code == 0, err
    assert "status.licenses: 2 re-sealed under k2" in out and "license_issuer.keys: 2 re-sealed under k2" in out
    for value in before.values():
        assert value not in out + err
    code, out, _ = await run_tool(stack, "keyring", "status", "--json")
    assert json.loads(out) == {"status.licenses": {"k2": 2}, "license_issuer.keys": {"k2": 2}}

    await _status_with(stack, rotated.split(",")[0])  # 3. the old key leaves the ring
    assert _keys(await stack.contract(tenant, contract_id)) == before
    added = await stack.apply(tenant, {"kind": "addition", "contract_id": contract_id,
                                       "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]})
    assert added["status"] == "completed"  # new keys are sealed, and open, under the new key alone

    code, _, err = await run_tool(stack, "keyring", "reseal", ARCSERVE_LICENSE_KEY_KEYRING=old)  # k2 not in it
    assert code == 1 and "refused" in err and "k2" in err
