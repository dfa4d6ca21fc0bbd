"""What the back-office console owns: its queue of fulfilment tasks, the `backoffice` schema
(the tasks, what operators did with them, the fingerprints of the keys typed in; its inbox),
and the results it publishes on `arcserve.fulfilment` (as the deployment's own fulfiller:
the provisioning step allows its broker user). Beyond that it reads `tenancy.operators` (who
may use it) and appends audit records."""
from pathlib import Path

from services.backoffice.handlers import TASKS
from shared.boundary import Boundary
from shared.contracts import fulfilment
from shared.db.migrate import Schema

BOUNDARY = Boundary(
    name="backoffice",
    subscribers=(TASKS,),
    publishes=(fulfilment.FulfilmentFulfilled, fulfilment.FulfilmentRejected, fulfilment.RevocationConfirmed),
    schema=Schema("backoffice", Path(__file__).with_name("migrations"), messaging=True),
    audits=True,
    operators=True,
)
