"""An HTTP server inside a service's own event loop (uvicorn), started and stopped by the
service: it owns the signals, and stops HTTP before it drains anything else."""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from shared.http.headers import BoundedHead, HeaderLimit

KEEP_ALIVE_S = 65


class _Embedded(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the service's, not uvicorn's


class HttpServer:
    def __init__(self, app: ASGIApp, *, host: str, port: int, name: str, grace_s: float):
        self.name = name
        self._server = _Embedded(uvicorn.Config(
            # Header fields within limits on every port (shared/http/headers.py).
            HeaderLimit(app), host=host, port=port, lifespan="off", access_log=False, log_config=None,
            # The C parser (httptools), the bytes of each request's head bounded: a missing parser fails at
            # import rather than falling back to h11's pure Python.
            http=BoundedHead,
            # A client's address is the connection's, unless the deployment names the proxies it
            # trusts (FORWARDED_ALLOW_IPS): uvicorn would otherwise take X-Forwarded-For from any
            # caller on loopback, and let it pick the address that failed authentication counts.
            proxy_headers="FORWARDED_ALLOW_IPS" in os.environ,
            timeout_graceful_shutdown=max(1, round(grace_s)),
            # Longer than the clients' and proxies' own idle timeouts (httpx 5 s, load balancers
            # commonly 60 s), so that the client is the one to close an idle connection: a server
            # that closes it first races the client's next request on it (a reset, a lost answer),
            # and more so when its event loop is busy and its timer fires late.
            timeout_keep_alive=KEEP_ALIVE_S,
        ))
        self._task: asyncio.Task[None] | None = None
        self._port = port

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name=f"{self.name}-http")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises why it could not start (port taken, …)
                raise RuntimeError(f"{self.name}: HTTP server exited at start-up (port {self._port} taken?)")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Finish the requests in hand, then close."""
        self._server.should_exit = True
        if self._task is not None:
            await self._task

    @property
    def bound_port(self) -> int:
        assert self._server.servers, f"{self.name} is not serving"
        return self._server.servers[0].sockets[0].getsockname()[1]
