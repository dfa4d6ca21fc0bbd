"""Every HTTP error answers `{"code", "message"}` (docs/architecture.md, "Public contract"), plus `errors` naming
each bad field where there are several."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from shared.db.pool import is_transient

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra
        super().__init__(message)


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    headers = {**({"WWW-Authenticate": "Bearer"} if status == 401 else {}), **(headers or {})}
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status, headers=headers or None)


_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Keep the exception's headers: a 405 names the methods the route serves (`Allow`, RFC 9110 §15.5.6).
        return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), str(exc.detail), exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _exc: ClientDisconnect) -> Response:
        # The client closed the connection before its request was read: nothing was taken and
        # nobody is there to answer, so no error of ours (a 500 in the log would say otherwise).
        log.info("%s %s: the client went away before its request was read", request.method, request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            return error_response(503, "unavailable", "a backing service is not reachable; retry later")
        log.exception("unhandled error")
        return error_response(500, "internal_error", "unexpected error; it has been logged")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]}
            for e in exc.errors()
        ]
        message = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
        return error_response(422, "invalid_request", message, errors=errors)
