"""Each service owns its boundary (docs/architecture.md), read off the code: no service
imports another, `shared/` names no service's queue or table, and each service's broker
rights cover only its own queues and the exchanges it publishes to. (The same rights are
proven against the real broker and database in tests/integration/test_boundaries.py.)"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.provisioning.boundaries import BOUNDARIES
from services.provisioning.broker import definitions, permissions
from services.provisioning.deployment import Deployment
from shared.messaging.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "status", "license_issuer", "order_id")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service):
    others = tuple(f"services.{other}" for other in SERVICES if other != service) + ("services.provisioning",
                                                                                       "services.tools")
    for path in (ROOT / "services" / service).rglob("*.py"):
        crossing = sorted(m for m in _imports(path) if m.startswith(others))
        assert not crossing, f"{path.relative_to(ROOT)} imports {crossing}"


def test_shared_imports_no_service():
    for path in (ROOT / "shared").rglob("*.py"):
        assert not [m for m in _imports(path) if m.startswith("services")], path


def _owned_names() -> list[str]:
    names = []
    for boundary in BOUNDARIES:
        names += [subscriber.name for subscriber in boundary.subscribers]
        if boundary.schema is not None:
            for sql in boundary.schema.migrations.glob("*.sql"):
                names += [f"{schema}.{table}" for schema, table in
                          re.findall(r"CREATE TABLE (\w+)\.(\w+)", sql.read_text(encoding="utf-8"))]
    return names


def test_shared_names_no_services_queue_or_table():
    owned = _owned_names()
    assert "arcserve.status.submissions" in owned and "license_issuer.keys" in owned
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "shared").rglob("*.sql")]:
        text = path.read_text(encoding="utf-8")
        named = [name for name in owned if name in text]
        assert not named, f"{path.relative_to(ROOT)} names {named}"


TOPOLOGY = Topology("p.")


def _rights(name: str) -> dict[str, str]:
    return permissions(TOPOLOGY, next(b for b in BOUNDARIES if b.name == name))


def test_each_service_may_configure_nothing():
    for boundary in BOUNDARIES:
        assert _rights(boundary.name)["configure"] == "^$"


def test_intake_may_only_publish_submissions():
    assert _rights("intake") == {"configure": "^$", "write": r"^(p\.arcserve\.applications)$", "read": "^$"}


def test_the_license_issuer_reads_only_its_queue_and_writes_only_events_and_its_own_moves():
    rights = _rights("license-issuer")
    assert re.match(rights["read"], "p.arcserve.license-issuer")
    for foreign in ("p.arcserve.status.submissions", "p.arcserve.status.results", "p.arcserve.order-id"):
        assert not re.match(rights["read"], foreign)
    assert re.match(rights["write"], "p.arcserve.events")
    assert re.match(rights["write"], "p.arcserve.license-issuer.retry")
    for foreign in ("p.arcserve.applications", "", "amq.default", "p.arcserve.status.results.retry",
                    "p.arcserve.status.submissions.dead-letter"):
        assert not re.match(rights["write"], foreign), foreign


def test_on_the_public_exchanges_each_service_writes_only_its_own_messages_routing_keys():
    document = definitions(Deployment(TOPOLOGY), BOUNDARIES, {b.name: "pw" for b in BOUNDARIES})
    topic = {(t["user"], t["exchange"]): t["write"] for t in document["topic_permissions"]}
    issuer = topic[("p.arcserve-license-issuer", "p.arcserve.events")]
    assert re.match(issuer, "license.issued") and re.match(issuer, "license.revoked")
    for forged in ("application.accepted.new", "order_id.issued", "contract.status_changed", "license.issued.x"):
        assert not re.match(issuer, forged), forged
    assert re.match(topic[("p.arcserve-intake", "p.arcserve.applications")], "new")
    assert not re.match(topic[("p.arcserve-intake", "p.arcserve.applications")], "#")
    assert not re.match(topic[("p.arcserve-status", "p.arcserve.events")], "license.issued")


def test_the_definitions_declare_every_queue_once_with_its_bindings():
    document = definitions(Deployment(TOPOLOGY), BOUNDARIES, {b.name: "pw" for b in BOUNDARIES})
    queues = [q["name"] for q in document["queues"]]
    assert len(queues) == len(set(queues))
    assert {u["name"] for u in document["users"]} == {f"p.arcserve-{b.name}" for b in BOUNDARIES}
    bound = {(b["source"], b["destination"], b["routing_key"]) for b in document["bindings"]}
    # Every submission reaches the gate, even under a routing key that is no kind (dead-lettered there).
    assert ("p.arcserve.applications", "p.arcserve.status.submissions", "#") in bound
    assert ("p.arcserve.events", "p.arcserve.order-id", "application.accepted.cancellation") in bound
    assert all(q["arguments"]["x-queue-type"] == "quorum" for q in document["queues"])
