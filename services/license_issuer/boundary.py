"""What the license issuer owns: its queue, the `license_issuer` schema (the keys it
obtained, sealed, its inbox and outbox), and the license events it publishes (the keys
themselves only on `arcserve.license-keys`, for the status service)."""
from pathlib import Path

from services.license_issuer.handlers import QUEUE
from shared.boundary import Boundary
from shared.contracts import events
from shared.db.migrate import Schema

BOUNDARY = Boundary(
    name="license-issuer",
    subscribers=(QUEUE,),
    publishes=(events.LicenseIssued, events.LicenseKeys, events.LicenseRevoked),
    schema=Schema("license_issuer", Path(__file__).with_name("migrations"), messaging=True),
)
