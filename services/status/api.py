"""The status read API (docs/architecture.md, "Public contract"): applications, contract list, detail view (R11).
Every query is scoped to the caller's tenant; another tenant's ids answer 404."""
from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query

from services.status import service, views
from services.status.domain.model import Contract, ContractStatus
from services.status.repository import PostgresRepository
from shared.http.auth import Authenticator
from shared.http.errors import ApiError
from shared.sealing import Keyring

MAX_PAGE = 100


def _not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} not found")


def _uuid(raw: str, what: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise _not_found(what, raw) from None


def _encode_cursor(contract: Contract) -> str:
    raw = json.dumps([contract.created_at.isoformat(), str(contract.contract_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created_at, contract_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), UUID(contract_id)
    except (ValueError, TypeError):
        raise ApiError(422, "invalid_request", "cursor: not a cursor this API returned") from None


def router(pool: Callable[[], asyncpg.Pool], auth: Authenticator, keyring: Keyring) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/applications/{application_id}")
    async def get_application(application_id: str, tenant: str = Depends(auth)) -> dict[str, Any]:
        async with pool().acquire() as conn:
            found = await PostgresRepository(conn).application(_uuid(application_id, "application"), tenant)
        if found is None:
            raise _not_found("application", application_id)
        return views.application_view(found)

    @api.get("/contracts")
    async def list_contracts(
        tenant: str = Depends(auth),
        status: ContractStatus | None = None,
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        cursor: str | None = Query(None, max_length=200),
    ) -> dict[str, Any]:
        after = _decode_cursor(cursor) if cursor else None
        async with pool().acquire() as conn:
            contracts = await PostgresRepository(conn).page(tenant, status, after, limit + 1)
        page = contracts[:limit]
        return {
            "items": [views.contract_summary(c) for c in page],
            "next_cursor": _encode_cursor(page[-1]) if len(contracts) > limit else None,
        }

    @api.get("/contracts/{contract_id}")
    async def get_contract(contract_id: str, tenant: str = Depends(auth)) -> dict[str, Any]:
        """The detail view (R11)."""
        async with pool().acquire() as conn:
            found = await service.contract_detail(_uuid(contract_id, "contract"), tenant, PostgresRepository(conn))
        if found is None:
            raise _not_found("contract", contract_id)
        return views.contract_detail(found, keyring)

    return api
