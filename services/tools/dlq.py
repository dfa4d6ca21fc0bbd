"""The operator command for dead letters (docs/architecture.md, "Public contract", §5): list them with their reasons,
show one, replay selected ones into the queue they were dead-lettered from, purge.

    python -m services.tools.dlq list [--queue NAME] [--limit N] [--json]
    python -m services.tools.dlq show MESSAGE_ID [--queue NAME]
    python -m services.tools.dlq replay (MESSAGE_ID... | --all) [--queue NAME]
    python -m services.tools.dlq purge (MESSAGE_ID... | --all) [--queue NAME]

What a dead letter says of itself is read only where the project or the broker wrote it
(shared/messaging/provenance.py): the `x-arcserve-*` headers of a copy its consumer (or a
replay) published, and the newest `x-death` entry, which the broker adds when it
dead-letters. A publisher's own headers never name a reason, an origin or a publisher. A
replay goes back to the consumer's own queue, never to an exchange, and is judged there as
its first publisher's message: a forged one is dead-lettered again.

Configured like the other operator commands (AMQP_URL, DATABASE_URL, ARCSERVE_TOPOLOGY_PREFIX);
every replay and purge leaves an audit record. `--queue` names a
consumer's queue: `arcserve.status.submissions`, `status.submissions`, or its dead-letter
queue. Exit status: 0 done; 1 a named message id was not found, a message could not be
replayed, or the broker is unreachable; 2 usage error.

Nothing is lost by looking: a dead-letter queue is read with basic.get without ack, up to
the depth it had when we started (so a replayed message that comes straight back is not
read twice), and every message not acted on is nacked back in the order it was read.
A quorum queue puts returned messages at its tail, so the whole queue is always read:
returning only its head would rotate it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from services.provisioning.boundaries import owner_of, queue_specs
from services.tools import operator_settings
from services.tools.config import ToolSettings
from shared import audit
from shared.messaging import nodes
from shared.messaging.consumer import (
    DELIVERY_COUNT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
)
from shared.messaging.provenance import (
    PUBLISHER_HEADER,
    Provenance,
    header_text,
    provenance,
    publishers_claims_dropped,
)
from shared.messaging.topology import QueueSpec, Topology
from shared.sealing import Keyring, KeyringError

# How often the message was replayed by this command (kept across dead-letterings).
REPLAYS_HEADER = "x-arcserve-replays"
# The broker's counts, dropped on replay with our bookkeeping: the copy starts afresh.
BROKER_COUNTS = ("x-delivery-count", "x-acquired-count")
PUBLISH_TIMEOUT_S = 10.0
BODY_PREVIEW = 2048
REASON_WIDTH = 80


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _plain(value: Any) -> Any:
    """Header values as JSON-friendly values (the broker's strings may come as bytes)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | bool | str) or value is None:
        return value
    return str(value)


@dataclass
class DeadLetter:
    spec: QueueSpec
    message: AbstractIncomingMessage
    reason: str
    original_exchange: str | None
    original_routing_key: str | None
    delivery_count: int | None
    replays: int
    origin: Provenance  # who published it first, as proven

    @property
    def message_id(self) -> str:
        return self.message.message_id or "-"

    def summary(self) -> dict[str, Any]:
        return {
            "queue": self.spec.name,
            "message_id": self.message.message_id,
            "reason": self.reason,
            "original_exchange": self.original_exchange,
            "original_routing_key": self.original_routing_key,
            "delivery_count": self.delivery_count,
            "replays": self.replays,
            "publisher": self.origin.publisher,
            "size": len(self.message.body),
        }


def describe(spec: QueueSpec, message: AbstractIncomingMessage, trusted: frozenset[str]) -> DeadLetter:
    """Read a dead letter: from a copy published by one of the `trusted` users (the queue's
    own consumer, a relay), our headers (`x-arcserve-*`) and the broker's `x-death`; from
    anyone else, only the newest `x-death` entry (the broker put it first when its delivery
    limit dead-lettered the message), whatever else the publisher put in its headers."""
    origin = provenance(message.user_id, message.headers, trusted)
    headers: dict[str, Any] = dict(message.headers or {})
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    if not origin.relayed:
        deaths = deaths[:1]
        headers = publishers_claims_dropped(headers)
    # x-death: the broker's dead-letterings, newest first. One other than a TTL expiry (which
    # only happens in the delayed-retry queues, and leads back to the consumer) came after our
    # consumer last touched the message: the delivery limit, and it is the reason.
    reason = header_text(headers, REASON_HEADER)
    newest = _text(deaths[0].get("reason")) if deaths else None
    if newest and (newest != "expired" or not reason):
        reason = newest
    reason = reason or "unknown"

    exchange = header_text(headers, ORIGINAL_EXCHANGE_HEADER)
    routing_key = header_text(headers, ORIGINAL_ROUTING_KEY_HEADER)
    if not routing_key and deaths:
        keys = deaths[-1].get("routing-keys") or []
        exchange, routing_key = _text(deaths[-1].get("exchange")), (_text(keys[0]) if keys else None)

    count = headers.get(DELIVERY_COUNT_HEADER)
    return DeadLetter(
        spec=spec,
        message=message,
        reason=reason,
        original_exchange=exchange,
        original_routing_key=routing_key or None,
        delivery_count=int(count) if count is not None else None,
        replays=int(headers.get(REPLAYS_HEADER) or 0),
        origin=origin,
    )


@asynccontextmanager
async def browse(connection: AbstractConnection, topology: Topology, spec: QueueSpec,
                 trusted: frozenset[str]) -> AsyncIterator[list[DeadLetter]]:
    """The dead letters of one consumer, held unacked; whatever the caller did not ack goes
    back on exit, in order. `trusted`: the relays, besides the queue's own consumer."""
    name = topology.dead_letter_queue(spec)
    channel = await connection.channel()
    taken: list[AbstractIncomingMessage] = []
    try:
        try:
            queue = await channel.get_queue(name)  # passive: never creates it
        except aio_pika.exceptions.ChannelNotFoundEntity:
            print(f"note: {name} does not exist (is ARCSERVE_TOPOLOGY_PREFIX right?)", file=sys.stderr)
        else:
            for _ in range(queue.declaration_result.message_count or 0):
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                taken.append(message)
        trusted = trusted | {topology.user(owner_of(spec))}
        yield [describe(spec, message, trusted) for message in taken]
    finally:
        if not channel.is_closed:
            for message in taken:
                if not message.processed:
                    await message.nack(requeue=True)
            await channel.close()


# ---- commands ---------------------------------------------------------------------------


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


async def cmd_list(connection: AbstractConnection, topology: Topology, specs: list[QueueSpec], args: argparse.Namespace) -> int:
    report = []
    for spec in specs:
        async with browse(connection, topology, spec, args.relays) as letters:
            report.append((spec, len(letters), [letter.summary() for letter in letters[: args.limit]]))
    if args.json:
        print(json.dumps({"queues": [
            {"queue": spec.name, "dead_letter_queue": topology.dead_letter_queue(spec), "count": count, "messages": shown}
            for spec, count, shown in report
        ]}, indent=2, ensure_ascii=False))
        return 0
    rows = [["QUEUE", "MESSAGE ID", "DELIVERIES", "SIZE", "ORIGINAL EXCHANGE", "ROUTING KEY", "REASON"]]
    for _, _, shown in report:
        rows += [[
            s["queue"], s["message_id"] or "-", str(s["delivery_count"] if s["delivery_count"] is not None else "-"),
            str(s["size"]), s["original_exchange"] if s["original_exchange"] is not None else "-",
            s["original_routing_key"] or "-", _short(s["reason"], REASON_WIDTH),
        ] for s in shown]
    if len(rows) > 1:
        _table(rows)
        print()
    counts = [["DEAD-LETTER QUEUE", "MESSAGES", "SHOWN"]]
    counts += [[topology.dead_letter_queue(spec), str(count), str(len(shown))] for spec, count, shown in report]
    _table(counts)
    return 0


async def _selected(
    connection: AbstractConnection,
    topology: Topology,
    specs: list[QueueSpec],
    args: argparse.Namespace,
    act: Callable[[list[DeadLetter]], Awaitable[bool]],
) -> int:
    """Browse every chosen queue, call `act(letters)` on the selected ones (while they are
    held; True means something failed), and report the named ids found nowhere. Returns the
    exit status."""
    wanted = set(args.message_ids)
    found: set[str] = set()
    status = 0
    for spec in specs:
        async with browse(connection, topology, spec, args.relays) as letters:
            chosen = [letter for letter in letters if args.all or letter.message_id in wanted]
            found.update(letter.message_id for letter in chosen)
            if chosen and await act(chosen):
                status = 1
    for missing in sorted(wanted - found):
        print(f"not found: no dead letter with message id {missing}", file=sys.stderr)
        status = 1
    return status


REDACTED = "<redacted: --reveal-keys shows it>"
KEY_FIELDS = ("license_key", "sealed_key")


def _redacted(value: Any, keyring: Keyring | None) -> Any:
    """License keys out of sight (docs/architecture.md, "Security"); with a keyring (--reveal-keys), opened."""
    if isinstance(value, list):
        return [_redacted(item, keyring) for item in value]
    if not isinstance(value, dict):
        return value
    shown = {}
    for name, member in value.items():
        if name in KEY_FIELDS and isinstance(member, str):
            shown[name] = REDACTED if keyring is None else _opened(member, value, keyring)
        else:
            shown[name] = _redacted(member, keyring)
    return shown


def _opened(sealed: str, holder: dict[str, Any], keyring: Keyring) -> str:
    try:
        return keyring.open(sealed, context=str(holder.get("license_id")))
    except KeyringError as exc:
        return f"<cannot open: {exc}>"


async def cmd_show(connection: AbstractConnection, topology: Topology, specs: list[QueueSpec], args: argparse.Namespace) -> int:
    keyring = None
    if args.reveal_keys:
        try:
            keyring = Keyring.parse(args.keyring)
        except KeyringError as exc:
            print(f"error: --reveal-keys needs the keyring: {exc}", file=sys.stderr)
            return 2
        print("note: showing license keys in clear, as asked (--reveal-keys)", file=sys.stderr)

    async def show(letters: list[DeadLetter]) -> bool:
        for letter in letters:
            message = letter.message
            if keyring is not None:
                await audit.record(args.audit, "dlq.reveal_keys", letter.message_id, queue=letter.spec.name)
            print(f"queue:            {letter.spec.name} ({topology.dead_letter_queue(letter.spec)})")
            print(f"message id:       {letter.message_id}")
            print(f"reason:           {letter.reason}")
            print(f"original:         exchange {letter.original_exchange!r}, routing key {letter.original_routing_key!r}")
            print(f"published by:     {letter.origin.publisher or '-'}")
            print(f"delivery count:   {letter.delivery_count if letter.delivery_count is not None else '-'}")
            print(f"replays:          {letter.replays}")
            print(f"content type:     {message.content_type or '-'}")
            print("headers:")
            for key, value in sorted((message.headers or {}).items()):
                print(f"  {key}: {json.dumps(_plain(value), ensure_ascii=False)}")
            print(f"body ({len(message.body)} bytes):")
            try:
                print(json.dumps(_redacted(json.loads(message.body), keyring), indent=2, ensure_ascii=False))
            except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
                more = f" … ({len(message.body) - BODY_PREVIEW} more bytes)" if len(message.body) > BODY_PREVIEW else ""
                print(repr(message.body[:BODY_PREVIEW]) + more)
            print()
        return False

    args.all = False
    return await _selected(connection, topology, specs, args, show)


def replay_message(letter: DeadLetter, *, user_id: str) -> aio_pika.Message:
    """The copy to publish, as the operator (a relay): it names the first publisher and the
    origin as `describe` proved them, and nothing else of the dead letter's bookkeeping."""
    source = letter.message
    headers = {k: v for k, v in publishers_claims_dropped(source.headers or {}).items() if k not in BROKER_COUNTS}
    headers[PUBLISHER_HEADER] = letter.origin.publisher or ""
    headers[REPLAYS_HEADER] = letter.replays + 1
    if letter.original_routing_key:  # for the next dead-lettering's listing
        headers[ORIGINAL_EXCHANGE_HEADER] = letter.original_exchange or ""
        headers[ORIGINAL_ROUTING_KEY_HEADER] = letter.original_routing_key
    return aio_pika.Message(
        source.body,
        headers=headers,
        message_id=source.message_id,
        content_type=source.content_type,
        content_encoding=source.content_encoding,
        correlation_id=source.correlation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        user_id=user_id,
    )


async def cmd_replay(connection: AbstractConnection, topology: Topology, specs: list[QueueSpec], args: argparse.Namespace) -> int:
    publisher: AbstractChannel | None = None
    totals = {"replayed": 0, "not replayed": 0}
    operator = args.broker_user  # the broker checks that it is this connection's

    async def replay(letters: list[DeadLetter]) -> bool:
        nonlocal publisher
        failed = False
        for letter in letters:
            # Back into the queue it was dead-lettered from (through the default exchange,
            # which only an administrator may write to): no other consumer gets it again, and
            # nothing the message says can send it anywhere else.
            queue = topology.queue(letter.spec)
            if publisher is None or publisher.is_closed:
                # Confirms: wait for the broker; returns: an unroutable message is an error.
                publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
            try:
                await publisher.default_exchange.publish(replay_message(letter, user_id=operator), queue,
                                                         mandatory=True, timeout=PUBLISH_TIMEOUT_S)
            except (TimeoutError, aio_pika.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError) as exc:
                print(f"failed {letter.message_id} in {letter.spec.name}: publish to queue {queue!r} "
                      f"was not confirmed ({exc!r}); it stays in the dead-letter queue")
                totals["not replayed"] += 1
                failed = True
                continue
            await letter.message.ack()  # only now: the broker has the copy
            await audit.record(args.audit, "dlq.replay", letter.message_id, queue=letter.spec.name,
                               reason=letter.reason, publisher=letter.origin.publisher or "")
            totals["replayed"] += 1
            print(f"replayed {letter.message_id} into {queue} as {letter.origin.publisher or 'nobody'}'s "
                  f"({_short(letter.reason, 60)})")
        return failed

    status = await _selected(connection, topology, specs, args, replay)
    print(f"{totals['replayed']} replayed, {totals['not replayed']} not replayed")
    return status


async def cmd_purge(connection: AbstractConnection, topology: Topology, specs: list[QueueSpec], args: argparse.Namespace) -> int:
    purged = 0

    async def purge(letters: list[DeadLetter]) -> bool:
        nonlocal purged
        for letter in letters:
            await letter.message.ack()
            await audit.record(args.audit, "dlq.purge", letter.message_id, queue=letter.spec.name, reason=letter.reason)
            purged += 1
        return False

    status = await _selected(connection, topology, specs, args, purge)
    print(f"purged {purged} dead letter{'s' if purged != 1 else ''}")
    return status


COMMANDS = {"list": cmd_list, "show": cmd_show, "replay": cmd_replay, "purge": cmd_purge}


# ---- command line -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.tools.dlq", description="List, show, replay and purge dead letters."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    queue_help = "one consumer's queue, e.g. arcserve.status.submissions or status.submissions (default: all)"

    listing = commands.add_parser("list", help="one line per dead letter, and per-queue counts")
    listing.add_argument("--queue", help=queue_help)
    listing.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N per queue")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    show = commands.add_parser("show", help="the headers and body of one dead letter")
    show.add_argument("message_ids", nargs=1, metavar="MESSAGE_ID")
    show.add_argument("--queue", help=queue_help)
    show.add_argument("--reveal-keys", action="store_true",
                      help="show license keys in clear (they are redacted otherwise; needs the keyring)")

    for name, text in (("replay", "republish to the original exchange and routing key, then remove"),
                       ("purge", "delete dead letters")):
        command = commands.add_parser(name, help=text)
        command.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
        command.add_argument("--all", action="store_true", help="every dead letter (of --queue, or of all queues)")
        command.add_argument("--queue", help=queue_help)
        if name == "replay":  # what every replay does now; still taken, so that older runbooks work
            command.add_argument("--to-queue", action="store_true", help=argparse.SUPPRESS)
    return parser


def _queues(parser: argparse.ArgumentParser, name: str | None, prefix: str) -> list[QueueSpec]:
    specs = queue_specs()
    if name is None:
        return specs
    bare = name.removeprefix(prefix) if prefix else name
    bare = bare.removesuffix(".dead-letter")
    for spec in specs:
        if bare in (spec.name, spec.name.removeprefix("arcserve.")):
            return [spec]
    parser.error(f"unknown queue {name!r}; one of: {', '.join(spec.name for spec in specs)}")


async def _run(args: argparse.Namespace, settings: ToolSettings, specs: list[QueueSpec]) -> int:
    # Replays, purges and keys shown in clear leave an audit record each (docs/architecture.md, "Security"):
    # no database, no change.
    audited = args.command in ("replay", "purge") or getattr(args, "reveal_keys", False)
    args.audit = await asyncpg.connect(settings.database_url) if audited else None
    try:
        connection = await nodes.connect(
            settings.amqp_url, client_properties={"connection_name": f"{settings.topology_prefix}dlq-tool"}
        )
        async with connection:
            return await COMMANDS[args.command](connection, Topology(settings.topology_prefix), specs, args)
    finally:
        if args.audit is not None:
            await args.audit.close()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("replay", "purge") and bool(args.message_ids) == args.all:
        parser.error(f"{args.command}: give message ids or --all (not both)")
    if getattr(args, "limit", None) is not None and args.limit < 0:
        parser.error("--limit must be 0 or more")
    settings = operator_settings()
    args.keyring = settings.license_key_keyring.get_secret_value()
    args.broker_user = nodes.user_of(settings.amqp_url)
    # Copies this operator replayed are relayed copies; so are those of each queue's consumer.
    args.relays = frozenset({args.broker_user})
    specs = _queues(parser, args.queue, settings.topology_prefix)
    try:
        return asyncio.run(_run(args, settings, specs))
    except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        print(f"error: cannot reach the broker (AMQP_URL) or the database (DATABASE_URL): {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        print(f"error: the database (DATABASE_URL) refused: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
