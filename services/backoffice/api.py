"""The back-office console's JSON API (docs/architecture.md, "Fulfilment"), for the provider's
operators only (`Authorization: Bearer <operator key>`), over the console's service layer
(services/backoffice/console.py):

- `GET /ops/v1/fulfilments?state=&tenant=&kind=&overdue=&limit=&cursor=`: the tasks, due first;
- `GET /ops/v1/fulfilments/{application_id}`: one task;
- `POST /ops/v1/fulfilments/{application_id}/fulfil`: what Arcserve delivered (422 naming each
  bad field), published as `fulfilment.fulfilled`;
- `POST /ops/v1/fulfilments/{application_id}/reject`: Arcserve refused, with the reason the
  tenant will read, published as `fulfilment.rejected`;
- `GET /ops/v1/revocations?state=open|confirmed|all&tenant=&limit=&cursor=`: the revocations at
  Arcserve that cancellations asked for, oldest first; `GET /ops/v1/revocations/{application_id}`;
- `POST /ops/v1/revocations/{application_id}/confirm`: Arcserve revoked the keys (and cancelled
  the order ID), published as `fulfilment.revocation_confirmed`; 409 `not_open` once confirmed.

An application id is its tenant's choice, so two tenants' tasks may share one: `?tenant=`
tells them apart (409 `ambiguous` without it)."""
from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request

from services.backoffice.console import Console, Refused, fulfiller, read_body
from services.backoffice.cursor import Cursor
from services.backoffice.operators import OperatorAuth
from services.backoffice.tasks import Filters
from shared.contracts import fulfilment, limits
from shared.contracts.applications import Kind
from shared.http.body import read_json
from shared.http.errors import ApiError
from shared.tenancy.operators import Operator

MAX_PAGE = 100
STATUS = {"not_found": 404, "ambiguous": 409, "not_open": 409, "forbidden": 403, "invalid_fulfilment": 422,
          "unavailable": 503}
T = TypeVar("T")


async def answered(step: Awaitable[T]) -> T:
    """The step's result, or its refusal as the API answers it."""
    try:
        return await step
    except Refused as refused:
        if refused.errors is not None:
            raise ApiError(STATUS[refused.code], refused.code, refused.message, errors=refused.errors) from None
        raise ApiError(STATUS[refused.code], refused.code, refused.message) from None


def router(console: Console, auth: OperatorAuth) -> APIRouter:
    api = APIRouter(prefix="/ops/v1")

    @api.get("/fulfilments", summary="The fulfilment tasks, due first")
    async def list_tasks(
        operator: Operator = Depends(auth),
        state: Literal["open", "fulfilled", "rejected", "all"] = "open",
        tenant: str | None = Query(None, min_length=1, max_length=128),
        kind: Kind | None = None,
        overdue: bool = False,
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        cursor: str | None = Query(None, max_length=400),
    ) -> dict[str, Any]:
        tasks, following = await console.page(Filters(state, _tenant(tenant), kind, overdue), _cursor(cursor), limit)
        now = console.clock()
        return {"items": [t.view(now) for t in tasks], "next_cursor": following.encode() if following else None}

    @api.get("/fulfilments/{application_id}", summary="One fulfilment task")
    async def get_task(application_id: str, tenant: str | None = Query(None, max_length=128),
                       operator: Operator = Depends(auth)) -> dict[str, Any]:
        return (await answered(console.task(application_id, tenant))).view(console.clock())

    @api.post("/fulfilments/{application_id}/fulfil", summary="Type in what Arcserve delivered")
    async def fulfil(request: Request, application_id: str, tenant: str | None = Query(None, max_length=128),
                     operator: Operator = Depends(auth)) -> dict[str, Any]:
        async def step() -> Any:
            fulfiller(operator)  # before the body: a viewer learns nothing of its checks
            delivered = read_body(fulfilment.Fulfilment, await read_json(request, "invalid_fulfilment"))
            return await console.fulfil(operator, application_id, tenant, delivered)

        return (await answered(step())).view(console.clock())

    @api.post("/fulfilments/{application_id}/reject", summary="Arcserve refused: the tenant reads the reason")
    async def reject(request: Request, application_id: str, tenant: str | None = Query(None, max_length=128),
                     operator: Operator = Depends(auth)) -> dict[str, Any]:
        async def step() -> Any:
            fulfiller(operator)
            refusal = read_body(fulfilment.Refusal, await read_json(request, "invalid_fulfilment"))
            return await console.reject(operator, application_id, tenant, refusal)

        return (await answered(step())).view(console.clock())

    @api.get("/revocations", summary="The revocations at Arcserve, oldest first")
    async def list_revocations(
        operator: Operator = Depends(auth),
        state: Literal["open", "confirmed", "all"] = "open",
        tenant: str | None = Query(None, min_length=1, max_length=128),
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        cursor: str | None = Query(None, max_length=400),
    ) -> dict[str, Any]:
        found, following = await console.revocations(state, _tenant(tenant), _cursor(cursor), limit)
        return {"items": [r.view() for r in found], "next_cursor": following.encode() if following else None}

    @api.get("/revocations/{application_id}", summary="One revocation at Arcserve")
    async def get_revocation(application_id: str, tenant: str | None = Query(None, max_length=128),
                             operator: Operator = Depends(auth)) -> dict[str, Any]:
        return (await answered(console.revocation(application_id, tenant))).view()

    @api.post("/revocations/{application_id}/confirm", summary="Arcserve revoked the keys (and cancelled the order ID)")
    async def confirm(application_id: str, tenant: str | None = Query(None, max_length=128),
                      operator: Operator = Depends(auth)) -> dict[str, Any]:
        return (await answered(console.confirm(operator, application_id, tenant))).view()

    return api


def _tenant(tenant: str | None) -> str | None:
    if tenant is not None and limits.has_control_characters(tenant):  # Postgres text cannot hold NUL
        raise ApiError(422, "invalid_request", "tenant: must not contain control characters",
                       errors=[{"field": "tenant", "problem": "must not contain control characters"}])
    return tenant


def _cursor(cursor: str | None) -> Cursor | None:
    if not cursor:
        return None
    try:
        return Cursor.decode(cursor)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"cursor: {exc}", errors=[{"field": "cursor", "problem": str(exc)}]) from None
