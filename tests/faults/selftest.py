"""`python -m tests.faults.selftest` (`make faults-selftest`): the fault checker's own test.
A clean run must pass; then each deliberate breakage of tests/faults/sabotage.py runs the
workload (under the fault it needs) and the checker must report it. Prints
`breakage, fault, verdict, lost, duplicated, wrong, first problem`; exits 1 if the clean
run failed or any breakage went unnoticed."""
from __future__ import annotations

import argparse
import asyncio
import sys

from tests.faults.__main__ import report_problems, run_fault
from tests.faults.sabotage import BREAKAGES
from tests.support import leftovers
from tests.support.infra import servers

CLEAN = "(none)"


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.selftest", description=__doc__)
    parser.add_argument("--applications", type=int, default=35, help="applications per run")
    parser.add_argument("--patience", type=float, default=30.0, metavar="S",
                        help="seconds a client waits on a step, and the checker for the stack to drain")
    parser.add_argument("--breakages", default=",".join([CLEAN, *BREAKAGES]),
                        help=f"comma-separated: {CLEAN} (the clean run), {', '.join(BREAKAGES)}")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false",
                        help="skip the sweep of stale leftovers (a caller that swept already: the pytest session)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.breakages.split(",") if n.strip()]
    unknown = [n for n in names if n != CLEAN and n not in BREAKAGES]
    if unknown:
        parser.error(f"unknown breakages {unknown}; known: {CLEAN}, {', '.join(BREAKAGES)}")
    right = True
    async with servers(sweep_first=args.sweep) as infrastructure:
        print("breakage, fault, verdict, lost, duplicated, wrong, first problem", flush=True)
        for name in names:
            breakage = BREAKAGES.get(name)
            fault = breakage.fault if breakage else "none"
            verdict = await run_fault(fault, args.applications, infrastructure, sabotage=name if breakage else None,
                                      patience_s=args.patience)
            # A breakage is caught when the checker counts it where it belongs, not merely
            # when something (a client that gave up, say) failed the run.
            caught = breakage is not None and getattr(verdict, breakage.shows) > 0
            outcome = ("passed" if verdict.ok else "FAILED") if breakage is None else ("caught" if caught else "MISSED")
            right &= verdict.ok if breakage is None else caught
            first = verdict.problems[0] if verdict.problems else "-"
            print(f"{name}, {fault}, {outcome}, {verdict.lost}, {verdict.duplicated}, {verdict.wrong}, {first}", flush=True)
            if breakage is None and not verdict.ok:
                report_problems(name, verdict)
    return 0 if right else 1


if __name__ == "__main__":
    leftovers.unwind_on_signals()  # SIGTERM too ends with the stacks' clean-up
    sys.exit(asyncio.run(main(sys.argv[1:])))
