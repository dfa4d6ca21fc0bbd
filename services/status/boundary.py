"""What the status service owns: the submissions and results queues, the `status` schema
(contracts, licenses, applications, its inbox and outbox), the application and contract
events it publishes; beyond that it reads `tenancy` (docs/architecture.md)."""
from pathlib import Path

from services.status.handlers import RESULTS, SUBMISSIONS
from shared import tenancy
from shared.boundary import Boundary
from shared.contracts import events
from shared.db.migrate import Schema

BOUNDARY = Boundary(
    name="status",
    subscribers=(SUBMISSIONS, RESULTS),
    publishes=(*events.ACCEPTED, events.ApplicationRejected, events.ApplicationCompleted, events.ContractStatusChanged),
    schema=Schema("status", Path(__file__).with_name("migrations"), messaging=True),
    reads=(tenancy.SCHEMA,),
    audits=True,
)
