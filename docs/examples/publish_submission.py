"""Another system submits an application over AMQP and reads its outcome (docs/security.md,
"Onboarding a direct publisher"). It needs Python 3.11 and aio-pika only.

    SYSTEM_AMQP_URL=amqp://billing-system:PASSWORD@broker:5672/ \\
    SYSTEM_EVENTS_AMQP_URL=amqp://billing-system-events:PASSWORD@broker:5672/ \\
        python docs/examples/publish_submission.py TENANT [--product arcserve-udp-10] [--mode binary] [--timeout 30]

A system that submits and reads the outcome has two broker users (no user may do both: it
could bind the events into the submissions): its publisher (made by `python -m
services.provisioning system USER --publisher`, allowed for TENANT by `python -m
services.tools.publishers allow USER TENANT`) and its events reader (`system USER-events
--events-reader`). The example binds the reader's queue `USER-events.events` to the outcomes
of a `new` application, publishes one `new` application for TENANT as the publisher, as a
CloudEvent (persistent, `user_id` its user, `message_id` the event's id, mandatory, with
publisher confirms), and prints every event of that application, one JSON line each, until
it is completed or rejected.

`--mode` chooses the content mode of the CloudEvents RabbitMQ binding: `structured` (the
default: the whole event is the JSON body, content type `application/cloudevents+json`) or
`binary` (each attribute a `ce-` header, `datacontenttype` the content type, the body its
`data`). The services read both, and publish in the mode their deployment chose; the
example reads the events in either.

The queue receives every tenant's events. The example takes it for itself (an exclusive
consumer: it will not run beside the system's own) and removes each event it reads, showing
only its own application's.

Exit status: 0 completed; 1 rejected, refused by the broker, or no outcome in time (a
submission for a tenant the user is not allowed for is dead-lettered as
`unauthorized_publisher`: only the operator sees why, `python -m services.tools.dlq list`);
2 usage error. ARCSERVE_TOPOLOGY_PREFIX: the exchanges' prefix (none in production).
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
from urllib.parse import unquote, urlsplit

import aio_pika


async def submit_and_wait(url: str, events_url: str, prefix: str, event: dict[str, Any], mode: str) -> dict[str, Any]:
    """The essence: publish one submission, print its application's events, return the last."""
    async with await aio_pika.connect(url) as connection, await aio_pika.connect(events_url) as reader:
        user, kind, application_id = connection.url.user, event["data"]["kind"], event["data"]["application_id"]
        listening = await reader.channel()
        await listening.set_qos(prefetch_count=16)
        outcomes = await listening.get_queue(f"{reader.url.user}.events")  # the operator made it with the user
        for outcome in ("accepted", "rejected", "completed"):  # bound before publishing: none is missed
            await outcomes.bind(f"{prefix}arcserve.events", f"application.{outcome}.{kind}")
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        submissions = await channel.get_exchange(f"{prefix}arcserve.applications", ensure=False)
        async with outcomes.iterator(exclusive=True) as events:
            body, content_type, headers = encode(event, mode)
            await submissions.publish(aio_pika.Message(
                body, content_type=content_type, headers=headers, message_id=event["id"],
                user_id=user, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), kind, mandatory=True)
            async for message in events:
                await message.ack()
                seen = decode(message)
                if seen["data"].get("application_id") == application_id:
                    print(json.dumps(seen), flush=True)
                    if seen["type"] != f"arcserve.application.accepted.{kind}":
                        return seen  # completed or rejected
    raise ConnectionError("the broker closed the queue before the outcome came")


def encode(event: dict[str, Any], mode: str) -> tuple[bytes, str, dict[str, Any]]:
    """A CloudEvent as (body, content type, headers) in either content mode."""
    if mode == "structured":
        return json.dumps(event).encode(), "application/cloudevents+json", {}
    attributes = {name: value for name, value in event.items() if name not in ("data", "datacontenttype")}
    return (json.dumps(event["data"]).encode(), event["datacontenttype"],
            {f"ce-{name}": str(value) for name, value in attributes.items()})


def decode(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    """An event as one JSON object, whichever content mode it came in."""
    if (message.content_type or "").startswith("application/cloudevents"):
        return json.loads(message.body)
    attributes = {name[3:]: value.decode() if isinstance(value, bytes) else value
                  for name, value in (message.headers or {}).items() if name.lower().startswith("ce-")}
    return {**attributes, "datacontenttype": message.content_type, "data": json.loads(message.body)}


def submission(tenant: str, application: dict[str, Any], source: str) -> dict[str, Any]:
    """A submission's CloudEvent (docs/asyncapi.json). One id names the application and the
    message: the same submission sent again has no second effect."""
    application_id = str(uuid.uuid4())
    return {"specversion": "1.0", "id": application_id, "source": source,
            "type": f"arcserve.application.{application['kind']}", "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json", "tenantid": tenant,
            "data": {**application, "application_id": application_id}}


def new_application(product: str) -> dict[str, Any]:
    return {"kind": "new", "product": product,
            "contact": {"email": "ops@example.co.jp", "company_name": "Example K.K."},
            "licenses": [{"usage": "virtual_server", "license_type": "per_server", "quantity": 1}]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tenant", help="the tenant the submission acts for (CloudEvents `tenantid`)")
    parser.add_argument("--product", default="arcserve-udp-10", help="the product of the new contract")
    parser.add_argument("--mode", choices=("structured", "binary"), default="structured",
                        help="the CloudEvents content mode to publish in")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the outcome")
    args = parser.parse_args(argv)
    url, events_url = os.environ.get("SYSTEM_AMQP_URL", ""), os.environ.get("SYSTEM_EVENTS_AMQP_URL", "")
    if not url or not events_url:
        parser.error("set SYSTEM_AMQP_URL to the system's publisher's broker URL and SYSTEM_EVENTS_AMQP_URL to its "
                     "events reader's, amqp://USER:PASSWORD@HOST:5672/")
    prefix = os.environ.get("ARCSERVE_TOPOLOGY_PREFIX", "")
    event = submission(args.tenant, new_application(args.product), f"urn:system:{unquote(urlsplit(url).username or '')}")
    print(f"submitting application {event['id']} (new) for tenant {args.tenant}", file=sys.stderr)
    try:
        outcome = asyncio.run(asyncio.wait_for(submit_and_wait(url, events_url, prefix, event, args.mode), args.timeout))
    except TimeoutError:
        print(f"no outcome for application {event['id']} within {args.timeout:g} s: it may have been dead-lettered "
              f"(say, this user is not allowed for tenant {args.tenant}); the operator can see why "
              f"(python -m services.tools.dlq list)", file=sys.stderr)
        return 1
    except aio_pika.exceptions.ChannelNotFoundEntity as exc:
        print(f"refused: {exc}; is SYSTEM_EVENTS_AMQP_URL an events reader's (its queue USER.events)?", file=sys.stderr)
        return 1
    except (aio_pika.exceptions.AMQPConnectionError, OSError) as exc:
        print(f"cannot connect to the broker: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except aio_pika.exceptions.AMQPError as exc:  # a permission, a nack, an unroutable submission
        print(f"refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if outcome["type"].startswith("arcserve.application.rejected."):
        reason = outcome["data"]["reason"]
        print(f"rejected: {reason['code']}: {reason['message']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
