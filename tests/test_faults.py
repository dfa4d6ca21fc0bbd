"""The fault-injection suite in its short form (`make faults` runs it at full size): each
fault of tests/faults/faults.py strikes mid-stream, and the checker must find nothing lost
or done twice."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.faults.faults import FAULTS

ROOT = Path(__file__).resolve().parent.parent
APPLICATIONS = 35  # five tenants through every kind


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_nothing_is_lost_or_done_twice(fault: str, infrastructure: tuple[str, str]) -> None:
    amqp_url, admin_url = infrastructure
    env = {**os.environ, "AMQP_URL": amqp_url, "DATABASE_URL": admin_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.faults", "--applications", str(APPLICATIONS), "--faults", fault,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = out.decode(errors="replace")
    rows = [line.split(", ") for line in report.splitlines() if line.count(", ") == 5 and not line.startswith("fault,")]

    assert process.returncode == 0, report
    [(name, applications, completed, rejected, lost, duplicated)] = rows
    assert name == fault
    assert int(applications) >= APPLICATIONS, report
    assert int(completed) + int(rejected) == int(applications), report
    assert (lost, duplicated) == ("0", "0"), report
