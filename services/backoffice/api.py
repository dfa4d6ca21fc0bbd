"""The back-office console's JSON API (docs/architecture.md, "Fulfilment"), for the provider's
operators only (`Authorization: Bearer <operator key>`):

- `GET /ops/v1/fulfilments?state=&tenant=&kind=&overdue=&limit=&cursor=`: the tasks, due first;
- `GET /ops/v1/fulfilments/{application_id}`: one task;
- `POST /ops/v1/fulfilments/{application_id}/fulfil`: what Arcserve delivered, checked against
  the task (422 naming each bad field), published as `fulfilment.fulfilled`;
- `POST /ops/v1/fulfilments/{application_id}/reject`: Arcserve refused, with the reason the
  tenant will read, published as `fulfilment.rejected`.

A task is closed in one transaction that holds its row: the result is published with the
broker's confirm before the commit, so no key waits at rest in clear (not even in an outbox),
and a second operator waits for the first, then finds it closed (409 `not_open`). Should the
commit fail after the confirm, the task stays open here while the license issuer has the
result; answering it again is harmless there (the first result wins). Every fulfilment and
rejection leaves an audit record naming the operator; never a key.

An application id is its tenant's choice, so two tenants' tasks may share one: `?tenant=`
tells them apart (409 `ambiguous` without it)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ValidationError

from services.backoffice.operators import OperatorAuth, fulfiller
from services.backoffice.tasks import Cursor, Filters, PostgresTasks, Task
from shared import audit, metrics
from shared.contracts import catalogue, fulfilment
from shared.contracts.applications import Kind, describe
from shared.http.body import read_json
from shared.http.errors import ApiError
from shared.messaging.broker import Broker
from shared.sealing import Keyring
from shared.tenancy.operators import Operator

MAX_PAGE = 100
# A result's CloudEvents id: the same for every try at the same task, so a publish repeated
# after a failed commit is one message to the license issuer's inbox.
_RESULT_IDS = uuid.UUID("0b8f3c52-7d1e-4a6b-9c2f-5e4d3a2b1c0f")


def _invalid(errors: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "invalid_fulfilment", "; ".join(f"{e['field']}: {e['problem']}" for e in errors),
                    errors=errors)


def _application_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise ApiError(404, "not_found", f"no fulfilment task for application {raw}") from None


def _body(model: type[fulfilment.Fulfilment] | type[fulfilment.Refusal], raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise _invalid([{"field": "(body)", "problem": "must be a JSON object"}])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid([describe(e) for e in exc.errors()]) from None


def router(pool: Callable[[], asyncpg.Pool], broker: Broker, auth: OperatorAuth, keyring: Keyring, source: str,
           clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/ops/v1")

    async def one(application_id: str, tenant: str | None) -> Task:
        found = await PostgresTasks(pool()).find(_application_id(application_id), tenant)
        if not found:
            raise ApiError(404, "not_found", f"no fulfilment task for application {application_id}")
        if len(found) > 1:
            raise ApiError(409, "ambiguous", f"tenants {', '.join(sorted(t.tenant_id for t in found))} each have an "
                                             f"application {application_id}: say which with ?tenant=")
        return found[0]

    async def close(operator: Operator, application_id: str, tenant: str | None,
                    result: Callable[[Task, PostgresTasks], Any]) -> dict[str, Any]:
        """Close the open task with what `result` checks and returns (the message to publish, the
        state, the reason, the fingerprints of the keys it takes), under the task's lock."""
        task = await one(application_id, tenant)
        now = clock()
        async with pool().acquire() as conn, conn.transaction():
            tasks = PostgresTasks(conn)
            locked = await tasks.locked(task.tenant_id, task.application_id)
            assert locked is not None
            if locked.state != "open":
                raise ApiError(409, "not_open", f"the task of application {application_id} is {locked.state} already")
            message, state, reason, fingerprints = await result(locked, tasks)
            entry, event = catalogue.to_event(
                message, source=source, tenant_id=locked.tenant_id, subject=str(locked.contract_id),
                id=str(uuid.uuid5(_RESULT_IDS, f"{locked.tenant_id}/{locked.application_id}")))
            try:
                await broker.publish_event(broker.topology.name(entry.exchange), entry.routing_key, event.to_json(),
                                           message_id=event.id, mandatory=True)
            except Exception:
                raise ApiError(503, "unavailable", "the broker did not confirm the result; nothing changed, "
                                                   "retry later") from None
            await tasks.use(locked, fingerprints, now)
            closed = await tasks.close(locked, state, operator.operator_id, now, reason)
            await audit.record(conn, f"fulfilments.{'fulfil' if state == 'fulfilled' else 'reject'}",
                               str(locked.application_id), actor=f"operator {operator.operator_id} ({operator.name})",
                               tenant=locked.tenant_id, kind=locked.kind.value, keys=len(fingerprints))
        metrics.FULFILMENTS.labels("backoffice", "back-office").inc()
        return closed.view(now)

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
        after = None
        if cursor:
            try:
                after = Cursor.decode(cursor)
            except ValueError as exc:
                raise ApiError(422, "invalid_request", f"cursor: {exc}",
                               errors=[{"field": "cursor", "problem": str(exc)}]) from None
        now = clock()
        found = await PostgresTasks(pool()).page(Filters(state, tenant, kind, overdue), now, after, limit + 1)
        page = found[:limit]
        last = page[-1] if page else None
        return {"items": [t.view(now) for t in page],
                "next_cursor": Cursor(last.due_at, last.tenant_id, last.application_id).encode()
                if last and len(found) > limit else None}

    @api.get("/fulfilments/{application_id}", summary="One fulfilment task")
    async def get_task(application_id: str, tenant: str | None = Query(None, max_length=128),
                       operator: Operator = Depends(auth)) -> dict[str, Any]:
        return (await one(application_id, tenant)).view(clock())

    @api.post("/fulfilments/{application_id}/fulfil", summary="Type in what Arcserve delivered")
    async def fulfil(request: Request, application_id: str, tenant: str | None = Query(None, max_length=128),
                     operator: Operator = Depends(auth)) -> dict[str, Any]:
        fulfiller(operator)
        delivered: fulfilment.Fulfilment = _body(fulfilment.Fulfilment, await read_json(request, "invalid_fulfilment"))

        async def checked(task: Task, tasks: PostgresTasks) -> tuple[BaseModel, str, None, list[bytes]]:
            errors = fulfilment.problems(task.needs, delivered)
            for index, key in enumerate(delivered.license_keys):
                if await tasks.used(keyring.fingerprints(key.license_key)):
                    errors.append({"field": f"license_keys.{index}.license_key",
                                   "problem": "already used for another license"})
            if errors:
                raise _invalid(errors)
            message = fulfilment.FulfilmentFulfilled(application_id=task.application_id,
                                                     **delivered.model_dump(exclude_none=True))
            return message, "fulfilled", None, [keyring.fingerprint(k.license_key) for k in delivered.license_keys]

        return await close(operator, application_id, tenant, checked)

    @api.post("/fulfilments/{application_id}/reject", summary="Arcserve refused: the tenant reads the reason")
    async def reject(request: Request, application_id: str, tenant: str | None = Query(None, max_length=128),
                     operator: Operator = Depends(auth)) -> dict[str, Any]:
        fulfiller(operator)
        refusal: fulfilment.Refusal = _body(fulfilment.Refusal, await read_json(request, "invalid_fulfilment"))

        async def refused(task: Task, _tasks: PostgresTasks) -> tuple[BaseModel, str, str, list[bytes]]:
            message = fulfilment.FulfilmentRejected(application_id=task.application_id, reason=refusal.reason)
            return message, "rejected", refusal.reason, []

        return await close(operator, application_id, tenant, refused)

    return api
