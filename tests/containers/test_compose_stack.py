"""The compose stack as a user runs it (`scripts/containers/compose.sh`, on Docker or on
Podman): RabbitMQ, Postgres and the four services come up in order behind their health
checks, the demo goes 新規準備中 → 提供中 → 廃止済 through the published ports, and `down`
leaves no container, network or volume behind. Its own project name and host ports, so it
never meets a stack a developer is running."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import docker
import pytest

from tests.support.ports import free_ports

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "scripts" / "containers" / "compose.sh"
INFRA = ("rabbitmq", "postgres")
ONE_SHOT = "provision"
APPS = ("intake", "status", "license-issuer", "order-id", "backoffice", "portal")
HEALTHY_DEADLINE_S = 180.0




class ComposeProject:
    def __init__(self, name: str, env: dict[str, str]):
        self.name = name
        self.env = env
        self.engine = docker.from_env(timeout=30)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(COMPOSE), *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def containers(self) -> dict[str, docker.models.containers.Container]:
        """compose service → its container (all states)."""
        found = self.engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.name}"})
        return {c.labels["com.docker.compose.service"]: c for c in found}

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40", timeout=60).stdout

    def leftovers(self) -> list[str]:
        label = {"label": f"com.docker.compose.project={self.name}"}
        return (
            [f"container {c.name}" for c in self.engine.containers.list(all=True, filters=label)]
            + [f"network {n.name}" for n in self.engine.networks.list() if n.name.startswith(f"{self.name}_")]
            + [f"volume {v.name}" for v in self.engine.volumes.list() if v.name.startswith(f"{self.name}_")]
        )


@pytest.fixture
def project() -> Iterator[ComposeProject]:
    name = f"arcserve-ct-{uuid.uuid4().hex[:8]}"
    amqp, management, intake, status, portal = free_ports(5)
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": name,
        "PUBLISH_AMQP_PORT": str(amqp),
        "PUBLISH_MANAGEMENT_PORT": str(management),
        "PUBLISH_INTAKE_PORT": str(intake),
        "PUBLISH_STATUS_PORT": str(status),
        "PUBLISH_PORTAL_PORT": str(portal),
        "ARCSERVE_STATUS_URL": f"http://127.0.0.1:{portal}",
        "ARCSERVE_SIM_NEW_DELAY_S": "2",  # long enough to see 新規準備中
    }
    compose = ComposeProject(name, env)
    try:
        yield compose
    finally:
        down = compose.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
        assert down.returncode == 0, down.stderr


def _healthy(project: ComposeProject) -> dict[str, docker.models.containers.Container]:
    deadline = time.monotonic() + HEALTHY_DEADLINE_S
    while True:
        containers = project.containers()
        health = {name: c.attrs["State"].get("Health", {}).get("Status") for name, c in containers.items()
                  if name != ONE_SHOT}
        if set(health) == {*INFRA, *APPS} and all(h == "healthy" for h in health.values()):
            return containers
        if time.monotonic() > deadline:
            raise AssertionError(f"not every service became healthy in {HEALTHY_DEADLINE_S:g}s: {health}\n{project.logs()}")
        time.sleep(1)


def _at(container: docker.models.containers.Container, what: str = "StartedAt") -> datetime:
    # Engines give nanoseconds; fromisoformat takes microseconds.
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", container.attrs["State"][what]).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp)


def test_the_compose_stack_runs_the_contract_process_and_leaves_nothing_behind(project: ComposeProject) -> None:
    up = project.compose("up", "--detach")
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{project.logs()}"

    containers = _healthy(project)
    # Start order: the provisioning step runs once the database answers and exits 0; the
    # services start only after it, once the broker answers too, so none of them ever finds
    # either unreachable or unprovisioned.
    provision = containers[ONE_SHOT].attrs["State"]
    assert (provision["Status"], provision["ExitCode"]) == ("exited", 0), project.logs()
    first_app = min(_at(containers[name]) for name in APPS)
    assert all(_at(containers[name]) < first_app for name in INFRA)
    assert _at(containers[ONE_SHOT], "FinishedAt") <= first_app
    for name in APPS:
        log = containers[name].logs().decode(errors="replace")
        for sign in ("not reachable", "is not ready"):
            assert sign not in log, f"{name} started before its dependencies were ready:\n{log}"

    env = project.env
    demo = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--wait", "60", "--key", "acme-demo-key",
         # through the portal: the tenants' one origin forwards the whole /v1 API
         "--intake", f"http://127.0.0.1:{env['PUBLISH_PORTAL_PORT']}",
         "--status", f"http://127.0.0.1:{env['PUBLISH_PORTAL_PORT']}"],
        capture_output=True, text=True, timeout=180,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, f"{output}\n{project.logs()}"
    states = re.findall(r"^contract [0-9a-f-]{36}: (\S+) \((\w+)\)", output, re.MULTILINE)
    assert states == [("新規準備中", "preparing"), ("提供中", "active"), ("廃止済", "cancelled")], output
    assert re.search(r"order ID ARC-\d{8}-\w{5}-\w{5} is cancelled", output), output  # R9

    # Every service drains and exits 0 on SIGTERM, well inside its grace period.
    stop = project.compose("stop", "--timeout", "30")
    assert stop.returncode == 0, stop.stderr
    exits = {name: c.attrs["State"]["ExitCode"] for name, c in project.containers().items() if name in APPS}
    assert exits == dict.fromkeys(APPS, 0), f"{exits}\n{project.logs()}"

    down = project.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
    assert down.returncode == 0, down.stderr
    assert project.leftovers() == []
