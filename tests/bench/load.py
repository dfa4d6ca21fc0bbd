"""The benchmark's HTTP load: keep-alive HTTP/1.1 connections over asyncio streams, answers
parsed by httptools (the parser uvicorn uses).

Why not httpx: at 64 connections it cost the load generator 3.7–4.1 ms of CPU a request
(measured against intake alone, which itself took 1.4–2.1 ms), so on this 2-core machine the
benchmark measured its own client. The load must not eat the machine it measures.
"""
from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httptools

IDLE_EXPIRY_S = 5.0  # far below the server's keep-alive: an idle connection is never closed under a request


class _Answer:
    """httptools' callbacks: the body, and when the answer is complete."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.complete = False

    def on_body(self, chunk: bytes) -> None:
        self.body += chunk

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
        self.writer.write(head + body)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.complete:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            parser.feed_data(data)
        return parser.get_status_code(), bytes(answer.body), parser.should_keep_alive()

    def close(self) -> None:
        self.writer.close()


class Client:
    """POSTs to one origin over connections it keeps open and reuses; one more is opened
    whenever none is idle. A transport error raises OSError (ConnectionError)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: list[_Connection] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json",
                 f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in headers.items())]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        connection = await self._take()
        try:
            status, answer, keep_alive = await connection.request(head, body)
        except BaseException:
            connection.close()
            raise
        if keep_alive:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return status, answer

    async def _take(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if time.monotonic() - connection.idle_since < IDLE_EXPIRY_S:
                return connection
            connection.close()
        return _Connection(*await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
