"""Bounded exponential backoff for waiting out an outage (broker or database down)."""
from __future__ import annotations


class Backoff:
    """Delays of `first`, twice that, … up to `ceiling` seconds; `reset()` after a success."""

    def __init__(self, first: float = 0.1, ceiling: float = 5.0):
        self.first = first
        self.ceiling = ceiling
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self._next = self.first
