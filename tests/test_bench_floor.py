"""The benchmark's floor (tests/bench/raw.py) on the real broker and database: its stages, as
processes, do for every application exactly the work its plan says, and every application
comes out. Its speed is the benchmark's to print (`make bench`), never a test's."""
from __future__ import annotations

import asyncpg
import pytest

from tests.bench import raw
from tests.support import leftovers
from tests.support.infra import Servers, create_database, drop_database


@pytest.mark.parametrize("plan", [
    raw.Plan(stages=2, publishes=4, transactions=5),  # same counts: 1 + (1 + 1) onwards + 1 to the sink; 2 writes, 3 reads
    raw.Plan(stages=2, publishes=3, transactions=2, prefetch=64, inbox=True),  # least work: an inbox row + a row each
], ids=["same-counts", "least-work"])
async def test_the_raw_pipeline_does_its_plans_work_for_every_application(infrastructure: Servers,
                                                                          plan: raw.Plan) -> None:
    database = await create_database(infrastructure.admin_url)
    try:
        async with raw.Floor(plan, infrastructure.amqp_url, database, leftovers.new_prefix("bench")) as floor:
            found = await floor.run(concurrency=4, seconds=1.0, warmup_s=0.0)
            conn = await asyncpg.connect(database)
            try:
                writes = await conn.fetchval("SELECT count(*) FROM raw.rows")
                claims = await conn.fetchval("SELECT count(*) FROM raw.inbox")
            finally:
                await conn.close()
    finally:
        await drop_database(infrastructure.admin_url, database)
    assert found["submitted"] > 0 and found["completed"] == found["submitted"]
    assert writes == plan.stages * found["completed"]  # one unit of work per stage and application
    assert claims == (writes if plan.inbox else 0)  # each write beside its message's inbox row
    assert found["plan"] == plan.figures
