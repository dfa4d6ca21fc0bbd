"""The status read API (docs/architecture.md, "Public contract"): applications and their list, the contract list
(the main menu's rows), the detail view (R11).
Every query is scoped to the caller's tenant; another tenant's ids answer 404."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query

from services.status import queries, service, views
from services.status.cursor import Cursor, InvalidCursor, decode_cursor, encode_cursor
from services.status.domain.model import ApplicationStatus, ContractStatus
from services.status.repository import PostgresRepository
from shared.clock import Clock
from shared.contracts import answers, limits
from shared.http import openapi
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


def _invalid(field: str, problem: str) -> ApiError:
    """A 422 naming the query parameter, as FastAPI's own validation does (shared/http/errors.py)."""
    return ApiError(422, "invalid_request", f"{field}: {problem}", errors=[{"field": field, "problem": problem}])


def _after(raw: str | None) -> Cursor | None:
    if not raw:
        return None
    try:
        return decode_cursor(raw)
    except InvalidCursor as exc:
        raise _invalid("cursor", f"not a cursor this API returned ({exc})") from None


def _product(raw: str | None) -> str | None:
    # Postgres text cannot hold NUL: the query would fail rather than find nothing.
    if raw is not None and limits.has_control_characters(raw):
        raise _invalid("product", "must not contain control characters")
    return raw


def router(pool: Callable[[], asyncpg.Pool], auth: Authenticator, keyring: Keyring, clock: Clock) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/applications/{application_id}", summary="An application",
             responses={200: {"model": answers.ApplicationView}, **openapi.errors(401, 404, 429, 503)})
    async def get_application(application_id: str, tenant: str = Depends(auth)) -> dict[str, Any]:
        async with pool().acquire() as conn:
            found = await PostgresRepository(conn).application(_uuid(application_id, "application"), tenant)
        if found is None:
            raise _not_found("application", application_id)
        return views.application_view(found, clock())

    @api.get("/applications", summary="The tenant's applications, newest first",
             responses={200: {"model": answers.ApplicationPage}, **openapi.errors(401, 422, 429, 503)})
    async def list_applications(
        tenant: str = Depends(auth),
        contract_id: UUID | None = None,
        status: ApplicationStatus | None = None,
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        cursor: str | None = Query(None, max_length=200),
    ) -> dict[str, Any]:
        async with pool().acquire() as conn:
            found = await queries.applications(conn, tenant, contract_id=contract_id, status=status,
                                               after=_after(cursor), limit=limit + 1)
        page, now = found[:limit], clock()
        return {
            "items": [views.application_view(a, now) for a in page],
            "next_cursor": encode_cursor(page[-1].submitted_at, page[-1].application_id) if len(found) > limit else None,
        }

    @api.get("/contracts", summary="The tenant's contracts, newest first: the main menu",
             responses={200: {"model": answers.ContractPage}, **openapi.errors(401, 422, 429, 503)})
    async def list_contracts(
        tenant: str = Depends(auth),
        status: ContractStatus | None = None,
        product: str | None = Query(None, min_length=1, max_length=100),
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        cursor: str | None = Query(None, max_length=200),
    ) -> dict[str, Any]:
        """The main menu in one call: every row whole (views.contract_summary)."""
        async with pool().acquire() as conn:
            found = await queries.summaries(conn, tenant, status=status, product=_product(product),
                                            after=_after(cursor), limit=limit + 1)
        page = found[:limit]
        last = page[-1].contract if page else None
        return {
            "items": [views.contract_summary(s) for s in page],
            "next_cursor": encode_cursor(last.created_at, last.contract_id) if last and len(found) > limit else None,
        }

    @api.get("/contracts/{contract_id}", summary="The detail view",
             responses={200: {"model": answers.ContractDetail}, **openapi.errors(401, 404, 429, 503)})
    async def get_contract(contract_id: str, tenant: str = Depends(auth)) -> dict[str, Any]:
        """The detail view: the contract, its keys and order ID, and its applications."""  # R11
        async with pool().acquire() as conn:
            found = await service.contract_detail(_uuid(contract_id, "contract"), tenant, PostgresRepository(conn))
        if found is None:
            raise _not_found("contract", contract_id)
        return views.contract_detail(found, keyring, clock())

    return api
