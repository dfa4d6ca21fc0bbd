"""What the two issuance workers share: their context and wiring. Each consumes accepted
applications, talks to the issuance backend, keeps its own small table, and announces the
result through its outbox."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg

from shared.config import Settings
from shared.contracts import routing
from shared.contracts.envelope import CloudEvent, new_event
from shared.issuance import IssuanceBackend, Simulator
from shared.messaging.outbox import Outgoing
from shared.messaging.topology import QueueSpec
from shared.runtime import Service


@dataclass(frozen=True)
class WorkerContext:
    service: Service
    backend: IssuanceBackend

    @property
    def pool(self) -> asyncpg.Pool:
        return self.service.pool

    @property
    def consumer(self) -> str:
        """Inbox and outbox name of this worker."""
        return self.service.name

    def follow_up(self, routing_key: str, cause: CloudEvent, data: dict[str, Any]) -> Outgoing:
        """An event on `arcserve.events` caused by `cause`, for the same tenant and contract."""
        event = new_event(
            type=routing.event_type(routing_key),
            source=f"urn:arcserve:{self.service.name}",
            data=data,
            tenant_id=cause.tenantid,
            subject=cause.subject,
        )
        return Outgoing(self.service.topology.events, routing_key, event)


Route = Callable[[WorkerContext, CloudEvent], Awaitable[None]]


def build_worker(name: str, settings: Settings, port: int, queue: QueueSpec, routes: Mapping[str, Route]) -> Service:
    service = Service(name, settings, port)
    ctx = WorkerContext(service, Simulator(settings.sim_new_delay_s, settings.sim_change_delay_s))
    service.consume(queue, {event_type: partial(route, ctx) for event_type, route in routes.items()})
    return service
