"""`/v1` on the portal's origin (docs/architecture.md, "Portal and command line"): the whole public API, forwarded
unchanged to intake (submissions) and status (reads), so that tenants, the CLI and the portal
need one base URL. Bodies stream through both ways; only hop-by-hop headers stay behind."""
from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from services.portal.upstream import Upstream
from shared.http.errors import error_response

log = logging.getLogger(__name__)
# RFC 9110 §7.6.1, and what the client's own connection sets.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host",
})
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def router(upstream: Upstream) -> APIRouter:
    api = APIRouter()

    @api.api_route("/v1/{path:path}", methods=_METHODS, include_in_schema=False)
    async def forward(request: Request, path: str) -> Response:
        target = upstream.base_for(request.method, f"/v1/{path}") + f"/v1/{path}"
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        outgoing = upstream.client.build_request(
            request.method, target, params=request.url.query, headers=headers,
            content=request.stream() if request.method not in ("GET", "HEAD") else None,
        )
        try:
            answer = await upstream.client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            log.warning("forwarding %s /v1/%s: %s", request.method, path, type(exc).__name__)
            return error_response(503, "unavailable", "the service behind this API is not reachable; retry later")
        return StreamingResponse(
            answer.aiter_raw(), status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP},
            background=BackgroundTask(answer.aclose),
        )

    return api
