"""How an accepted application's license keys are obtained (docs/architecture.md,
"Fulfilment"): the acceptance records a request, one per application
(services/license_issuer/handlers.py), and is done; a result completes it later: each key
sealed and stored (the first one stored for a license wins, a second result changes
nothing), then announced, which licenses on `arcserve.events` and their sealed keys on
their own route for the status service alone.

Where results come from is the deployment's choice (`ARCSERVE_FULFILMENT`):
- `simulator`: `ARCSERVE_SIM_NEW_DELAY_S` after a new application's request,
  `ARCSERVE_SIM_CHANGE_DELAY_S` after an addition's or a VM-count increase's, a job of the
  service answers it with well-formed random keys when its stored time comes
  (shared/due.py), or the unit of work that asks when it is due as it is asked (a delay of
  0); the order-ID service's own simulator answers the order ID;
- `back-office` and `external`: the request is announced on `arcserve.fulfilment` as a task
  (`fulfilment.requested`), and its result comes back there, from the back-office console or
  another allowed system (`settle`): checked against the task, it completes it, the order ID
  passed on to the order-ID service; or Arcserve refused, and the application is refused.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel

from services.license_issuer.keys import IssuedKey, Keys, Request
from shared import metrics
from shared.contracts import events, fulfilment
from shared.contracts.applications import Kind
from shared.contracts.envelope import PoisonMessage
from shared.db.pool import Connection, Queryable
from shared.due import Due, Pass, about
from shared.issuance import simulated_license_key
from shared.sealing import Keyring

log = logging.getLogger(__name__)
BATCH = 50  # requests answered per transaction


def announced(request: Request, stored: Mapping[UUID, str]) -> tuple[events.LicenseIssued, events.LicenseKeys]:
    """What a fulfilled request announces: its licenses, active, and their stored keys, sealed."""
    return (
        events.LicenseIssued(application_id=request.application_id, contract_id=request.contract_id,
                             licenses=[lic.model_copy(update={"status": "active"}) for lic in request.licenses]),
        events.LicenseKeys(application_id=request.application_id, contract_id=request.contract_id,
                           keys=[events.SealedKey(license_id=lic.license_id, sealed_key=stored[lic.license_id])
                                 for lic in request.licenses]),
    )


async def fulfil(keys: Keys, keyring: Keyring, request: Request, obtained: Mapping[UUID, str],
                 now: datetime) -> tuple[events.LicenseIssued, events.LicenseKeys]:
    """Complete `request` with the keys `obtained` (in clear, by license): sealed at rest, the
    key stored first for a license stays, and is what is announced."""
    stored = await keys.keep([IssuedKey(license_id, request.contract_id, request.application_id,
                                        keyring.seal(key, context=str(license_id)), now, keyring.fingerprint(key))
                              for license_id, key in obtained.items()])
    await keys.fulfilled(request, now)
    return announced(request, stored)


def task(request: Request) -> fulfilment.FulfilmentRequested:
    """The request as the back office and other systems see it (`fulfilment.requested`)."""
    return fulfilment.FulfilmentRequested(
        application_id=request.application_id, tenant=request.tenant_id, contract_id=request.contract_id,
        kind=request.kind, submitted_at=request.since, due_at=request.due_at,
        needs=fulfilment.Needs(arcserve_order_id=request.needs_order_id, licenses=[
            fulfilment.NeededLicense(license_id=lic.license_id, usage=lic.usage, license_type=lic.license_type,
                                     vm_count=lic.vm_count) for lic in request.licenses]),
    )


class InvalidResult(PoisonMessage):
    """A result that does not fulfil its task: dead-lettered with what is wrong, by field (never
    a key), and nothing changed."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("invalid_result: " + "; ".join(f"{e['field']}: {e['problem']}" for e in errors))


async def settle(keys: Keys, keyring: Keyring, request: Request,
                 result: fulfilment.FulfilmentFulfilled | fulfilment.FulfilmentRejected, now: datetime) -> list[BaseModel]:
    """Close the open `request` with a result from the back office or another system: what to
    announce. A refusal refuses the application; keys must fit the task (InvalidResult)."""
    if isinstance(result, fulfilment.FulfilmentRejected):
        await keys.refused(request, result.reason, now)
        return [events.LicenseRefused(application_id=request.application_id, contract_id=request.contract_id,
                                      kind=request.kind, licenses=list(request.licenses), reason=result.reason)]
    errors = fulfilment.problems(task(request).needs, result)
    for index, delivered in enumerate(result.license_keys):
        if await keys.used(keyring.fingerprints(delivered.license_key)):
            errors.append({"field": f"license_keys.{index}.license_key", "problem": "already used for another license"})
    if errors:
        raise InvalidResult(errors)
    announced_: list[BaseModel] = list(await fulfil(
        keys, keyring, request, {k.license_id: k.license_key for k in result.license_keys}, now))
    if result.arcserve_order_id is not None:
        announced_.append(events.OrderIdObtained(application_id=request.application_id, contract_id=request.contract_id,
                                                 arcserve_order_id=result.arcserve_order_id))
    return announced_


class Work(Protocol):
    """A unit of work of the service's own (shared/runtime.py's Transaction)."""

    conn: Connection

    def publish(self, message: BaseModel, *, tenant_id: str, subject: str | None = None) -> None: ...

    def after_commit(self, effect: Callable[[], None]) -> None: ...


class Simulator:
    """Arcserve, simulated: each request answered after its kind's delay, with well-formed
    random keys."""

    def __init__(self, new_delay_s: float = 0.0, change_delay_s: float = 0.0, *, keyring: Keyring | None = None,
                 keys: Callable[[Queryable], Keys] | None = None):
        self.new_delay = timedelta(seconds=new_delay_s)
        self.change_delay = timedelta(seconds=change_delay_s)
        self.keyring = keyring
        self.keys = keys
        self.job: Due[Work] = Due("the license-key simulator", self._pass)

    def answers_at(self, kind: Kind, requested_at: datetime) -> datetime:
        return requested_at + (self.new_delay if kind is Kind.NEW else self.change_delay)

    def wake(self) -> None:
        self.job.wake()

    def due_at_once(self, request: Request, now: datetime) -> bool:
        """Whether the request is due as it is made (a delay of 0): answered in the unit of
        work that asks, with no pass of the job."""
        return request.simulate_at is not None and request.simulate_at <= now

    async def answer(self, keys: Keys, keyring: Keyring, request: Request, now: datetime,
                     after_commit: Callable[[Callable[[], None]], None]) -> tuple[events.LicenseIssued, events.LicenseKeys]:
        """Answer one request with well-formed random keys: what to announce."""
        obtained = {lic.license_id: simulated_license_key() for lic in request.licenses}
        announced_ = await fulfil(keys, keyring, request, obtained, now)
        after_commit(functools.partial(_obtained, request, _fields(request)))
        return announced_

    async def answer_due(self, keys: Keys, keyring: Keyring, now: datetime, work: Work) -> Pass:
        """Answer the requests due by `now` (one batch), each in the trace of its acceptance."""
        due = await keys.to_simulate(now, BATCH)
        for request in due:
            with about(request.traceparent, **_fields(request)):
                for message in await self.answer(keys, keyring, request, now, work.after_commit):
                    work.publish(message, tenant_id=request.tenant_id, subject=str(request.contract_id))
        full = len(due) == BATCH
        return Pass(len(due), None if full else await keys.next_simulation(), full)

    async def _pass(self, work: Work, now: datetime) -> Pass:
        assert self.keys is not None and self.keyring is not None, "the simulator runs as a job with the service's tables"
        return await self.answer_due(self.keys(work.conn), self.keyring, now, work)


def _fields(request: Request) -> dict[str, Any]:
    return {"tenant_id": request.tenant_id, "contract_id": str(request.contract_id),
            "application_id": str(request.application_id)}


def _obtained(request: Request, fields: dict[str, Any]) -> None:
    metrics.FULFILMENTS.labels("license-issuer", "simulator").inc()
    with about(request.traceparent, **fields):
        log.info("obtained %d license keys (%s, simulator)", len(request.licenses), request.kind.value)
