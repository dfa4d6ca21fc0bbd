"""A JSON request body, read within its bounds (docs/architecture.md, "Security"): 413 past
MAX_BODY_BYTES, 422 with the caller's error code when it is not JSON, past a limit, or
repeats a member."""
from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from shared.contracts import limits
from shared.http.errors import ApiError

MAX_BODY_BYTES = 64 * 1024


async def read_json(request: Request, code: str) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        return limits.loads(bytes(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(422, code, f"the body is not valid JSON: {exc}") from None
    except limits.LimitExceeded as exc:
        raise ApiError(422, code, f"the body is past a limit: {exc}") from None
    except limits.DuplicateKey as exc:
        raise ApiError(422, code, str(exc), errors=[{"field": exc.field, "problem": exc.PROBLEM}]) from None
