"""`python -m tests.faults`: drive applications of every kind through each fault and check
that nothing was lost or done twice, and that every tenant's contract ended where its
scenario must leave it. `--fulfilment` says where keys, order IDs and the confirmations of
revocations come from (each source in turn; tests/faults/fulfillers.py). Prints `fault,
applications, completed, rejected, lost, duplicated, wrong` per fault (the fault named with
its source outside simulator mode); exits 1 if any run lost, duplicated or got anything wrong."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

import aio_pika

from shared.messaging import nodes
from tests.faults import checker, faults, fulfillers, workload
from tests.faults.cluster import local_cluster
from tests.faults.pair import local_pair
from tests.faults.processes import ProcessStack
from tests.faults.sabotage import BREAKAGES
from tests.support import leftovers
from tests.support.infra import Servers, servers

ROOT = Path(__file__).resolve().parents[2]


async def _dead_letters(stack: ProcessStack) -> list[aio_pika.abc.AbstractIncomingMessage]:
    from services.status.handlers import SUBMISSIONS

    taken = []
    connection = await nodes.connect(stack.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(stack.topology.dead_letter_queue(SUBMISSIONS.spec))
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            taken.append(message)
    return taken


async def run_fault(name: str, applications: int, infrastructure: Servers, sabotage: str | None = None,
                    patience_s: float = workload.STEP_DEADLINE_S, fulfilment: str = "simulator") -> checker.Verdict:
    """One fault (or "none") beside the workload, then the checker. `sabotage`: run the
    services with that breakage of tests/faults/sabotage.py (the checker's own test).
    `patience_s`: how long a client waits on one step, and the checker for the stack to drain.
    `fulfilment`: where results come from (`ARCSERVE_FULFILMENT`)."""
    ledger = workload.Ledger()
    progress = {"done": 0.0}
    changed = asyncio.Event()

    def on_progress(fraction: float) -> None:
        progress["done"] = fraction
        changed.set()

    async def at(fraction: float) -> None:
        while progress["done"] < fraction:
            changed.clear()
            await changed.wait()

    async with contextlib.AsyncExitStack() as grounds:
        cluster = await grounds.enter_async_context(local_cluster()) if name in faults.ON_BROKER_CLUSTER else None
        pair = await grounds.enter_async_context(local_pair()) if name in faults.ON_DATABASE_PAIR else None
        where = cluster.servers(infrastructure) if cluster else infrastructure
        where = pair.servers(where) if pair else where
        stack = await grounds.enter_async_context(ProcessStack(
            where, ROOT / ".run" / "faults", sabotage,
            proxied=not (cluster or pair),  # the proxies stand before one server, not several
            fulfilment=fulfilment))
        if sabotage and (sql := BREAKAGES[sabotage].sql):
            await stack.execute(sql)
        source = fulfillers.SOURCES[fulfilment]
        fulfiller = await grounds.enter_async_context(source(stack)) if source else None
        async with checker.EventLog(stack) as events:
            run = faults.Run(stack, at, cluster=cluster, pair=pair)
            fault = asyncio.create_task(faults.ALL[name](run))
            await workload.run(stack, applications, ledger, on_progress, lambda: run.duplicate_submissions,
                               step_deadline_s=patience_s)
            on_progress(1.0)
            await fault
            await stack.wait_ready()
            try:
                await stack.drained(events.queue_name, deadline_s=patience_s)
                await checker.revocations_settled(stack, deadline_s=patience_s)
                unsettled = None
            except AssertionError as exc:  # what never settles is checked as it stands, and said
                unsettled = str(exc)
            label = name if fulfilment == "simulator" else f"{name} / {fulfilment}"
            verdict = await checker.check(label, stack, ledger, events)
            if unsettled:
                verdict.problems.append(unsettled)
        verdict.problems += run.problems
        if fulfiller is not None:
            verdict.problems += fulfiller.problems
            run.notes.append(fulfiller.note())
        if run.poison_sent:
            letters = await _dead_letters(stack)
            reasons = [str((m.headers or {}).get("x-arcserve-reason", "")) for m in letters]
            if len(letters) != run.poison_sent:
                verdict.problems.append(f"{run.poison_sent} bad messages sent, {len(letters)} dead-lettered")
            if not all(reasons):
                verdict.problems.append("a dead letter without its reason")
        run.notes.append(f"the longest pause between steps ending: {ledger.longest_pause():.1f} s")
        for note in run.notes:
            print(f"  # {name}: {note}", file=sys.stderr)
    return verdict


def report_problems(name: str, verdict: checker.Verdict, limit: int = 10) -> None:
    for problem in verdict.problems[:limit]:
        print(f"  ! {name}: {problem}", flush=True)
    if len(verdict.problems) > limit:
        print(f"  ! {name}: … and {len(verdict.problems) - limit} more", flush=True)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--applications", type=int, default=500, help="applications per fault run")
    parser.add_argument("--faults", default=",".join(faults.FAULTS), help="comma-separated fault names")
    parser.add_argument("--fulfilment", default="simulator",
                        help=f"comma-separated sources of results, each run in turn: {', '.join(fulfillers.SOURCES)}")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false",
                        help="skip the sweep of stale leftovers (a caller that swept already: the pytest session)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.faults.split(",") if n.strip()]
    unknown = [n for n in names if n not in faults.ALL]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(faults.ALL)}")
    sources = [s.strip() for s in args.fulfilment.split(",") if s.strip()]
    if not sources or not set(sources) <= set(fulfillers.SOURCES):
        parser.error(f"--fulfilment: one or more of {', '.join(fulfillers.SOURCES)}")
    verdicts = []
    async with servers(sweep_first=args.sweep) as infrastructure:
        print(checker.Verdict.HEADER, flush=True)
        for source in sources:
            for name in names:
                started = time.monotonic()
                verdict = await run_fault(name, args.applications, infrastructure, fulfilment=source)
                verdicts.append(verdict)
                print(verdict.row(), flush=True)
                print(f"  # {verdict.fault}: {time.monotonic() - started:.0f} s", file=sys.stderr)
                report_problems(verdict.fault, verdict)
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    leftovers.unwind_on_signals()  # SIGTERM too ends with the stacks' clean-up
    sys.exit(asyncio.run(main(sys.argv[1:])))
