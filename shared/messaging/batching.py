"""Group commit for a consumer's units of work: the messages that arrive while one unit of
work runs wait, and go together in the next one, in the order they arrived (at most `most`).
Under load a transaction carries many messages; when messages come one at a time, each goes
at once, alone: nothing waits for a batch to fill.

A batch that fails (a filter's refusal, a handler's error, conflicts past their retries)
commits nothing; each of its messages is then told to run alone (`RunAlone`), so that what
one message did wrong is its own outcome, never its neighbours'. A batch of one reports its
own error.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

S = TypeVar("S")


class RunAlone(Exception):
    """The batch this step was in failed: run it in a unit of work of its own."""


class Batches(Generic[S]):
    def __init__(self, run: Callable[[list[S]], Awaitable[list[bool]]], most: int):
        self._run = run
        self.most = most
        self._waiting: list[tuple[S, asyncio.Future[bool]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def run(self, step: S) -> bool:
        """Run `step` in the next unit of work: what `run` said of it, or its error (RunAlone
        if the batch it was in failed)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((step, done))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._waiting:
            taken, self._waiting = self._waiting[: self.most], self._waiting[self.most:]
            try:
                outcomes = await self._run([step for step, _ in taken])
            except Exception as exc:  # each step learns what became of it
                for _, done in taken:
                    if not done.done():
                        done.set_exception(exc if len(taken) == 1 else RunAlone())
                continue
            except BaseException:
                for _, done in taken:
                    done.cancel()
                raise
            for (_, done), outcome in zip(taken, outcomes, strict=True):
                if not done.done():
                    done.set_result(outcome)
