"""`scripts/run_local.py --demo-and-exit` as an operator runs it: the service processes, the
back-office console and the portal, a demo through the portal's origin from 新規準備中 to 提供中
to 廃止済 (in back-office mode, fulfilled in the console by an operator key the run made), then
SIGTERM to every service, which drain and exit 0. Its own ports, topology prefix and database,
all removed afterwards."""
from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.support.deployment import TestDeployment
from tests.support.infra import Servers
from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run_local.py"
DEADLINE_S = 90.0




@pytest.mark.slow
@pytest.mark.parametrize("fulfilment", ["simulator", "back-office"])
async def test_run_local_demo_goes_from_preparing_to_cancelled_and_drains(infrastructure: Servers, tmp_path: Path,
                                                                           fulfilment: str) -> None:
    amqp_url, admin_url = infrastructure
    deployment = TestDeployment.named(infrastructure, "test")  # its names: the script makes it all
    database_url, topology = deployment.database_url, deployment.topology
    intake, status, license_issuer, order_id, backoffice, portal, *operator_ports = free_ports(12)
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "DATABASE_URL": database_url,  # does not exist yet: the script creates it
        "ARCSERVE_TOPOLOGY_PREFIX": topology.prefix,
        "ARCSERVE_DB_ROLE_PREFIX": deployment.deployment.role_prefix,
        "ARCSERVE_CREDENTIALS_FILE": str(tmp_path / "credentials.env"),
        "INTAKE_PORT": str(intake),
        "STATUS_PORT": str(status),
        "LICENSE_ISSUER_PORT": str(license_issuer),
        "ORDER_ID_PORT": str(order_id),
        "BACKOFFICE_PORT": str(backoffice),
        "PORTAL_PORT": str(portal),
        **{f"{name}_METRICS_PORT": str(port) for name, port in zip(
            ("INTAKE", "STATUS", "LICENSE_ISSUER", "ORDER_ID", "BACKOFFICE", "PORTAL"), operator_ports, strict=True)},
        "ARCSERVE_FULFILMENT": fulfilment,
        "ARCSERVE_SIM_NEW_DELAY_S": "1",
        # The names the deployment removes at the end, retry queues included.
        "ARCSERVE_RETRY_DELAYS_S": ",".join(f"{d:g}" for d in topology.retry_delays_s),
        "PYTHONUNBUFFERED": "1",
        # A tenant the operator configured: the demo must neither act in it nor print its key.
        "ARCSERVE_API_KEYS": "operator-tenant:operator-secret-key-0123456789",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--demo-and-exit",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout=DEADLINE_S)
        except TimeoutError:
            process.terminate()  # the script SIGTERMs its services on the way out
            out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
            raise AssertionError(f"run_local.py did not finish in {DEADLINE_S}s:\n{out.decode(errors='replace')}")
        output = out.decode(errors="replace")
        assert process.returncode == 0, output

        # The contract as the demo watched it: each state once, in order (R1, R9).
        states = re.findall(r"^contract [0-9a-f-]{36}: (\S+) \((\w+)\)", output, re.MULTILINE)
        assert states == [("新規準備中", "preparing"), ("提供中", "active"), ("廃止済", "cancelled")], output
        assert output.count("POST /v1/applications → 202") == 2, output
        assert re.search(r"order ID ARC-\d{8}-\w{5}-\w{5} is cancelled", output), output  # R9
        assert f"portal  http://127.0.0.1:{portal}/" in output, output  # where tenants go
        assert f"console http://127.0.0.1:{backoffice}/ops/v1/fulfilments" in output, output
        assert "exit codes [0, 0, 0, 0, 0, 0]" in output, output
        fulfilled = re.findall(r"^POST /ops/v1/fulfilments/[0-9a-f-]{36}/fulfil → 200 fulfilled$", output, re.MULTILINE)
        assert len(fulfilled) == (1 if fulfilment == "back-office" else 0), output
        operator_keys = re.findall(r"operator of the console \(a fulfiller, id \w+\): (ops_\S+)", output)
        assert len(operator_keys) == (1 if fulfilment == "back-office" else 0), output
        # It prints the one key it made, for a tenant of its own, and nothing of the operator's.
        [(demo_tenant, demo_key)] = re.findall(r"demo tenant (demo-[\d-]+), API key \(id \w+\): (arc_\S+)", output)
        assert len(re.findall(r"arc_\w{10}_", output)) == output.count(demo_key) >= 1, output
        assert "operator-secret-key" not in output and "operator-tenant" not in output, output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await deployment.remove()
