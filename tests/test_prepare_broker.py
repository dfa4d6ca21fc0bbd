"""A newcomer's Debian rabbitmq-server as installed (no plugin enabled) needs nothing by hand:
`make run`, `make migrate` and `make test` first run scripts/prepare_broker.py, which enables the
management plugin the provisioning step talks to, or says in one line what to run. Here on a
node of the test's own (tests/support/own_node.py), started with no plugins: the main node is
never touched."""
from __future__ import annotations

import os
import pwd
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.provisioning.boundaries import BOUNDARIES
from services.provisioning.broker import Management
from services.provisioning.config import ProvisioningSettings
from shared.config import DEFAULT_AMQP_URL
from tests.support import own_node
from tests.support.deployment import TestDeployment
from tests.support.infra import Servers
from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
PREPARE = ROOT / "scripts" / "prepare_broker.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # the script is standard library only: any user's Python runs it
ENABLE = "rabbitmq-plugins enable rabbitmq_management"

needs_a_node = pytest.mark.skipif(not own_node.available(), reason="needs Debian's rabbitmq-server")


def _prepare(env: dict[str, str], *, user: str | None = None) -> subprocess.CompletedProcess[str]:
    python = SYSTEM_PYTHON if user else sys.executable
    return subprocess.run([python, str(PREPARE)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
                          user=user, group="nogroup" if user else None, extra_groups=[] if user else None)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/overview", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (401 without credentials)
    except OSError:
        return False


@pytest.fixture(scope="module")
def node() -> Iterator[own_node.OwnNode]:
    with own_node.own_node(plugins=()) as started:
        yield started


def _env(node: own_node.OwnNode, **more: str) -> dict[str, str]:
    """Where the project's commands find this node: its URLs, and its rabbitmq commands first on PATH."""
    return {**os.environ, "PATH": f"{node.bin}:{os.environ['PATH']}", "AMQP_URL": node.amqp_url,
            "RABBITMQ_MANAGEMENT_URL": node.management_url, **more}


def test_the_script_reads_the_broker_as_the_provisioning_step_does() -> None:
    sys.path.insert(0, str(PREPARE.parent))
    try:
        import prepare_broker
    finally:
        sys.path.remove(str(PREPARE.parent))
    assert prepare_broker.DEFAULT_AMQP_URL == DEFAULT_AMQP_URL
    for env in ({}, {"AMQP_URL": "amqp://admin:p%40ss@10.1.2.3:5673/,amqp://admin:p%40ss@10.1.2.4:5673/"},
                {"AMQP_URL": "amqp://u:p@broker.example/", "RABBITMQ_MANAGEMENT_URL": "https://mgmt.example:443/"}):
        settings = ProvisioningSettings.model_validate(env)
        expected = Management.for_amqp_url(settings.amqp_url, settings.management_url)
        broker = prepare_broker.Broker.from_env(env)
        assert (broker.management_url, broker.user, broker.password) == (expected.url, expected.user, expected.password)


@pytest.mark.parametrize("target, then", [("run", "scripts/run_local.py"), ("migrate", "-m services.provisioning"),
                                          ("test", "-m pytest")])
def test_make_prepares_the_broker_and_database_before_it_provisions(target: str, then: str) -> None:
    dry = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "MAKEFLAGS": ""})
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    provisioned = [i for i, line in enumerate(lines) if then in line]
    for script in ("scripts/prepare_broker.py", "scripts/prepare_database.py"):  # the database: its own test file
        prepared = [i for i, line in enumerate(lines) if script in line]
        assert prepared and provisioned and prepared[0] < provisioned[0], dry.stdout


def test_a_broker_elsewhere_is_left_alone_and_the_line_says_what_to_run() -> None:
    [closed] = free_ports(1)
    done = _prepare({**os.environ, "AMQP_URL": "amqp://guest:guest@rabbitmq.example:5672/",
                     "RABBITMQ_MANAGEMENT_URL": f"http://127.0.0.1:{closed}"})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"run `{ENABLE}` on rabbitmq.example" in done.stderr and "nothing was changed" in done.stderr


@needs_a_node
@pytest.mark.skipif(os.geteuid() != 0 or not Path(SYSTEM_PYTHON).exists(), reason="runs it as another user")
def test_a_user_who_cannot_enable_the_plugin_is_told_in_one_line_what_to_run(node: own_node.OwnNode) -> None:
    pwd.getpwnam("nobody")
    done = _prepare(_env(node), user="nobody")  # may run rabbitmqctl, cannot read the node's Erlang cookie

    assert done.returncode == 1, done
    assert done.stderr.count("\n") == 1 and not done.stdout, done.stderr
    assert done.stderr.startswith(f"broker: the RabbitMQ management API at {node.management_url} does not answer")
    assert " and this user cannot enable it (rabbitmqctl: " in done.stderr, done.stderr
    assert done.stderr.endswith(f": run `sudo {ENABLE}`\n"), done.stderr
    assert not _answers(node.management_url)  # nothing changed
    assert (node.base / "enabled_plugins").read_text() == ""


@needs_a_node
@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs DATABASE_URL (make test sets it)")
async def test_a_stock_node_gets_the_plugin_and_the_provisioning_step_succeeds(node: own_node.OwnNode,
                                                                               tmp_path: Path) -> None:
    """Its own node and database only: not the session's broker, whose state is not this test's to assume."""
    assert not _answers(node.management_url)  # as Debian installs it
    servers = Servers(node.amqp_url, os.environ["DATABASE_URL"], lambda args: (1, "unused"), node.management_url)
    deployment = TestDeployment.named(servers, "test")  # its names; the provisioning step makes it all
    env = _env(node, DATABASE_URL=deployment.database_url, ARCSERVE_TOPOLOGY_PREFIX=deployment.topology.prefix,
               ARCSERVE_DB_ROLE_PREFIX=deployment.deployment.role_prefix)
    try:
        prepared = _prepare(env)
        assert prepared.returncode == 0, prepared.stderr
        assert prepared.stderr == (f"broker: enabled rabbitmq_management on {node.name} (the provisioning step uses "
                                   f"its API, now at {node.management_url})\n")
        assert _answers(node.management_url)

        again = _prepare(env)  # the next make run: nothing to do, nothing said
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")

        provisioned = subprocess.run([sys.executable, "-m", "services.provisioning", "--env-file",
                                      str(tmp_path / "credentials.env")], env=env, cwd=ROOT, capture_output=True,
                                     text=True, timeout=120)
        assert provisioned.returncode == 0, provisioned.stderr
        users = Management.for_amqp_url(node.amqp_url, node.management_url).users()
        assert {deployment.deployment.user(b) for b in BOUNDARIES} <= set(users)
    finally:
        await deployment.remove()
