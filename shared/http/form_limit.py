"""The size of what a server's own pages' forms may send (the portal's, the back-office
console's; their JSON APIs hold their own limits). A browser's form always declares its
length: a POST to a page without one (411) or over the limit (413) is refused before a byte
of it is read."""
from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_FORM_BYTES = 64 * 1024


class FormLimit:
    def __init__(self, app: ASGIApp, api_prefix: str, max_bytes: int = MAX_FORM_BYTES):
        self.app = app
        self.api_prefix = api_prefix  # what is not a page: the portal's /v1/, the console's /ops/
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith(self.api_prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if not declared.isdigit():
            await _refuse(send, 411, "a form must declare its length (Content-Length)")
        elif int(declared) > self.max_bytes:
            await _refuse(send, 413, f"a form may send at most {self.max_bytes // 1024} KiB")
        else:
            await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, why: str) -> None:
    body = f"<!doctype html><title>{status}</title><p>{why}</p>".encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
