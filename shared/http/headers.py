"""Limits of a request's header fields, on every HTTP port (docs/architecture.md, "Security"): past any of them
the answer is 431 Request Header Fields Too Large (RFC 6585 §5), `{"code", "message"}` as every error.

The limits are common proxies' (nginx's 8 KiB buffers for a line, a few of them for a request; Envoy's 100
headers), far above what any client of this API sends. uvicorn's httptools parser has none of its own: left
alone it buffers a header of any size, so two checks are made.

- `BoundedHead`, the server's protocol, counts the bytes of a request's head as they arrive and answers 431
  once they pass MAX_HEAD_BYTES, before any more is buffered (an 8 MiB header is never held).
- `HeaderLimit`, an ASGI middleware, checks the parsed fields against each limit before the app sees them.

What the parser itself refuses (400) says `{"code", "message"}` too.
"""
from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_FIELD_BYTES = 8 * 1024  # one field: its name and its value
MAX_HEADERS_BYTES = 32 * 1024  # every field's name and value together
MAX_HEADERS = 100
# What the server buffers of a request line and its header fields (their colons, spaces and line ends besides):
# room for an 8 KiB request line and fields at every limit above, so that `HeaderLimit` names the one passed.
MAX_HEAD_BYTES = MAX_FIELD_BYTES + MAX_HEADERS_BYTES + MAX_HEADERS * len(": \r\n") + len("\r\n")
# After a refusal the rest of what the client sends is read and dropped for this long before the connection
# closes: closing with its bytes unread would reset it, and the client could lose the answer.
LINGER_S = 2.0
CODE = "header_fields_too_large"


def _body(message: str) -> bytes:
    return json.dumps({"code": CODE, "message": message}).encode()


def problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Which limit the fields pass, or None."""
    if len(headers) > MAX_HEADERS:
        return f"{len(headers)} header fields; the limit is {MAX_HEADERS}"
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > MAX_FIELD_BYTES:
            return f"a header field of {size} bytes; the limit is {MAX_FIELD_BYTES} (its name and value)"
        total += size
    if total > MAX_HEADERS_BYTES:
        return f"{total} bytes of header fields; the limit is {MAX_HEADERS_BYTES}"
    return None


class HeaderLimit:
    """431 for a request whose header fields pass a limit; the app never sees it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (found := problem(scope["headers"])) is not None:
            body = _body(found)
            await send({"type": "http.response.start", "status": 431, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class BoundedHead(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a bound on each request's head: past MAX_HEAD_BYTES it answers 431 and
    closes, however the bytes arrive (one 8 MiB field, thousands of small ones, a byte at a time)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request line and fields (the next request's, between requests)
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped until the linger ends
        while data and self.parser is not None and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            room = MAX_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._refuse()
                return
            # At most what the head may still take: the parser never holds more of it than the limit.
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        """What the parser refuses (a control character in a field, a broken request line) answers
        `{"code", "message"}` as every other error does, not uvicorn's plain text."""
        self._answer(b"400 Bad Request", json.dumps({"code": "bad_request", "message": "not an HTTP/1.1 request "
                                                     "this server can read"}).encode())
        self.transport.close()

    def _answer(self, status: bytes, body: bytes) -> None:
        self.transport.write(b"".join([
            b"HTTP/1.1 ", status, b"\r\n", b"content-type: application/json\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n", b"connection: close\r\n\r\n", body]))

    def _refuse(self) -> None:
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # a pipelined request's answer must not follow this one
        self.logger.info("refused a request whose head passed %d bytes", MAX_HEAD_BYTES)
        body = _body(f"the request line and header fields pass {MAX_HEAD_BYTES} bytes; a field may have "
                     f"{MAX_FIELD_BYTES}, all of them {MAX_HEADERS_BYTES}, at most {MAX_HEADERS} fields")
        self._answer(b"431 Request Header Fields Too Large", body)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is whole; what the client still sends is dropped
        self.loop.call_later(LINGER_S, self.transport.close)

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()  # the client has sent everything: nothing left to drop
        super().eof_received()
