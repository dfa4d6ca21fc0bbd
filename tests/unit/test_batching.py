"""Group commit (shared/messaging/batching.py): what arrives while a unit of work runs goes
in the next one, in order and at most so many; a failed batch sends each of its steps off
to run alone; nothing waits for a batch to fill."""
from __future__ import annotations

import asyncio

import pytest

from shared.messaging.batching import Batches, RunAlone


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.refuse: set[str] = set()

    async def run(self, steps: list[str]) -> list[bool]:
        self.batches.append(steps)
        await self.release.wait()
        if refused := self.refuse & set(steps):
            raise ValueError(f"refused {sorted(refused)}")
        return [not step.startswith("dup") for step in steps]


async def test_what_arrives_while_one_runs_goes_together_in_order_at_most_so_many() -> None:
    recorder = Recorder()
    batches = Batches(recorder.run, most=3)
    first = asyncio.create_task(batches.run("a"))
    while not recorder.batches:  # "a" is in its unit of work, alone: nothing waited for more
        await asyncio.sleep(0)
    rest = [asyncio.create_task(batches.run(step)) for step in ("b", "dup-c", "d", "e")]
    await asyncio.sleep(0)
    recorder.release.set()

    assert await first is True and [await task for task in rest] == [True, False, True, True]
    assert recorder.batches == [["a"], ["b", "dup-c", "d"], ["e"]]


async def test_a_failed_batch_sends_each_step_to_run_alone_and_a_step_alone_gets_its_error() -> None:
    recorder = Recorder()
    recorder.release.set()
    recorder.refuse = {"b"}
    batches = Batches(recorder.run, most=10)
    together = [asyncio.create_task(batches.run(step)) for step in ("a", "b")]
    for task in together:
        with pytest.raises(RunAlone):
            await task

    with pytest.raises(ValueError, match="refused"):
        await batches.run("b")
    assert await batches.run("a") is True
