"""Work that falls due, done by a job of the service (shared/runtime.py's `add_job`): the
fulfilment simulators answer requests when their stored time comes. Times are stored, not
slept, so a restart in the middle still does everything, and nothing waits meanwhile: no
delivery, connection, transaction or task per item, only this one loop per process.

Each pass runs in a unit of work of the service's own (`Service.transaction`): its writes
and what it publishes commit together. It runs at once when woken (an item was committed
that may be due already), else when the next item is due, and at least every `poll_s`
(items another replica recorded). Several replicas may run it: a step locks what it takes
(`FOR UPDATE SKIP LOCKED`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.backoff import Backoff
from shared.observability import logs
from shared.observability.tracing import continued

log = logging.getLogger(__name__)
W = TypeVar("W")  # the unit of work a step writes and publishes with


@dataclass(frozen=True)
class Pass:
    done: int  # items done in this pass
    next_due: datetime | None  # when the next item falls due; None: none is waiting
    full: bool = False  # the pass took as many as it may: another one at once


@contextlib.contextmanager
def about(traceparent: str | None, **fields: Any) -> Iterator[None]:
    """Inside the block, an item's work goes on in the trace that recorded it (`traceparent`)
    and its log lines name what it is about (`fields`: its tenant, contract, application)."""
    with continued(traceparent), logs.message_fields(**fields):
        yield


class Due(Generic[W]):
    def __init__(self, name: str, step: Callable[[W, datetime], Awaitable[Pass]], *, poll_s: float = 5.0):
        self.name = name
        self.step = step
        self.poll_s = poll_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was committed that may be due already: look now."""
        self._wake.set()

    async def run(self, transaction: Callable[[], AbstractAsyncContextManager[W]], clock: Callable[[], datetime]) -> None:
        """Pass after pass until cancelled; an outage is waited out (the items wait in their table)."""
        backoff = Backoff()
        while True:
            try:
                async with transaction() as work:
                    done = await self.step(work, clock())
                backoff.reset()
            except Exception as exc:
                delay = backoff.next()
                log.warning("%s paused (%r); retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            if done.full:
                continue
            wait = self.poll_s
            if done.next_due is not None:
                wait = min(wait, max(0.0, (done.next_due - clock()).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._wake.clear()

