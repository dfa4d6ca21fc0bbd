"""The broker side: RabbitMQ definitions (users, permissions, exchanges, queues, bindings)
made from the services' boundaries, and applied through the management HTTP API. Compose
loads the same document at the broker's boot (deploy/rabbitmq/definitions.json).

Each service's user may only (docs/architecture.md, "Least privilege"):
- read (consume) its own queues;
- write (publish) to the public exchanges it publishes to, and there only under the routing
  keys of its own messages (topic permissions), and to its own queues' retry and
  dead-letter exchanges (never to the default exchange, which reaches every queue);
- configure nothing: the topology is declared here, once.

Every queue is bounded by a policy (queue arguments are fixed once a queue exists, a policy
is not, so an existing deployment takes a new bound at its next provisioning).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from services.provisioning.deployment import Deployment, Passwords
from shared.boundary import Boundary
from shared.contracts import catalogue, routing
from shared.messaging import nodes
from shared.messaging.topology import QueueSpec, QuorumQueueArguments, Topology

HASHING = "rabbit_password_hashing_sha256"
# Past it a publish is refused (reject-publish: intake answers 503, a relay or a consumer keeps
# the message and tries again), never a message dropped, and a backlog that nobody consumes,
# dead letters included, cannot fill the brokers' disks. Alerts fire at 80 % of it.
MAX_QUEUE_LENGTH = 100_000
# Reading dead letters (`dlq list`) returns them to their queue, which counts as a delivery;
# RabbitMQ 4 drops a quorum queue's message past 20 of them by default. So many that no one
# reaches it (RabbitMQ 4's "no limit", -1, is refused by 3.x, Debian's broker).
DEAD_LETTER_READS = 1_000_000


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's salted SHA-256 password hash (its definitions' `password_hash`)."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def permissions(topology: Topology, boundary: Boundary) -> dict[str, str]:
    specs = [subscriber.spec for subscriber in boundary.subscribers]
    write = [topology.name(exchange) for exchange in boundary.publish_exchanges]
    write += [name for spec in specs for name in topology.exchanges_of(spec)]
    return {
        "configure": "^$",
        "write": topology.pattern(write),
        "read": topology.pattern([topology.queue(spec) for spec in specs]),
    }


def topic_permissions(topology: Topology, boundary: Boundary) -> list[dict[str, str]]:
    """Per public exchange it publishes to: only the routing keys of the messages it owns,
    so no service can pass one of its messages off as another's (say, an acceptance)."""
    keys: dict[str, list[str]] = {}
    for entry in catalogue.entries(*boundary.publishes):
        keys.setdefault(entry.exchange, []).append(entry.routing_key)
    return [{"exchange": topology.name(exchange), "write": "^(" + "|".join(re.escape(k) for k in sorted(set(routing_keys))) + ")$",
             "read": ".*"} for exchange, routing_keys in sorted(keys.items())]


def policies(topology: Topology, specs: list[QueueSpec], vhost: str) -> list[dict[str, Any]]:
    """One policy per kind of queue, each matching exactly the deployment's queues of that kind."""
    limits = {"max-length": MAX_QUEUE_LENGTH, "overflow": "reject-publish"}
    kinds = {
        # The lower of policy and argument applies, so this can only tighten the argument.
        "consumer-queues": ([topology.queue(s) for s in specs],
                            {**limits, "delivery-limit": QuorumQueueArguments("").delivery_limit}),
        "retry-queues": ([topology.retry_queue(s, d) for s in specs for d in topology.retry_delays_s], limits),
        # A full dead-letter queue refuses the copy a consumer sends it: the consumer keeps the
        # message in its queue and tries again, and the broker's own dead-lettering (at least
        # once) waits for room; nothing is dropped.
        "dead-letter-queues": ([topology.dead_letter_queue(s) for s in specs],
                               {**limits, "delivery-limit": DEAD_LETTER_READS}),
    }
    return [{"name": topology.name(f"arcserve.{kind}"), "vhost": vhost, "pattern": topology.pattern(queues),
             "apply-to": "queues", "priority": 1, "definition": definition}
            for kind, (queues, definition) in kinds.items()]


def definitions(
    deployment: Deployment,
    boundaries: tuple[Boundary, ...],
    passwords: Passwords,
    *,
    admin: tuple[str, str] | None = None,
    deterministic: bool = False,
) -> dict[str, Any]:
    """The whole broker side of one deployment. `admin`: an administrator to create too (a
    broker that loads definitions at boot creates no default user). `deterministic`: salts
    derived from the user names, so the committed file does not change on every run."""
    topology, vhost = deployment.topology, deployment.vhost

    def salt(user: str) -> bytes | None:
        return hashlib.sha256(f"salt:{user}".encode()).digest()[:4] if deterministic else None

    users = [{"name": deployment.user(b), "password_hash": password_hash(passwords[b.name], salt(deployment.user(b))),
              "hashing_algorithm": HASHING, "tags": []} for b in boundaries]
    grants = [{"user": deployment.user(b), "vhost": vhost, **permissions(topology, b)} for b in boundaries]
    topic_grants = [{"user": deployment.user(b), "vhost": vhost, **grant}
                    for b in boundaries for grant in topic_permissions(topology, b)]
    if admin is not None:
        users.append({"name": admin[0], "password_hash": password_hash(admin[1], salt(admin[0])),
                      "hashing_algorithm": HASHING, "tags": ["administrator"]})
        grants.append({"user": admin[0], "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"})
    specs = [subscriber.spec for b in boundaries for subscriber in b.subscribers]
    exchanges, queues, bindings = topology.declarations(specs)
    return {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": grants,
        "topic_permissions": topic_grants,
        "exchanges": [{"name": e.name, "vhost": vhost, "type": e.type, "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}} for e in exchanges],
        "queues": [{"name": q.name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": q.arguments}
                   for q in queues],
        "bindings": [{"source": b.exchange, "vhost": vhost, "destination": b.queue, "destination_type": "queue",
                      "routing_key": b.routing_key, "arguments": {}} for b in bindings],
        "policies": policies(topology, specs, vhost),
    }


# Another system's queue of events (docs/security.md, "Onboarding a direct publisher"): bounded, and it
# drops its oldest events when full rather than refusing new ones, because a refused event
# would nack the services' own publishes and stall their outboxes behind a slow reader.
EVENTS_QUEUE_MAX_LENGTH = 100_000


def events_queue(user: str) -> str:
    """The queue another system reads events from: named under its user name."""
    return f"{user}.events"


def direct_publisher(topology: Topology, user: str, password: str, vhost: str = "/") -> dict[str, Any]:
    """Definitions of another system's broker user (docs/security.md, "Onboarding a direct
    publisher"): it may write submissions to `arcserve.applications` and nothing else; which
    tenants it acts for is the gate's to check (`python -m services.tools.publishers`). It
    never reads events too: see `combines_publishing_and_reading`."""
    return _other_system(topology, user, password, vhost, publishes=True, reads_events=False)


def events_reader(topology: Topology, user: str, password: str, vhost: str = "/") -> dict[str, Any]:
    """Definitions of another system's broker user that reads `arcserve.events` (every
    tenant's: the exchange holds nothing secret) through one queue of its own,
    `events_queue(user)`, made here: it may bind that queue to the events' routing keys
    (no wildcard), consume from it, and nothing else."""
    return _other_system(topology, user, password, vhost, publishes=False, reads_events=True)


def _other_system(topology: Topology, user: str, password: str, vhost: str, *, publishes: bool,
                  reads_events: bool) -> dict[str, Any]:
    # It configures nothing, not even a queue of its own: a user that may declare a queue
    # and also write to arcserve.applications could give that queue arcserve.applications as
    # its dead-letter exchange (or bind an exchange of its own to it), and so re-route
    # whatever it reads, the services' own events with their `user_id`, into the submissions.
    write: list[str] = []
    read: list[str] = []
    topics: list[dict[str, str]] = []
    queues: list[dict[str, Any]] = []
    if publishes:
        kinds = "|".join(re.escape(kind.value) for kind in catalogue.Kind)
        write.append(topology.applications)
        topics.append({"exchange": topology.applications, "write": f"^({kinds})$", "read": "^$"})
    if reads_events:
        queue = events_queue(user)
        write.append(queue)  # binding it
        read += [topology.events, queue]
        topics.append({"exchange": topology.events, "write": "^$", "read": topology.pattern(event_routing_keys())})
        queues.append({"name": queue, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {
            "x-queue-type": "quorum", "x-max-length": EVENTS_QUEUE_MAX_LENGTH, "x-overflow": "drop-head"}})
    return {
        "users": [{"name": user, "password_hash": password_hash(password), "hashing_algorithm": HASHING, "tags": []}],
        "permissions": [{"user": user, "vhost": vhost, "configure": "^$", "write": topology.pattern(write),
                         "read": topology.pattern(read)}],
        "topic_permissions": [{"user": user, "vhost": vhost, **topic} for topic in topics],
        "queues": queues,
    }


def fulfilment_queue(user: str) -> str:
    """The queue a system allowed for fulfilment takes its tasks from: named under its user name."""
    return f"{user}.fulfilment"


def fulfiller(topology: Topology, user: str, password: str, vhost: str = "/") -> dict[str, Any]:
    """Definitions of another system's broker user that fulfils tasks (docs/security.md,
    "Onboarding a fulfilment system"): it reads tasks and revocations (`fulfilment.requested`,
    `fulfilment.revocation_requested`) from one queue of its own, `fulfilment_queue(user)`,
    bound here, and writes results to `arcserve.fulfilment` under their routing keys; whether they count is the license issuer's to check
    (`python -m services.tools.publishers allow-fulfilment`). It reads no exchange, so it can
    bind nothing anywhere. Its queue refuses (never drops) past its bound: a task is never lost,
    and an alert fires long before."""
    exchange = topology.name(routing.FULFILMENT_EXCHANGE)
    queue = fulfilment_queue(user)
    results = "|".join(re.escape(key) for key in (routing.FULFILMENT_FULFILLED, routing.FULFILMENT_REJECTED,
                                                   routing.REVOCATION_CONFIRMED))
    return {
        "users": [{"name": user, "password_hash": password_hash(password), "hashing_algorithm": HASHING, "tags": []}],
        "permissions": [{"user": user, "vhost": vhost, "configure": "^$", "write": topology.pattern([exchange]),
                         "read": topology.pattern([queue])}],
        "topic_permissions": [{"user": user, "vhost": vhost, "exchange": exchange, "write": f"^({results})$",
                               "read": "^$"}],
        "queues": [{"name": queue, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {
            "x-queue-type": "quorum", "x-max-length": MAX_QUEUE_LENGTH, "x-overflow": "reject-publish"}}],
        "bindings": [{"source": exchange, "vhost": vhost, "destination": queue, "destination_type": "queue",
                      "routing_key": key, "arguments": {}}
                     for key in (routing.FULFILMENT_REQUESTED, routing.REVOCATION_REQUESTED)],
    }


def combines_publishing_and_reading(topology: Topology, permissions: list[dict[str, Any]]) -> bool:
    """Whether a user with these permissions may both write to `arcserve.applications` and
    read `arcserve.events`: RabbitMQ lets such a user bind the one exchange into the other
    (exchange.bind needs only write on the destination and read on the source), copying every
    tenant's events into the gate, a binding that outlives the user. So a system that submits
    and reads outcomes gets two users."""
    writes = any(re.search(p.get("write") or "^$", topology.applications) for p in permissions)
    reads = any(re.search(p.get("read") or "^$", topology.events) for p in permissions)
    return writes and reads


def event_routing_keys() -> list[str]:
    """Every routing key of `arcserve.events` (docs/asyncapi.json)."""
    return [entry.routing_key for entry in catalogue.CATALOGUE if entry.exchange == routing.EVENTS_EXCHANGE]


class ManagementError(RuntimeError):
    """The management API refused a call (its answer says why)."""


class ManagementUnavailable(ManagementError):
    """The management API does not answer."""


@dataclass(frozen=True)
class Management:
    """The RabbitMQ management HTTP API, reached with the administrator's credentials: at
    RABBITMQ_MANAGEMENT_URL, or at port 15672 of the AMQP URL's host."""

    url: str
    user: str
    password: str

    @classmethod
    def for_amqp_url(cls, amqp_url: str, management_url: str = "") -> Management:
        """With the AMQP URL's credentials, at `management_url` (default: port 15672 of its host)."""
        parts = urlsplit(nodes.split(amqp_url)[0])
        url = management_url or f"http://{parts.hostname or '127.0.0.1'}:15672"
        return cls(url.rstrip("/"), unquote(parts.username or "guest"), unquote(parts.password or "guest"))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": "Basic " + base64.b64encode(
                f"{self.user}:{self.password}".encode()).decode()},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            if method == "DELETE" and error.code == 404:
                return None  # already gone
            raise ManagementError(f"RabbitMQ management API: {method} /api/{path} answered {error.code}: "
                               f"{error.read(500).decode(errors='replace')}") from None
        except OSError as error:
            raise ManagementUnavailable(
                f"the RabbitMQ management API at {self.url} does not answer ({error}); enable it with "
                "`rabbitmq-plugins enable rabbitmq_management`, or set RABBITMQ_MANAGEMENT_URL"
            ) from None
        return json.loads(raw) if raw else None

    # Plain blocking calls: a few small requests, made by one-shot steps and tests (and at
    # interpreter exit, where no thread pool is left to hand them to).
    def import_definitions(self, document: dict[str, Any]) -> None:
        self._call("POST", "definitions", document)

    def delete_users(self, names: list[str]) -> None:
        for name in names:
            self._call("DELETE", f"users/{quote(name, safe='')}")

    def put_policy(self, vhost: str, name: str, policy: dict[str, Any]) -> None:
        self._call("PUT", f"policies/{quote(vhost, safe='')}/{quote(name, safe='')}", policy)

    def delete_policy(self, vhost: str, name: str) -> None:
        self._call("DELETE", f"policies/{quote(vhost, safe='')}/{quote(name, safe='')}")

    def policies(self) -> list[tuple[str, str]]:
        """Every policy, as (vhost, name)."""
        return [(policy["vhost"], policy["name"]) for policy in self._call("GET", "policies")]

    def queue(self, vhost: str, name: str) -> dict[str, Any]:
        """What the broker says of a queue (`messages`: ready and unacknowledged)."""
        return dict(self._call("GET", f"queues/{quote(vhost, safe='')}/{quote(name, safe='')}"))

    def permissions_of(self, user: str) -> list[dict[str, Any]]:
        """The user's permissions in every vhost ([] for no such user)."""
        try:
            return list(self._call("GET", f"users/{quote(user, safe='')}/permissions"))
        except ManagementError as error:
            if " answered 404" in str(error):
                return []
            raise

    def users(self) -> list[str]:
        return [user["name"] for user in self._call("GET", "users")]


def is_fulfiller_grant(topology: Topology, user: str, permission: dict[str, Any]) -> bool:
    """Whether a user's permission is exactly what `fulfiller` grants (making it again is fine)."""
    granted = fulfiller(topology, user, "")["permissions"][0]
    return all(permission.get(key) == granted[key] for key in ("configure", "write", "read"))
