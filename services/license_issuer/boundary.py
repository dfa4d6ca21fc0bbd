"""What the license issuer owns: its queues (acceptances; fulfilment results), the
`license_issuer` schema (its fulfilment tasks, the keys it obtained, sealed, the revocations
Arcserve is to confirm, its inbox and outbox), and what it publishes: the license events (the
keys themselves only on `arcserve.license-keys`, for the status service), its tasks and
revocations on `arcserve.fulfilment`, and the
order IDs results bring on `arcserve.fulfilled-order-ids`, for the order-ID service. Who may publish
results it reads in `tenancy.fulfillers`, as every consumer reads who is who on the broker."""
from pathlib import Path

from services.license_issuer.handlers import QUEUE, RESULTS
from shared.boundary import Boundary
from shared.contracts import events, fulfilment
from shared.db.migrate import Schema

BOUNDARY = Boundary(
    name="license-issuer",
    subscribers=(QUEUE, RESULTS),
    publishes=(events.LicenseIssued, events.LicenseKeys, events.LicenseRevoked, events.LicenseRefused,
               events.OrderIdObtained, fulfilment.FulfilmentRequested, fulfilment.RevocationRequested),
    schema=Schema("license_issuer", Path(__file__).with_name("migrations"), messaging=True),
)
