"""The OpenAPI documents of the HTTP services, true to the API: the error body every error
answers with, an HTTP bearer scheme on every /v1 route, request-body definitions under
`components/schemas` (where every `$ref` resolves), and one document merged from several
(the portal's origin serves intake's and status's as one)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.contracts.answers import ErrorBody

ERRORS = {
    401: "No API key, or not a valid one (`WWW-Authenticate: Bearer`).",
    404: "No such id for this tenant (another tenant's ids answer 404 too).",
    409: "The Idempotency-Key was used before with another body.",
    413: "The body is over 64 KiB.",
    422: "A field breaks the schema or a limit; `errors` names each one.",  # R4
    429: "`rate_limited`: too many requests for this tenant; `too_many_failures`: too many wrong API keys from this "
         "address or for this key id (the key was not checked). `Retry-After` says when to try again.",
    431: "A header field is over 8 KiB, all of them over 32 KiB, or there are over 100 (shared/http/headers.py).",
    503: "A backing service (broker or database) is not reachable; nothing was accepted. Retry later.",
}
# The headers an error status always carries (shared/http/errors.py, shared/http/auth.py).
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`: the scheme this API takes.", "required": True,
                               "schema": {"type": "string", "const": "Bearer"}}},
    429: {"Retry-After": {"description": "Whole seconds until the caller may try again.", "required": True,
                          "schema": {"type": "integer", "minimum": 1}}},
}
BEARER = {"type": "http", "scheme": "bearer",
          "description": "The tenant's API key (`python -m services.tools.api_keys create TENANT`)."}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` for these error statuses, each answering ErrorBody (with its headers)."""
    return {status: {"model": ErrorBody, "description": ERRORS[status],
                     **({"headers": ERROR_HEADERS[status]} if status in ERROR_HEADERS else {})}
            for status in statuses}


def _rewrite(node: Any) -> Any:
    """References to `#/$defs/X` (in `$ref`s and discriminator mappings) as `#/components/schemas/X`."""
    if isinstance(node, dict):
        return {k: _rewrite(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if isinstance(node, str) and node.startswith("#/$defs/"):
        return "#/components/schemas/" + node.removeprefix("#/$defs/")
    return node


def _add_schema(schemas: dict[str, Any], name: str, schema: Any) -> None:
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are called {name}")


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """A FastAPI document made true: request-body `$defs` hoisted to components, FastAPI's own
    validation-error shape replaced by ErrorBody, the bearer scheme and the header limits' 431 on every /v1
    operation."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                schema = media.get("schema", {})
                for name, definition in schema.pop("$defs", {}).items():
                    _add_schema(schemas, name, _rewrite(definition))
                media["schema"] = _rewrite(schema)
            if path.startswith("/v1/"):
                operation["security"] = [{"bearer": []}]
                # Every port answers it, before any route is chosen.
                operation.setdefault("responses", {}).setdefault("431", {
                    "description": ERRORS[431],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
            unprocessable = operation.get("responses", {}).get("422", {}).get("content", {}).get("application/json", {})
            if unprocessable.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                unprocessable["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
                operation["responses"]["422"]["description"] = ERRORS[422]
    for fastapi_own in ("HTTPValidationError", "ValidationError"):
        schemas.pop(fastapi_own, None)
    document["components"]["securitySchemes"] = {"bearer": BEARER}
    return document


def install(app: FastAPI, description: str) -> None:
    """Serve the completed document at /openapi.json (and the docs UI at /docs)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, description=description, routes=app.routes,
            ))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


ONE_ORIGIN = {
    "title": "arcserve-licensing",
    "version": "1",
    "description": "The whole public HTTP API on the tenants' one origin (the portal forwards /v1 to intake "
                   "and status). Authorization: Bearer <API key>; the key names the tenant. Every error answers "
                   "{code, message} (and `errors` naming each bad field on a 422).",
}


def merge(documents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One document of several services' (paths never overlap; schemas of one name must agree)."""
    merged: dict[str, Any] = {"openapi": "3.1.0", "info": dict(ONE_ORIGIN),
                              "paths": {}, "components": {"schemas": {}, "securitySchemes": {"bearer": BEARER}}}
    for document in documents:
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                if method in merged["paths"].get(path, {}):
                    raise ValueError(f"{method.upper()} {path} is in two documents")
                merged["paths"].setdefault(path, {})[method] = operation
        for name, schema in document.get("components", {}).get("schemas", {}).items():
            _add_schema(merged["components"]["schemas"], name, schema)
    return merged
