"""The HTTP side of the CLI: one synchronous httpx.Client on the base URL, the tenant's key as a bearer token.
Failures become `CliError`s that say what happened in one line; the key never appears in
any of them."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from shared.http import bearer

DEFAULT_URL = "http://127.0.0.1:8084"
URL_ENV = "ARCSERVE_URL"
KEY_ENV = "ARCSERVE_API_KEY"
TIMEOUT_S = 15.0

EXIT_API = 1  # the API refused, or a watched application was rejected
EXIT_USAGE = 2  # as click answers a usage error


class CliError(Exception):
    """What to print on stderr (one line per entry of `lines`) and the exit code."""

    def __init__(self, lines: list[str], exit_code: int = EXIT_API, body: str | None = None):
        super().__init__(lines[0] if lines else "error")
        self.lines = lines
        self.exit_code = exit_code
        self.body = body  # the API's own JSON, when there is one (printed on stdout with --json)


class ApiFailure(CliError):
    """A non-2xx answer of the API: `{"code", "message"}`, plus `errors` on a 422."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, Any]], body: str):
        lines = [f"error: {code}: {message} (HTTP {status})"]
        lines += [f"  {e.get('field', '?')}: {e.get('problem', '')}" for e in errors]
        super().__init__(lines, EXIT_API, body)
        self.status = status
        self.code = code


class Unreachable(CliError):
    """No answer at all (refused, timed out, a bad URL): retrying may help while watching."""


@dataclass(frozen=True)
class Settings:
    url: str
    api_key: str | None = field(repr=False)  # never printed


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: the parsed JSON and its text, unchanged (what --json prints)."""

    data: Any
    text: str


def _usable_key(key: str | None) -> str:
    if not key:
        raise CliError([f"error: no API key: pass --api-key or set {KEY_ENV}"], EXIT_USAGE)
    if not bearer.well_formed(key):
        raise CliError(["error: that is not an API key: too long, or characters an HTTP header cannot carry (spaces, "
                        "control or non-ASCII characters)"], EXIT_USAGE)
    return key


def _failure(response: httpx.Response, url: str) -> CliError:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        errors = body.get("errors")
        return ApiFailure(response.status_code, body["code"], str(body.get("message", "")),
                          [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
                          response.text)
    return CliError([f"error: {url} answered HTTP {response.status_code} without the API's error JSON; "
                     f"is {URL_ENV} the portal's base URL?"])


class Api:
    """The public API of docs/architecture.md §4, as this tenant."""

    def __init__(self, settings: Settings):
        self.url = settings.url.rstrip("/")
        key = _usable_key(settings.api_key)
        try:
            self._client = httpx.Client(
                base_url=self.url, timeout=TIMEOUT_S,
                headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            raise CliError([f"error: not a usable base URL {self.url!r}: {exc}"], EXIT_USAGE) from None

    def __enter__(self) -> Api:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._client.close()

    def get(self, path: str, params: dict[str, str | int | None] | None = None) -> Answer:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return self._send("GET", path, params=query)

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> Answer:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return self._send("POST", "/v1/applications", json=body, headers=headers)

    def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        where = f"{self.url}{path}"
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise Unreachable([f"error: {where} did not answer within {TIMEOUT_S:g} s"]) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise CliError([f"error: not a usable base URL {self.url!r}: {exc}"], EXIT_USAGE) from None
        except httpx.TransportError as exc:
            raise Unreachable([f"error: cannot reach {self.url} ({type(exc).__name__}: {exc or 'no answer'}); "
                               f"check --url / {URL_ENV}"]) from None
        if not response.is_success:
            raise _failure(response, where)
        try:
            return Answer(response.json(), response.text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CliError([f"error: {where} answered HTTP {response.status_code} with something other than "
                            f"JSON; is {URL_ENV} the portal's base URL?"]) from None

