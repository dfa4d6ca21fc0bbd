"""A job's unit of work in memory (shared/due.py, shared/runtime.py's Transaction), for the
unit tests of a step: what it published, and its after-commit effects, run on `commit()`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Recorded:
    def __init__(self) -> None:
        self.conn: Any = None
        self.published: list[tuple[Any, str, str | None]] = []  # (message, tenant, subject)
        self.committed: list[Callable[[], None]] = []

    def publish(self, message: Any, *, tenant_id: str, subject: str | None = None) -> None:
        self.published.append((message, tenant_id, subject))

    def after_commit(self, effect: Callable[[], None]) -> None:
        self.committed.append(effect)

    def commit(self) -> list[Any]:
        for effect in self.committed:
            effect()
        return [message for message, _, _ in self.published]
