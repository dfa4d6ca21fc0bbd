"""`/v1` on the portal's origin (docs/architecture.md, "Portal and command line"): the whole public API, forwarded
unchanged to intake (submissions) and status (reads), so that tenants, the CLI and the portal
need one base URL. Bodies stream through both ways. What belongs to this hop stays behind: the
portal's own cookie (it seals a session), the client's forwarding headers (the services would
trust them from the portal's address), and hop-by-hop headers."""
from __future__ import annotations

import logging
from urllib.parse import unquote

import httpx
from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from services.portal.upstream import Upstream
from shared.http import vouch
from shared.http.errors import error_response

log = logging.getLogger(__name__)
# RFC 9110 §7.6.1, and what this hop sets itself.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "transfer-encoding", "upgrade", "host",
})
# A client's claims about its address are not passed on: the portal vouches for it itself.
_NOT_FORWARDED = _HOP_BY_HOP | {"cookie", "forwarded", "x-real-ip", vouch.HEADER}
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Answers of the API carry license keys (the detail view): never cached, never sniffed.
_ANSWER_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def request_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """The fields to forward, bytes for bytes: a value may hold any octet HTTP allows (obs-text, RFC 9110 §5.5),
    which httpx refuses to encode from text (that was a 500)."""
    named = {h.strip().lower() for h in request.headers.get("connection", "").split(",")}
    bodiless = request.method in ("GET", "HEAD")
    return [(k, v) for k, v in request.headers.raw
            if (lk := k.decode("latin-1").lower()) not in _NOT_FORWARDED and lk not in named
            and not lk.startswith("x-forwarded-") and not (bodiless and lk == "content-length")]


def inside_v1(raw_path: str) -> bool:
    """The path names something under /v1 however it is spelt: no dot segment, encoded or not,
    may climb out of it."""
    return raw_path.startswith("/v1/") and not {".", ".."} & set(unquote(raw_path).split("/"))


def router(upstream: Upstream) -> APIRouter:
    api = APIRouter()

    def local(location: str) -> str:
        """An upstream's absolute Location, as a path on this origin."""
        for base in (upstream.intake_url, upstream.status_url):
            if location.startswith(base + "/"):
                return location[len(base):]
        return location

    @api.api_route("/v1/{path:path}", methods=_METHODS, include_in_schema=False)
    async def forward(request: Request, path: str) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        if not inside_v1(raw_path):
            return error_response(404, "not_found", "no such path under /v1")
        outgoing = upstream.client.build_request(
            request.method, upstream.base_for(request.method, request.url.path) + raw_path,
            params=request.url.query, headers=[*request_headers(request), *((k.encode(), v.encode()) for k, v in upstream.vouching().items())],
            content=request.stream() if request.method not in ("GET", "HEAD") else None,
        )
        try:
            answer = await upstream.client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            log.warning("forwarding %s /v1/%s: %s", request.method, path, type(exc).__name__)
            return error_response(503, "unavailable", "the service behind this API is not reachable; retry later")
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        if "location" in answer.headers:
            headers["location"] = local(answer.headers["location"])
        return StreamingResponse(
            answer.aiter_raw(), status_code=answer.status_code, headers={**headers, **_ANSWER_HEADERS},
            background=BackgroundTask(answer.aclose),
        )

    return api
