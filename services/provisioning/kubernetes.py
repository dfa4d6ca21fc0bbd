"""The broker side as custom resources of the RabbitMQ Messaging Topology Operator, for a
deployment on Kubernetes (deploy/kubernetes/, docs/deployment.md, "Deploying on Kubernetes").

They are a translation of the very definitions compose loads at boot (`broker.definitions`),
so both paths get the same exchanges, quorum queues with their arguments, bindings, users,
permissions and topic permissions. What only this path has:

- no passwords: each User imports its credentials from the Secret `<user>-credentials`
  (keys `username`, `password`), which is never in git; the cluster operator makes the
  administrator (its default user);
- `deletionPolicy: retain` on queues, so that deleting a resource never drops its messages.
"""
from __future__ import annotations

import re
from typing import Any

from services.provisioning import broker
from services.provisioning.deployment import Deployment
from shared.boundary import Boundary

API_VERSION = "rabbitmq.com/v1beta1"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def credentials_secret(user: str) -> str:
    """The Secret a broker user takes its credentials from (the service's password too)."""
    return f"{user}-credentials"


def _name(*parts: str) -> str:
    """A Kubernetes object name (DNS subdomain) for broker names, which may hold `_`, `*`, `#`."""
    text = ".".join(part for part in parts if part).lower()
    text = text.replace("_", "-").replace("*", "star").replace("#", "hash")
    if len(text) > 253 or not _NAME.match(text):
        raise ValueError(f"{text!r} cannot name a Kubernetes object")
    return text


def _resource(kind: str, name: str, spec: dict[str, Any], cluster: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name},
            "spec": {**spec, "rabbitmqClusterReference": {"name": cluster}}}


def manifests(deployment: Deployment, boundaries: tuple[Boundary, ...], cluster: str) -> list[dict[str, Any]]:
    """Every custom resource of the broker side, for the RabbitmqCluster named `cluster`."""
    # The users' password hashes are not used: each takes its password from its Secret.
    document = broker.definitions(deployment, boundaries, {b.name: "" for b in boundaries})
    out: list[dict[str, Any]] = []
    for exchange in document["exchanges"]:
        out.append(_resource("Exchange", _name(exchange["name"]), {
            "name": exchange["name"], "vhost": exchange["vhost"], "type": exchange["type"],
            "durable": exchange["durable"], "autoDelete": exchange["auto_delete"]}, cluster))
    for queue in document["queues"]:
        arguments = dict(queue["arguments"])
        out.append(_resource("Queue", _name(queue["name"]), {
            "name": queue["name"], "vhost": queue["vhost"], "type": arguments.pop("x-queue-type"),
            "durable": queue["durable"], "autoDelete": queue["auto_delete"], "arguments": arguments,
            "deletionPolicy": "retain"}, cluster))
    for binding in document["bindings"]:
        name = _name(binding["destination"], "from", binding["source"], binding["routing_key"] or "all")
        out.append(_resource("Binding", name, {
            "vhost": binding["vhost"], "source": binding["source"], "destination": binding["destination"],
            "destinationType": binding["destination_type"], "routingKey": binding["routing_key"]}, cluster))
    for policy in document["policies"]:
        out.append(_resource("Policy", _name(policy["name"]), {
            "name": policy["name"], "vhost": policy["vhost"], "pattern": policy["pattern"],
            "applyTo": policy["apply-to"], "priority": policy["priority"], "definition": policy["definition"]}, cluster))
    for user in document["users"]:
        out.append(_resource("User", _name(user["name"]), {
            "tags": user["tags"], "importCredentialsSecret": {"name": credentials_secret(user["name"])}}, cluster))
    for grant in document["permissions"]:
        out.append(_resource("Permission", _name(grant["user"]), {
            "user": grant["user"], "vhost": grant["vhost"],
            "permissions": {key: grant[key] for key in ("configure", "write", "read")}}, cluster))
    for grant in document["topic_permissions"]:
        out.append(_resource("TopicPermission", _name(grant["user"], grant["exchange"]), {
            "user": grant["user"], "vhost": grant["vhost"],
            "permissions": {key: grant[key] for key in ("exchange", "write", "read")}}, cluster))
    names = [(item["kind"], item["metadata"]["name"]) for item in out]
    if len(names) != len(set(names)):
        raise ValueError("two broker objects map to one Kubernetes name")
    return out
