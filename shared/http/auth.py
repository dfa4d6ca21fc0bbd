"""Bearer API keys per tenant (docs/architecture.md, "Security"), each tenant's rate limit
(shared/http/ratelimit.py) on every route that needs one, and failed keys throttled per source
address and key id (shared/http/failures.py). A key is looked up by its HMAC under the
server pepper. Answers are cached only while this process listens for revocations (LISTEN
arcserve_api_key_revoked on a connection of its own): a revoked key stops working on every
replica as soon as the notification arrives, well within a second. Without the listener
(the database away, the connection lost) nothing is cached, so nothing stale is served."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import asyncpg
from fastapi import Request

from shared import audit, tenancy
from shared.db.pool import is_transient
from shared.http import bearer, failures, vouch
from shared.http.errors import ApiError
from shared.http.ratelimit import RateLimiter, retry_after

log = logging.getLogger(__name__)
CACHE_TTL_S = 60.0
UNKNOWN_TTL_S = 5.0  # an unknown key may be seeded meanwhile
CACHE_MAX = 10_000
LISTEN_TIMEOUT_S = 5.0  # to connect and LISTEN, in the background
# A key that authenticated here this recently is let past a throttled address or key id (and
# then checked as ever): its tenant is not slowed by someone guessing from its NAT or at its
# id. Only a key already known good passes, so a throttled source learns nothing new.
KNOWN_GOOD_S = 3600.0


class Authenticator:
    def __init__(self, pool: Callable[[], asyncpg.Pool], database_url: str, pepper: bytes,
                 limiter: RateLimiter | None = None, failed: failures.FailureThrottle | None = None, *,
                 service: str = "", forwarding_secret: bytes | None = None):
        self._pool = pool
        self._limiter = limiter
        self._failed = failed
        self._service = service
        self._forwarding_secret = forwarding_secret
        self._known_good: OrderedDict[bytes, float] = OrderedDict()  # key HMAC → until when
        self._audits: set[asyncio.Task[None]] = set()
        self._settled = asyncio.Condition()  # a throttled look-up ended: its token is spent or free again
        self._database_url = database_url
        self._pepper = pepper
        self._cache: dict[bytes, tuple[tenancy.Caller | None, float]] = {}
        self._listener: asyncpg.Connection | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def caller_for(self, key: str, digest: bytes | None = None) -> tenancy.Caller | None:
        digest = digest or tenancy.api_key_hmac(self._pepper, key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now and self._listening:
            return hit[0]
        try:
            caller = await tenancy.caller_for_key(self._pool(), self._pepper, key)
        except Exception as exc:
            if not is_transient(exc):
                raise
            raise ApiError(503, "unavailable", "the database is not reachable; retry later") from None
        if self._listen():
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()  # bounded: unknown keys must not grow it without limit
            self._cache[digest] = (caller, now + (CACHE_TTL_S if caller else UNKNOWN_TTL_S))
        return caller

    @property
    def _listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    def _listen(self) -> bool:
        """Whether this process listens for revocations now. If not, (re)connects in the
        background, one attempt at a time: a request never waits for it (an unreachable or
        slow database would otherwise hold every request for the attempt's timeout)."""
        if self._listening:
            return True
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._connect(), name="api-key-revocations")
        return False

    async def _connect(self) -> None:
        listener: asyncpg.Connection | None = None
        try:
            async with asyncio.timeout(LISTEN_TIMEOUT_S):
                listener = await asyncpg.connect(self._database_url)
                await listener.add_listener(tenancy.REVOKED_CHANNEL, self._revoked)
        except Exception as exc:
            log.warning("not listening for API key revocations (%r); answers are not cached meanwhile", exc)
            if listener is not None:
                listener.terminate()
            return
        listener.add_termination_listener(self._lost)
        self._cache.clear()  # whatever was revoked while nobody listened
        self._listener = listener

    def _revoked(self, _conn: Any, _pid: int, _channel: str, key_id: object) -> None:
        for digest, (caller, _) in list(self._cache.items()):
            if caller is not None and caller.key_id == key_id:
                del self._cache[digest]

    def _lost(self, _conn: Any) -> None:
        self._listener = None
        self._cache.clear()

    async def close(self) -> None:
        if self._audits:
            await asyncio.wait(self._audits, timeout=2)
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)

    async def caller(self, request: Request) -> tenancy.Caller:
        """FastAPI dependency: who calls (tenant and key id); or 401, or 429 when its address
        or key id sent too many wrong keys, or its tenant too many requests."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not bearer.well_formed(key):
            raise ApiError(401, "unauthorized", "missing or malformed bearer API key")
        digest = tenancy.api_key_hmac(self._pepper, key)
        caller = await self._judged(request, key, digest)
        request.state.tenant_id = caller.tenant_id  # for the access log (shared/http/observe.py)
        limiter = self._limiter
        if limiter is not None and (wait := limiter.take(caller.tenant_id)) > 0:
            raise ApiError(429, "rate_limited",
                           f"too many requests for this tenant (at most {limiter.per_second:g}/s, bursts of "
                           f"{limiter.burst}); retry after the seconds Retry-After gives",
                           headers={"Retry-After": retry_after(wait)})
        return caller

    async def _judged(self, request: Request, key: str, digest: bytes) -> tenancy.Caller:
        throttle = self._failed
        if throttle is None or self._known(digest):
            caller = await self.caller_for(key, digest)
            if caller is None:
                raise ApiError(401, "unauthorized", "unknown or revoked API key")
            return caller
        counted = failures.subjects(self.client_address(request), key)
        async with self._settled:
            # What is left of the budget is held by look-ups in flight: wait for one to end (a
            # valid key frees its token at once), rather than refuse a key that may be good.
            while (wait := throttle.take(counted)) == failures.BUSY:
                await self._settled.wait()
        if wait > 0:
            # Not looked up: the answer is the same whichever key was sent.
            raise ApiError(429, failures.CODE,
                           f"too many wrong API keys from this address or for this key id (at most {throttle.burst}, "
                           f"then one every {throttle.refill_s:g} s); retry after the seconds Retry-After gives",
                           headers={"Retry-After": retry_after(wait)})
        try:
            found = await self.caller_for(key, digest)
        except BaseException:
            throttle.give_back(counted)  # not judged (the database away): not a failure
            await self._wake()
            raise
        if found is None:
            for subject in throttle.failed(counted):
                self._throttled(subject, counted)
            await self._wake()
            raise ApiError(401, "unauthorized", "unknown or revoked API key")
        throttle.give_back(counted)
        await self._wake()
        self._known_good[digest] = time.monotonic() + KNOWN_GOOD_S
        self._known_good.move_to_end(digest)
        while len(self._known_good) > failures.MAX_TRACKED:
            self._known_good.popitem(last=False)
        return found

    async def _wake(self) -> None:
        """A throttled look-up ended: those waiting for the budget it held may ask again."""
        async with self._settled:
            self._settled.notify_all()

    def _known(self, digest: bytes) -> bool:
        until = self._known_good.get(digest)
        return until is not None and until > time.monotonic()

    def client_address(self, request: Request) -> str:
        """The address failed keys count against: the portal's client where the portal vouches
        for it (shared/http/vouch.py), else the peer's."""
        vouched = request.headers.get(vouch.HEADER)
        if vouched and self._forwarding_secret and (address := vouch.verify(self._forwarding_secret, vouched, time.time())):
            return address
        return request.client.host if request.client else "unknown"

    def _throttled(self, subject: str, counted: list[str]) -> None:
        """Said once per episode (failures.py), in the log and in audit.records: the address
        and the key id, never the key."""
        address = counted[0].removeprefix("address ")
        key_id = counted[1].removeprefix("key_id ") if len(counted) > 1 else None
        log.warning("too many wrong API keys: throttling %s (address %s, key id %s)", subject, address, key_id or "none")
        task = asyncio.create_task(self._audit(subject, address, key_id), name="audit-auth-throttled")
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    async def _audit(self, subject: str, address: str, key_id: str | None) -> None:
        throttle = self._failed
        assert throttle is not None
        try:
            async with self._pool().acquire() as conn:
                await audit.record(conn, "auth.throttled", subject, actor=self._service, service=self._service,
                                   address=address, key_id=key_id, burst=throttle.burst, refill_s=throttle.refill_s)
        except Exception as exc:  # the log line above still says it
            log.warning("could not write the audit record of throttling %s: %r", subject, exc)

    async def __call__(self, request: Request) -> str:
        """FastAPI dependency: the caller's tenant, or 401."""
        return (await self.caller(request)).tenant_id
