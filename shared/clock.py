"""The clock is passed in, never read from the wall inside the rules: `Clock` is what a
service hands its handlers and its service layer; tests hand them a fixed one."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
