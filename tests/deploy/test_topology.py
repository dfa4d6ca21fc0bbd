"""The broker side on Kubernetes (deploy/kubernetes/base/rabbitmq/topology.yaml, Messaging
Topology Operator resources) is generated from the services' boundaries, and is the same
topology compose loads at boot (deploy/rabbitmq/definitions.json)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import yaml

from tests.deploy.manifests import KUBERNETES, ROOT, Manifest, find, one, render

TOPOLOGY = KUBERNETES / "base" / "rabbitmq" / "topology.yaml"
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"


def committed() -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(TOPOLOGY.read_text()) if doc]


def test_the_committed_resources_are_the_ones_the_code_generates():
    environment = {k: v for k, v in os.environ.items() if k != "ARCSERVE_TOPOLOGY_PREFIX"}
    generated = subprocess.run([sys.executable, "-m", "services.provisioning", "kubernetes"], cwd=ROOT,
                               env=environment, capture_output=True, text=True, timeout=60)
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout == TOPOLOGY.read_text(), \
        f"{TOPOLOGY.relative_to(ROOT)} is stale: run `make kubernetes-topology`"


def _as_definitions(resources: list[Manifest]) -> dict[str, list[Any]]:
    """The operator's resources read back into the definitions file's terms."""
    def spec(kind: str) -> list[dict[str, Any]]:
        return [r["spec"] for r in find(resources, kind)]

    return {
        "exchanges": [{"name": s["name"], "vhost": s["vhost"], "type": s["type"], "durable": s["durable"],
                       "auto_delete": s["autoDelete"], "internal": False, "arguments": {}} for s in spec("Exchange")],
        "queues": [{"name": s["name"], "vhost": s["vhost"], "durable": s["durable"], "auto_delete": s["autoDelete"],
                    "arguments": {"x-queue-type": s["type"], **s["arguments"]}} for s in spec("Queue")],
        "bindings": [{"source": s["source"], "vhost": s["vhost"], "destination": s["destination"],
                      "destination_type": s["destinationType"], "routing_key": s["routingKey"], "arguments": {}}
                     for s in spec("Binding")],
        "users": sorted(r["metadata"]["name"] for r in find(resources, "User")),
        "permissions": [{"user": s["user"], "vhost": s["vhost"], **s["permissions"]} for s in spec("Permission")],
        "topic_permissions": [{"user": s["user"], "vhost": s["vhost"], **s["permissions"]}
                              for s in spec("TopicPermission")],
    }


def _key(item: dict[str, Any]) -> str:
    return json.dumps(item, sort_keys=True)


def test_it_is_the_topology_compose_loads_at_boot():
    """Same exchanges, queues with their arguments, bindings, users, permissions and topic
    permissions; only the administrator differs (the cluster operator makes its own)."""
    definitions = json.loads(DEFINITIONS.read_text())
    admins = {u["name"] for u in definitions["users"] if "administrator" in u["tags"]}
    expected = {
        **{part: definitions[part] for part in ("exchanges", "queues", "bindings", "topic_permissions")},
        "users": sorted(u["name"] for u in definitions["users"] if u["name"] not in admins),
        "permissions": [p for p in definitions["permissions"] if p["user"] not in admins],
    }
    found = _as_definitions(committed())
    for part, items in expected.items():
        if part == "users":
            assert found[part] == items
        else:
            assert sorted(map(_key, found[part])) == sorted(map(_key, items)), part


def test_every_queue_is_a_quorum_queue_that_outlives_its_resource_and_has_a_length_limit():
    resources = committed()
    queues = [r["spec"] for r in find(resources, "Queue")]
    assert queues and all(q["type"] == "quorum" and q["durable"] and q["deletionPolicy"] == "retain" for q in queues)
    policies = [r["spec"] for r in find(resources, "Policy")]
    for queue in queues:
        matching = [p for p in policies if re.fullmatch(p["pattern"], queue["name"])]
        assert len(matching) == 1, (queue["name"], [p["name"] for p in matching])
        [policy] = matching
        assert policy["applyTo"] == "queues"  # each one a quorum queue; "quorum_queues" is unknown to RabbitMQ 3.x
        # Refused when full, never dropped from the head.
        assert policy["definition"]["overflow"] == "reject-publish" and policy["definition"]["max-length"] > 0
        if "x-delivery-limit" in queue["arguments"]:  # a consumer's: the policy restates its limit
            assert policy["definition"]["delivery-limit"] == queue["arguments"]["x-delivery-limit"]
        elif queue["name"].endswith(".dead-letter"):  # reading dead letters must never use them up
            assert policy["definition"]["delivery-limit"] >= 1_000_000


def test_users_import_their_passwords_from_secrets_and_the_manifests_hold_none():
    users = find(committed(), "User")
    assert {u["spec"]["importCredentialsSecret"]["name"] for u in users} == \
        {f"{u['metadata']['name']}-credentials" for u in users}
    text = TOPOLOGY.read_text()
    assert "password" not in text.lower()
    # Each service reads the Secret its broker user imports.
    manifests = render("prod")
    for user in users:
        name = user["metadata"]["name"]
        [deployment] = find(manifests, "Deployment", name)
        refs = {ref["name"] for var in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
                if (ref := var.get("valueFrom", {}).get("secretKeyRef"))}
        assert user["spec"]["importCredentialsSecret"]["name"] in refs, name


def test_every_resource_belongs_to_the_cluster_the_base_makes():
    [cluster] = find(render("prod"), "RabbitmqCluster")
    assert {r["spec"]["rabbitmqClusterReference"]["name"] for r in committed()} == {cluster["metadata"]["name"]}


def test_an_alert_fires_before_a_dead_letter_queue_reaches_its_bound():
    """The dead-letter queues are bounded like every queue; the alert comes at 80 % of it, and
    its selector takes every dead-letter queue and no other."""
    from services.provisioning.broker import MAX_QUEUE_LENGTH

    [rule] = [r for g in one(render("dev"), "PrometheusRule", "arcserve-alerts")["spec"]["groups"] for r in g["rules"]
              if r["alert"] == "ArcserveDeadLettersNearBound"]
    threshold = re.search(r"> (\d+)$", rule["expr"])
    assert threshold and int(threshold.group(1)) == MAX_QUEUE_LENGTH * 8 // 10, rule["expr"]
    selector = re.search(r'queue=~"(.+?)"', rule["expr"])
    assert selector
    pattern = selector.group(1).replace("\\\\", "\\")
    queues = [r["spec"]["name"] for r in find(committed(), "Queue")]
    dead = [q for q in queues if re.fullmatch(pattern, q)]
    assert dead and dead == [q for q in queues if q.endswith(".dead-letter")]
    policies = {p["spec"]["name"]: p["spec"]["definition"] for p in find(committed(), "Policy")}
    assert policies["arcserve.dead-letter-queues"]["max-length"] == MAX_QUEUE_LENGTH
