"""The fault-injection suite in its short form (`make faults` runs it at full size, every
fault): the faults any deployment meets (a process killed or stopped, the broker or the
database restarted, duplicates and reordering, bad input) strike mid-stream, and the checker
must find nothing lost, nothing done twice and every contract where its scenario leaves it,
whichever source the keys, order IDs and confirmations of revocations come from.
The faults that stand up a topology of their own (a three-node broker cluster, a primary and
standby pair, a fault proxy) run in `make faults` only: they alone took a third of this
suite's time. And the checker's own test (`make faults-selftest` runs every breakage): a
breakage of each verdict of tests/faults/sabotage.py must make it report failure."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.faults.faults import FAULTS
from tests.faults.sabotage import BREAKAGES

ROOT = Path(__file__).resolve().parent.parent
APPLICATIONS = 35  # five tenants through every kind
SHORT_FAULTS = ("kill -9", "broker restart", "database restart", "duplicates and reordering", "bad input",
                "SIGTERM under load")
# Outside simulator mode (tests/faults/fulfillers.py): results from the console's operators or
# from another system, while workers are killed and the broker and the database restart.
OTHER_SOURCES = (("kill -9", "back-office"), ("database restart", "back-office"),
                 ("kill -9", "external"), ("broker restart", "external"))
SHORT_BREAKAGES = ("order ID never cancelled", "second key", "R2 not enforced")  # lost, duplicated, wrong
# Each run is a process of its own; the session's `infrastructure` already swept what killed
# runs left (tests/support/leftovers.py), so the runs skip that sweep (three rabbitmqctl calls).


@pytest.mark.parametrize(("fault", "source"), [*((f, "simulator") for f in SHORT_FAULTS), *OTHER_SOURCES])
async def test_nothing_is_lost_or_done_twice(fault: str, source: str, infrastructure: tuple[str, str]) -> None:
    amqp_url, admin_url = infrastructure
    env = {**os.environ, "AMQP_URL": amqp_url, "DATABASE_URL": admin_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.faults", "--applications", str(APPLICATIONS), "--faults", fault,
        "--fulfilment", source, "--no-sweep",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = out.decode(errors="replace")
    rows = [line.split(", ") for line in report.splitlines() if line.count(", ") == 7 and not line.startswith("fault,")]

    assert process.returncode == 0, report
    [(name, applications, completed, rejected, lost, duplicated, wrong, refused_s)] = rows
    assert name == (fault if source == "simulator" else f"{fault} / {source}")
    assert int(applications) >= APPLICATIONS, report
    assert int(completed) + int(rejected) == int(applications), report
    assert int(rejected) == int(applications) // 7, report  # the deliberate second new of each tenant (R2)
    assert (lost, duplicated, wrong) == ("0", "0", "0"), report


@pytest.mark.parametrize("breakage", SHORT_BREAKAGES)
async def test_the_checker_catches(breakage: str, infrastructure: tuple[str, str]) -> None:
    amqp_url, admin_url = infrastructure
    env = {**os.environ, "AMQP_URL": amqp_url, "DATABASE_URL": admin_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.faults.selftest", "--applications", "7", "--patience", "6",
        "--breakages", breakage, "--no-sweep",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    report = out.decode(errors="replace")
    rows = [line.split(", ", 6) for line in report.splitlines() if line.startswith(f"{breakage}, ")]

    assert process.returncode == 0, report
    [(_, _, verdict, lost, duplicated, wrong, first_problem)] = rows
    assert verdict == "caught", report
    counted = {"lost": int(lost), "duplicated": int(duplicated), "wrong": int(wrong)}
    assert counted[BREAKAGES[breakage].shows] > 0 and first_problem != "-", report


def test_the_short_suite_names_faults_and_breakages_that_exist():
    assert set(SHORT_FAULTS) <= set(FAULTS) and set(SHORT_BREAKAGES) <= set(BREAKAGES)
    assert {BREAKAGES[b].shows for b in SHORT_BREAKAGES} == {"lost", "duplicated", "wrong"}  # each verdict
