"""The provider's order system fulfils tasks over AMQP (docs/security.md, "Onboarding a
fulfilment system"; `ARCSERVE_FULFILMENT=external`). It needs Python 3.11 and aio-pika only.

    SYSTEM_AMQP_URL=amqp://order-system:PASSWORD@broker:5672/ \\
        python docs/examples/fulfil_tasks.py [--reject REASON] [--timeout 30]

The system's broker user is made by `python -m services.provisioning system USER --fulfiller`
(with its queue `USER.fulfilment`, bound to `fulfilment.requested` and
`fulfilment.revocation_requested`) and allowed by
`python -m services.tools.publishers allow-fulfilment USER`. The example takes the next task
from that queue and prints it, one JSON line (the CloudEvent `arcserve.fulfilment.requested`:
which tenant and application, whether a new contract's Arcserve order ID is needed, one
license per key, the due time). Then it reads what Arcserve delivered from stdin, one JSON
line:

    {"arcserve_order_id": "ARC-…", "license_keys": [{"license_id": "…", "license_key": "XXXXX-…"}]}

(`arcserve_order_id` only where the task needs one), and publishes it as
`arcserve.fulfilment.fulfilled`; with `--reject REASON` it publishes
`arcserve.fulfilment.rejected` instead, and the tenant reads REASON.

The queue also holds revocations (`arcserve.fulfilment.revocation_requested`: a tenant
cancelled; Arcserve is to revoke the keys of the licenses named, each with its key's last
group, and to cancel `arcserve_order_id` when it is given). Once that is done at Arcserve,
a line `revoked` on stdin publishes `arcserve.fulfilment.revocation_confirmed`. Until then the
license issuer announces it again, further and further apart. Each result is a
CloudEvent (persistent, `user_id` its user, `message_id` the event's id, mandatory, with
publisher confirms), and the task is acknowledged only once the broker confirmed the result:
a system that stops in between gets the task again (a second result for a task changes
nothing, so answering twice is harmless).

Exit status: 0 published; 1 no task within `--timeout`, the broker refused, or stdin held no
result; 2 usage error. ARCSERVE_TOPOLOGY_PREFIX: the exchange's prefix (none in production).
A result that does not fit its task (a key missing or already used, a malformed one, an order
ID where none is needed) is dead-lettered with the reason and changes nothing: the operator
reads it with `python -m services.tools.dlq list`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika


async def fulfil_next(url: str, prefix: str, answer: Any, timeout: float) -> dict[str, Any] | None:
    """The essence: take one task, publish its result, then acknowledge the task."""
    async with await aio_pika.connect(url) as connection:
        user = connection.url.user
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        tasks = await channel.get_queue(f"{user}.fulfilment", ensure=False)  # the operator made it with the user
        message = await _next(tasks, timeout)
        if message is None:
            return None
        task = json.loads(message.body)
        print(json.dumps(task, ensure_ascii=False), flush=True)
        result, data = answer(task)
        event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": f"urn:example:{user}",
                 "type": f"arcserve.fulfilment.{result}", "time": datetime.now(UTC).isoformat(),
                 "tenantid": task["tenantid"], "subject": task.get("subject"),
                 "data": {"application_id": task["data"]["application_id"], **data}}
        results = await channel.get_exchange(f"{prefix}arcserve.fulfilment", ensure=False)
        await results.publish(aio_pika.Message(
            json.dumps(event).encode(), content_type="application/cloudevents+json", message_id=event["id"],
            user_id=user, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), f"fulfilment.{result}", mandatory=True)
        await message.ack()  # only now: the result is the broker's
        return event


async def _next(queue: aio_pika.abc.AbstractQueue, timeout: float) -> aio_pika.abc.AbstractIncomingMessage | None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        message = await queue.get(fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.2)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reject", metavar="REASON", help="Arcserve refused: publish a rejection with this reason")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a task (default 30)")
    args = parser.parse_args()
    url = os.environ.get("SYSTEM_AMQP_URL")
    if not url:
        parser.error("set SYSTEM_AMQP_URL to the system's broker URL")

    def answer(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if event["type"] == "arcserve.fulfilment.revocation_requested":
            if sys.stdin.readline().strip() != "revoked":
                raise ValueError("not confirmed: a line `revoked` on stdin, once Arcserve revoked them")
            return "revocation_confirmed", {}
        if args.reject:
            return "rejected", {"reason": args.reject}
        line = sys.stdin.readline()
        if not line.strip():
            raise ValueError("no result on stdin: one JSON line, {\"license_keys\": [...]}")
        return "fulfilled", json.loads(line)

    try:
        event = asyncio.run(fulfil_next(url, os.environ.get("ARCSERVE_TOPOLOGY_PREFIX", ""), answer, args.timeout))
    except (aio_pika.exceptions.AMQPError, OSError, ValueError) as exc:
        print(f"failed: {exc!r}", file=sys.stderr)
        return 1
    if event is None:
        print(f"no task within {args.timeout:g} s", file=sys.stderr)
        return 1
    print(f"published {event['type']} for application {event['data']['application_id']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
