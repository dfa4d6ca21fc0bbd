"""Failed authentication, throttled (docs/architecture.md, "Security"): a token bucket per
source address and per API key id. Each wrong key takes one token from its address's bucket
and, for keys shaped `arc_<id>_<secret>`, from its key id's; a subject whose bucket is empty
is throttled (429 `too_many_failures`) until a token comes back, and its next wrong keys are
not even looked up. Nothing is taken for a missing or malformed key: it tests nothing.

A look-up reserves a token of each subject while it runs, so that keys sent all at once
cannot all be tested; a valid key gives it back when it is found. A request that finds its
budget reserved, but not spent, is BUSY: it waits for a look-up in flight to end rather than
being refused, so many valid keys sent at once from one address are all served.

Per process, on purpose, like the rate limit (shared/http/ratelimit.py): a shared count
would need a shared write on every failure. With N replicas behind a balancer a source gets
at most N times the budget; the refill rate is what bounds a guesser over time.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# About 10 wrong keys in a row are typos or a stale key; a guesser needs millions.
DEFAULT_BURST = 10
# One failure forgiven every 30 s: two a minute, ~2,900 a day per address, where a key's
# secret has 256 bits. Retry-After says when the next one is.
DEFAULT_REFILL_S = 30.0
# Buckets kept per process (an address or key id each, ~200 bytes): past it the one touched
# longest ago is forgotten, so a flood of new addresses or ids cannot grow memory.
MAX_TRACKED = 100_000
CODE = "too_many_failures"
# What new_api_key makes (shared/tenancy): seeded keys may be any string, and then only the
# address counts; a look-alike id in a seeded key merely shares that id's bucket.
_KEY_ID = re.compile(r"arc_([a-z2-7]{10})_.+", re.ASCII)


def key_id_of(key: str) -> str | None:
    """The id an API key shows in clear (`arc_<id>_<secret>`), or None for any other key."""
    found = _KEY_ID.fullmatch(key)
    return found.group(1) if found else None


def subjects(address: str, key: str) -> list[str]:
    """What a failure with `key` from `address` counts against, as audit subjects name them:
    never the key itself, only its visible id."""
    key_id = key_id_of(key)
    return [f"address {address}", *([f"key_id {key_id}"] if key_id else [])]


# `take`'s answer when the budget left is reserved by look-ups still running: ask again when one ends.
BUSY = -1.0


@dataclass
class _Bucket:
    tokens: float
    at: float
    throttled: bool = False  # since it last emptied, until it is full again: one report per episode
    pending: int = 0  # look-ups running, each holding a token until it ends


class FailureThrottle:
    def __init__(self, burst: int = DEFAULT_BURST, refill_s: float = DEFAULT_REFILL_S,
                 clock: Callable[[], float] = time.monotonic, max_tracked: int = MAX_TRACKED):
        if burst < 1 or refill_s <= 0 or max_tracked < 1:
            raise ValueError("a failure throttle needs a burst of at least 1, a refill above 0 s and room for a bucket")
        self.burst = burst
        self.refill_s = refill_s
        self._clock = clock
        self._max = max_tracked
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently touched first

    def take(self, names: Iterable[str]) -> float:
        """Before a key is looked up: 0, a token of each of `names` reserved for the look-up;
        the seconds until one of them has a token again, when failures spent it, and nothing
        reserved; or BUSY, when what is left is reserved by look-ups still running."""
        now = self._clock()
        buckets = [self._refilled(name, now) for name in names]
        wait = max(((1.0 - b.tokens) * self.refill_s for b in buckets if b.tokens < 1.0), default=0.0)
        if wait > 0.0:
            return wait
        if any(b.tokens - b.pending < 1.0 for b in buckets):
            return BUSY
        for bucket in buckets:
            bucket.pending += 1
        return 0.0

    def give_back(self, names: Iterable[str]) -> None:
        """The key was valid, or could not be judged: what `take` reserved is free again."""
        for name in names:
            bucket = self._buckets.get(name)
            if bucket is not None:
                bucket.pending = max(0, bucket.pending - 1)

    def failed(self, names: Iterable[str]) -> list[str]:
        """The key was wrong: the reserved token is spent. Returns those of `names` this
        throttles, each once until its bucket is full again, for the caller to log and audit."""
        started = []
        now = self._clock()
        for name in names:
            bucket = self._refilled(name, now)
            bucket.pending = max(0, bucket.pending - 1)
            bucket.tokens -= 1.0
            if bucket.tokens < 1.0 and not bucket.throttled:
                bucket.throttled = True
                started.append(name)
        return started

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, name: str, now: float) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            while len(self._buckets) >= self._max:
                self._buckets.popitem(last=False)
            bucket = self._buckets[name] = _Bucket(float(self.burst), now)
        self._buckets.move_to_end(name)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) / self.refill_s)
        bucket.at = now
        if bucket.tokens >= self.burst:
            bucket.throttled = False  # as good as new: a later throttling is a new episode
        return bucket
