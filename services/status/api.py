"""The status read API (DESIGN.md §4): applications, contract list, detail view (R11).
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

from shared.catalog import products
from shared.domain.model import STATUS_LABELS_JA, ContractStatus
from shared.http.auth import Authenticator
from shared.http.errors import ApiError

MAX_PAGE = 100


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} not found")


def _uuid(raw: str, what: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise _not_found(what, raw) from None


def application_view(r: asyncpg.Record) -> dict[str, Any]:
    reason = {"code": r["reason_code"], "message": r["reason_message"]} if r["reason_code"] else None
    return {
        "application_id": str(r["application_id"]),
        "kind": r["kind"],
        "contract_id": str(r["contract_id"]) if r["contract_id"] else None,
        "status": r["status"],
        "reason": reason,
        "submitted_at": _iso(r["submitted_at"]),
        "expected_completion_at": _iso(r["expected_completion_at"]),
        "completed_at": _iso(r["completed_at"]),
    }


def _product_view(code: str) -> dict[str, str]:
    p = products().get(code)
    if p is None:  # withdrawn from the catalog since: the contract still shows
        return {"code": code, "name": code, "version": ""}
    return {"code": p.code, "name": p.name, "version": p.version}


def _order_id_view(r: asyncpg.Record) -> dict[str, str] | None:
    if r["arcserve_order_id"] is None:
        return None
    return {"value": r["arcserve_order_id"], "status": r["order_id_status"]}


def contract_summary(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "contract_id": str(r["contract_id"]),
        "status": r["status"],
        "status_label": STATUS_LABELS_JA[ContractStatus(r["status"])],
        "product": _product_view(r["product_code"]),
        "contact": {"email": r["contact_email"], "company_name": r["contact_company_name"]},
        "arcserve_order_id": _order_id_view(r),
        "created_at": _iso(r["created_at"]),
        "updated_at": _iso(r["updated_at"]),
    }


def license_view(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "license_id": str(r["license_id"]),
        # A key is shown once it is live (R1: both key and order ID are there).
        "license_key": r["license_key"] if r["status"] != "preparing" else None,
        "usage": r["usage"],
        "license_type": r["license_type"],
        "vm_count": r["vm_count"],
        "billable": r["billable"],
        "status": r["status"],
        "status_label": STATUS_LABELS_JA[ContractStatus(r["status"])],
        "charge_start_at": _iso(r["charge_start_at"]),
        "charge_end_at": _iso(r["charge_end_at"]),
        "parent_license_id": str(r["parent_license_id"]) if r["parent_license_id"] else None,
    }


def _encode_cursor(r: asyncpg.Record) -> str:
    raw = json.dumps([r["created_at"].isoformat(), str(r["contract_id"])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created_at, contract_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), UUID(contract_id)
    except (ValueError, TypeError):
        raise ApiError(422, "invalid_request", "cursor: not a cursor this API returned") from None


def router(pool: Callable[[], asyncpg.Pool], auth: Authenticator) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/applications/{application_id}")
    async def get_application(application_id: str, tenant: str = Depends(auth)) -> dict[str, Any]:
        row = await pool().fetchrow(
            "SELECT * FROM status.applications WHERE application_id = $1 AND tenant_id = $2",
            _uuid(application_id, "application"),
            tenant,
        )
        if row is None:
            raise _not_found("application", application_id)
        return application_view(row)

    @api.get("/contracts")
    async def list_contracts(
        tenant: str = Depends(auth),
        status: ContractStatus | None = None,
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        cursor: str | None = Query(None, max_length=200),
    ) -> dict[str, Any]:
        after = _decode_cursor(cursor) if cursor else None
        rows = await pool().fetch(
            """SELECT * FROM status.contracts
               WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
                 AND ($3::timestamptz IS NULL OR (created_at, contract_id) < ($3, $4))
               ORDER BY created_at DESC, contract_id DESC LIMIT $5""",
            tenant,
            status.value if status else None,
            after[0] if after else None,
            after[1] if after else None,
            limit + 1,
        )
        page = rows[:limit]
        return {
            "items": [contract_summary(r) for r in page],
            "next_cursor": _encode_cursor(page[-1]) if len(rows) > limit else None,
        }

    @api.get("/contracts/{contract_id}")
    async def get_contract(contract_id: str, tenant: str = Depends(auth)) -> dict[str, Any]:
        """The detail view (R11)."""
        cid = _uuid(contract_id, "contract")
        # One snapshot: a decision committed between the reads would show a contract whose
        # status disagrees with its keys.
        async with pool().acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(
                "SELECT * FROM status.contracts WHERE contract_id = $1 AND tenant_id = $2", cid, tenant
            )
            if row is None:
                raise _not_found("contract", contract_id)
            licenses = await conn.fetch(
                "SELECT * FROM status.licenses WHERE contract_id = $1 ORDER BY position", cid
            )
            applications = await conn.fetch(
                "SELECT * FROM status.applications WHERE contract_id = $1 AND tenant_id = $2 ORDER BY submitted_at, application_id",
                cid,
                tenant,
            )
        view = contract_summary(row)
        desk = products().get(row["product_code"])
        view["support_desk"] = desk.support_desk.model_dump() if desk else None
        view["licenses"] = [license_view(r) for r in licenses]
        view["applications"] = [application_view(r) for r in applications]
        return view

    return api
