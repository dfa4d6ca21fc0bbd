"""What one service owns and what it needs beyond (docs/architecture.md, "Boundaries"): its
subscriptions, the messages it publishes, its schema, and the other schemas it reads. The
provisioning step turns the boundaries of all services into broker definitions (users,
permissions, queues, bindings) and database roles, grants and migrations; the service
itself only checks at start that its part is there."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.contracts import catalogue
from shared.db.migrate import Schema
from shared.messaging.subscriber import Subscriber


@dataclass(frozen=True)
class Boundary:
    name: str  # e.g. "license-issuer": its broker user, its role, its log and metrics name
    subscribers: tuple[Subscriber[Any], ...] = ()
    publishes: tuple[type[BaseModel], ...] = ()  # catalogue models
    schema: Schema | None = None  # the schema it owns (its inbox and outbox too, if it consumes)
    reads: tuple[Schema, ...] = ()  # other schemas it may read (SELECT only)
    # It authenticates tenants itself, so its submissions act for any tenant (intake).
    acts_for_every_tenant: bool = False
    # It appends to audit.records (INSERT only): the sources it throttles for wrong API keys.
    audits: bool = False
    # It reads tenancy.operators (SELECT only): who may use the back-office console.
    operators: bool = False

    @property
    def env_prefix(self) -> str:
        """Of its own settings: `LICENSE_ISSUER_AMQP_URL`, `LICENSE_ISSUER_PORT`, ..."""
        return self.name.upper().replace("-", "_")

    @property
    def source(self) -> str:
        """CloudEvents `source` of what it publishes."""
        return f"urn:arcserve:{self.name}"

    @property
    def schemas(self) -> tuple[Schema, ...]:
        """Every schema it needs at its version before it can work."""
        return ((self.schema,) if self.schema else ()) + self.reads

    @property
    def publish_exchanges(self) -> list[str]:
        """The public exchanges it writes to (without the topology prefix)."""
        return sorted({entry.exchange for entry in catalogue.entries(*self.publishes)})
