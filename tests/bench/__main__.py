"""`make bench` / `python -m tests.bench [--runs 3] [--seconds 10] [--phases ...] [--quick] [--out DIR]`: the
whole benchmark, printed as a table, written as `DIR/result.json` and `DIR/latency.png`
(default `test-output/bench`), each figure the median of the runs. Every run starts the four
services afresh on a database and topology prefix of their own, on the machine's RabbitMQ and
Postgres (AMQP_URL, DATABASE_URL: the administrator's), and removes them at the end.

Per run: intake alone at 1, 8 and 64 concurrent; the whole system at saturation (8 and 64
concurrent over HTTP), with CPU per application per process and for the machine, peak RSS,
and messages and transactions per application; submit→completed latency at fixed offered
rates (an open loop); the same applications published straight to the broker; the two floors
(tests/bench/raw.py: the least work that keeps the guarantees, and the same counts as the
product), at 8 and 64 concurrent; then, on a second deployment, how cost grows (tests/bench/scale.py):
throughput and p99 with 1k, 100k and 1M contracts already in the database, and memory while a
backlog of 100k queued submissions drains; and the one-hop relays (tests/bench/hop.py).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from tests.bench import e2e, hop, raw, report, scale
from tests.support.infra import servers

ROOT = Path(__file__).resolve().parents[2]
RATES = (50.0, 80.0, 100.0, 200.0, 400.0)
CONCURRENCIES = (1, 8, 64)
SATURATION = (8, 64)  # concurrent submitters (or entry publishers, for the floors)
PHASES = ("intake", "saturation", "latency", "direct", "floor", "same-counts", "scale", "backlog", "hop")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def one_run(args: argparse.Namespace, index: int) -> dict[str, Any]:
    seconds, phases = args.seconds, args.phases
    found: dict[str, Any] = {}
    # Enough (tenant, product) pairs for every phase at its most: a new one per application.
    tenants = int(seconds * (sum(RATES[: args.rates]) + 3 * 800 + 2 * 2 * 600) / 2) + 1000
    async with servers() as infrastructure:
        async with e2e.bench(infrastructure, ROOT / ".run" / "bench", tenants) as b:
            async def floor_of(into: dict[str, Any], name: str, plan: raw.Plan) -> None:
                say(f"run {index + 1}: the {name.replace('_', '-')} floor")
                async with raw.Floor(plan, infrastructure.amqp_url, b.system.database_url, b.system.prefix) as floor:
                    into[name] = {str(c): await floor.run(c, seconds) for c in SATURATION}

            if "floor" in phases:  # first: the latency phase offers a load relative to it
                await floor_of(found, "least_work", raw.Plan.least_work())
            if "intake" in phases:
                say(f"run {index + 1}: intake alone")
                found["intake"] = await e2e.intake_rates(b, CONCURRENCIES, seconds)
            if "saturation" in phases:
                found["saturation"] = {}
                for concurrency in SATURATION:
                    say(f"run {index + 1}: saturation, {concurrency} at once")
                    found["saturation"][str(concurrency)] = await e2e.saturation(b, concurrency, seconds)
            if "latency" in phases:
                found["latency"] = []
                rates = list(RATES[: args.rates])
                if "least_work" in found:  # the 80/s against its 189/s floor, on this machine;
                    # first, as the least load: after the overloads the broker and database are still busy
                    rates.insert(0, round(report.RELATIVE_LOAD * found["least_work"]["64"]["drained_per_s"], 1))
                for rate in rates:
                    say(f"run {index + 1}: latency at {rate:g}/s")
                    found["latency"].append(await e2e.latency_at(b, rate, seconds))
            if "direct" in phases:
                say(f"run {index + 1}: direct publishing")
                found["direct"] = await e2e.direct(b, 64, seconds)
            if "same-counts" in phases and "saturation" in found:  # as the product did in this run
                await floor_of(found, "same_counts", raw.Plan.of(found["saturation"]["64"]["per_application"]))
            resent = b.resent
        if "scale" in phases or "backlog" in phases:
            # On a deployment of its own: its smallest size is what the database really holds.
            async with e2e.bench(infrastructure, ROOT / ".run" / "bench",
                                 int(len(args.scale) * seconds * 300) + 1000) as b:
                if "scale" in phases:
                    found["scale"] = []
                    for size in args.scale:
                        say(f"run {index + 1}: {size:,} contracts in the database")
                        found["scale"] += await scale.at_sizes(b, [size], seconds)
                if "backlog" in phases:
                    say(f"run {index + 1}: a backlog of {args.backlog:,} submissions")
                    found["backlog"] = await scale.backlog(b, args.backlog, seconds)
                resent += b.resent
        if "hop" in phases:
            say(f"run {index + 1}: the one-hop relays (the services stopped)")
            found["hop"] = await hop.measure(infrastructure, messages=args.hop_messages, runs=1)
    return {**found, "requests_sent_again": resent}


def _sizes(text: str) -> list[int]:
    return [int(size) for size in text.split(",")]


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(phase.strip() for phase in text.split(","))
    if unknown := [phase for phase in chosen if phase not in PHASES]:
        raise argparse.ArgumentTypeError(f"no phase {', '.join(unknown)}; the phases are {', '.join(PHASES)}")
    return chosen


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs; each figure is their median (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default 10)")
    parser.add_argument("--rates", type=int, default=len(RATES), help=f"how many of the offered rates {RATES}")
    parser.add_argument("--hop-messages", type=int, default=20_000, help="messages per one-hop relay run")
    parser.add_argument("--scale", type=_sizes, default=[1_000, 100_000, 1_000_000],
                        help="contracts in the database, comma-separated (default 1000,100000,1000000)")
    parser.add_argument("--backlog", type=int, default=100_000, help="queued submissions to drain (default 100000)")
    parser.add_argument("--phases", type=_phases, default=PHASES,
                        help=f"which phases, comma-separated (default all: {','.join(PHASES)})")
    parser.add_argument("--quick", action="store_true", help="one short run (a look, not a measurement)")
    parser.add_argument("--out", type=Path, default=ROOT / "test-output" / "bench")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.rates, args.hop_messages = 1, 3.0, 2, 2_000
        args.scale, args.backlog = [1_000, 20_000], 5_000
    runs = [asyncio.run(one_run(args, i)) for i in range(args.runs)]
    result = {"machine": report.machine(), "runs": len(runs), "seconds_per_phase": args.seconds,
              "median": report.median_of(runs), "each": runs}
    written = report.write(result, args.out)
    drawn = report.chart(result, args.out) if "latency" in args.phases else None
    print(report.table(result))
    say(f"written: {written}" + (f", {drawn}" if drawn else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
