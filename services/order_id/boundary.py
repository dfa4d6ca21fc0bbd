"""What the order-ID service owns: its queue, the `order_id` schema (one order ID per
contract, the simulator's requests, its inbox and outbox), and the order-ID events it
publishes."""
from pathlib import Path

from services.order_id.handlers import QUEUE
from shared.boundary import Boundary
from shared.contracts import events
from shared.db.migrate import Schema

BOUNDARY = Boundary(
    name="order-id",
    subscribers=(QUEUE,),
    publishes=(events.OrderIdIssued, events.OrderIdCancelled),
    schema=Schema("order_id", Path(__file__).with_name("migrations"), messaging=True),
)
