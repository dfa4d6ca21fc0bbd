"""What an operator does in the console (docs/architecture.md, "Fulfilment"), as plain
functions over its tables and the broker, for its JSON API (services/backoffice/api.py) and
its pages (services/backoffice/pages.py) alike: find tasks, fulfil one with what Arcserve
delivered, reject one with the reason the tenant reads; confirm a revocation at Arcserve.

A task is closed in one transaction that holds its row: the result is published with the
broker's confirm before the commit, so no key waits at rest in clear (not even in an outbox),
and a second operator waits for the first, then finds it closed. Should the commit fail after
the confirm, the task stays open here while the license issuer has the result; answering it
again is harmless there (the first result wins, and the result's id is the same). Every
fulfilment and rejection leaves an audit record naming the operator; never a key."""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError

from services.backoffice.cursor import Cursor
from services.backoffice.revocations import PostgresRevocations, Revocation
from services.backoffice.revocations import State as RevocationState
from services.backoffice.tasks import Filters, PostgresTasks, State, Task
from shared import audit, metrics
from shared.contracts import catalogue, fulfilment, limits
from shared.contracts.applications import describe
from shared.messaging.broker import Broker
from shared.sealing import Keyring
from shared.tenancy.operators import Operator

# A result's CloudEvents id: the same for every try at the same task, so a publish repeated
# after a failed commit is one message to the license issuer's inbox.
_RESULT_IDS = uuid.UUID("0b8f3c52-7d1e-4a6b-9c2f-5e4d3a2b1c0f")


class _OfATenant(Protocol):
    @property
    def tenant_id(self) -> str: ...


class _Listed(_OfATenant, Protocol):
    @property
    def application_id(self) -> UUID: ...


T = TypeVar("T", bound=_OfATenant)
P = TypeVar("P", bound=_Listed)


class Refused(Exception):
    """Why the console does not do what was asked: `code` and a message, `errors` by field."""

    def __init__(self, code: str, message: str, errors: list[dict[str, str]] | None = None):
        self.code, self.message, self.errors = code, message, errors
        super().__init__(message)


def _invalid(errors: list[dict[str, str]]) -> Refused:
    return Refused("invalid_fulfilment", "; ".join(f"{e['field']}: {e['problem']}" for e in errors), errors)


def fulfiller(operator: Operator) -> None:
    """Only a fulfiller fulfils or rejects (a viewer sees): Refused `forbidden`."""
    if not operator.may_fulfil:
        raise Refused("forbidden", f"operator {operator.operator_id} is a {operator.role.value}: "
                                   "only a fulfiller fulfils or rejects")


def read_body(model: type[fulfilment.Fulfilment] | type[fulfilment.Refusal], raw: Any) -> Any:
    """A fulfilment's or a refusal's body as typed; Refused naming each bad field."""
    if not isinstance(raw, dict):
        raise _invalid([{"field": "(body)", "problem": "must be a JSON object"}])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid([describe(e) for e in exc.errors()]) from None


@dataclass(frozen=True)
class Console:
    pool: Callable[[], asyncpg.Pool]
    broker: Broker
    keyring: Keyring  # fingerprints the keys typed in
    source: str  # CloudEvents `source` of the results
    clock: Callable[[], datetime]

    async def page(self, filters: Filters, after: Cursor | None, limit: int) -> tuple[list[Task], Cursor | None]:
        found = await PostgresTasks(self.pool()).page(filters, self.clock(), after, limit + 1)
        return _paged(found, limit, lambda task: task.due_at)

    async def task(self, application_id: str, tenant: str | None) -> Task:
        """The task of that application (of that tenant, when two chose the same id)."""
        return await _one("fulfilment task", application_id, tenant, PostgresTasks(self.pool()).find)

    async def fulfil(self, operator: Operator, application_id: str, tenant: str | None,
                     delivered: fulfilment.Fulfilment) -> Task:
        """Close the task with what Arcserve delivered, checked against it (Refused
        `invalid_fulfilment` naming each field, a key used before included)."""
        async def checked(task: Task, tasks: PostgresTasks) -> tuple[BaseModel, State, None, list[bytes]]:
            errors = fulfilment.problems(task.needs, delivered)
            for index, key in enumerate(delivered.license_keys):
                if await tasks.used(self.keyring.fingerprints(key.license_key)):
                    errors.append({"field": f"license_keys.{index}.license_key",
                                   "problem": "already used for another license"})
            if errors:
                raise _invalid(errors)
            message = fulfilment.FulfilmentFulfilled(application_id=task.application_id,
                                                     **delivered.model_dump(exclude_none=True))
            return message, "fulfilled", None, [self.keyring.fingerprint(k.license_key) for k in delivered.license_keys]

        return await self._close(operator, application_id, tenant, checked)

    async def reject(self, operator: Operator, application_id: str, tenant: str | None,
                     refusal: fulfilment.Refusal) -> Task:
        """Close the task as Arcserve refused it: the tenant reads `refusal.reason`."""
        async def refused(task: Task, _tasks: PostgresTasks) -> tuple[BaseModel, State, str, list[bytes]]:
            message = fulfilment.FulfilmentRejected(application_id=task.application_id, reason=refusal.reason)
            return message, "rejected", refusal.reason, []

        return await self._close(operator, application_id, tenant, refused)

    async def _close(self, operator: Operator, application_id: str, tenant: str | None,
                     result: Callable[[Task, PostgresTasks], Awaitable[tuple[BaseModel, State, str | None, list[bytes]]]]
                     ) -> Task:
        fulfiller(operator)
        task = await self.task(application_id, tenant)
        now = self.clock()
        async with self.pool().acquire() as conn, conn.transaction():
            tasks = PostgresTasks(conn)
            locked = await tasks.locked(task.tenant_id, task.application_id)
            assert locked is not None
            if locked.state != "open":
                raise Refused("not_open", f"the task of application {application_id} is {locked.state} already")
            message, state, reason, fingerprints = await result(locked, tasks)
            await self._publish(message, locked.tenant_id, locked.contract_id, f"{locked.tenant_id}/{locked.application_id}")
            await tasks.use(locked, fingerprints, now)
            closed = await tasks.close(locked, state, operator.operator_id, now, reason)
            await audit.record(conn, f"fulfilments.{'fulfil' if state == 'fulfilled' else 'reject'}",
                               str(locked.application_id), actor=f"operator {operator.operator_id} ({operator.name})",
                               tenant=locked.tenant_id, kind=locked.kind.value, keys=len(fingerprints))
        metrics.FULFILMENTS.labels("backoffice", "back-office").inc()
        return closed

    async def revocations(self, state: RevocationState | Literal["all"], tenant: str | None, after: Cursor | None,
                          limit: int) -> tuple[list[Revocation], Cursor | None]:
        found = await PostgresRevocations(self.pool()).page(state, tenant, after, limit + 1)
        return _paged(found, limit, lambda revocation: revocation.requested_at)

    async def revocation(self, application_id: str, tenant: str | None) -> Revocation:
        """The revocation of that cancellation (of that tenant, when two chose the same id)."""
        return await _one("revocation", application_id, tenant, PostgresRevocations(self.pool()).find)

    async def confirm(self, operator: Operator, application_id: str, tenant: str | None) -> Revocation:
        """Arcserve revoked the keys and cancelled the order ID the revocation names: tell the
        license issuer (`fulfilment.revocation_confirmed`), as a result is told."""
        fulfiller(operator)
        revocation = await self.revocation(application_id, tenant)
        async with self.pool().acquire() as conn, conn.transaction():
            revocations = PostgresRevocations(conn)
            locked = await revocations.locked(revocation.tenant_id, revocation.application_id)
            assert locked is not None
            if locked.state != "open":
                raise Refused("not_open", f"the revocation of application {application_id} is confirmed already")
            await self._publish(fulfilment.RevocationConfirmed(application_id=locked.application_id), locked.tenant_id,
                                locked.contract_id, f"revocation/{locked.tenant_id}/{locked.application_id}")
            confirmed = await revocations.confirm(locked, operator.operator_id, self.clock())
            await audit.record(conn, "revocations.confirm", str(locked.application_id),
                               actor=f"operator {operator.operator_id} ({operator.name})", tenant=locked.tenant_id,
                               keys=len(locked.licenses), order_id_cancelled=locked.arcserve_order_id is not None)
        return confirmed

    async def _publish(self, message: BaseModel, tenant_id: str, contract_id: UUID, what: str) -> None:
        """Publish a result with the broker's confirm (Refused `unavailable` without one). Its
        id is the same for every try at `what`."""
        entry, event = catalogue.to_event(message, source=self.source, tenant_id=tenant_id, subject=str(contract_id),
                                          id=str(uuid.uuid5(_RESULT_IDS, what)))
        try:
            await self.broker.publish_event(self.broker.topology.name(entry.exchange), entry.routing_key,
                                            event.to_json(), message_id=event.id, mandatory=True)
        except Exception:
            raise Refused("unavailable", "the broker did not confirm the result; nothing changed, retry later") from None


def _paged(found: list[P], limit: int, at: Callable[[P], datetime]) -> tuple[list[P], Cursor | None]:
    """A page of `limit` out of `found` (one more asked for), and where the next one starts."""
    shown = found[:limit]
    last = shown[-1] if shown and len(found) > limit else None
    return shown, Cursor(at(last), last.tenant_id, last.application_id) if last else None


async def _one(what: str, application_id: str, tenant: str | None,
               find: Callable[[UUID, str | None], Awaitable[list[T]]]) -> T:
    """The one `what` of that application (of that tenant, when two chose the same id)."""
    try:
        ident = UUID(application_id)
    except ValueError:
        raise Refused("not_found", f"no {what} for application {application_id}") from None
    if tenant is not None and limits.has_control_characters(tenant):  # no tenant's name holds one
        raise Refused("not_found", f"no {what} for application {application_id}")
    found = await find(ident, tenant)
    if not found:
        raise Refused("not_found", f"no {what} for application {application_id}")
    if len(found) > 1:
        tenants = ", ".join(sorted(one.tenant_id for one in found))
        raise Refused("ambiguous", f"tenants {tenants} each have an application {application_id}: say which with ?tenant=")
    return found[0]
