"""A RabbitMQ node of a test's own, from the machine's Debian rabbitmq-server and never touching
its main node (as scripts/rabbitmq-cluster.sh makes its nodes): its own node name, AMQP,
management and distribution ports, config, data and log directories, and Erlang cookie, and
the plugins asked for (none: Debian's package as installed).

`node.bin` holds `rabbitmqctl` and `rabbitmq-plugins` as this machine's would be if this node
were its own (they address it): put it first on PATH for a command that works on the local node."""
from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_ports

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
PROBE = Path(__file__).resolve().parent.parent.parent / "scripts" / "amqp_probe.py"
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0


@dataclass(frozen=True)
class OwnNode:
    name: str
    amqp_port: int
    management_port: int
    base: Path  # its cookie, config, data and logs (root's alone)
    bin: Path  # its rabbitmqctl and rabbitmq-plugins (anyone may run them; only root can reach the node)
    env: dict[str, str]

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "rabbitmqctl"), *args], capture_output=True, text=True,
                              timeout=timeout)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted((self.base / "log").glob("*.log")))


def available() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").is_file() and shutil.which("epmd") is not None


@contextlib.contextmanager
def own_node(plugins: Sequence[str] = ()) -> Iterator[OwnNode]:
    """A running node, answering AMQP; stopped and its directories removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="arcserve-node-"))  # mode 700
    shims = Path(tempfile.mkdtemp(prefix="arcserve-node-bin-"))
    shims.chmod(0o755)
    amqp, management, dist = free_ports(3)
    name = f"arcserve-{secrets.token_hex(4)}@localhost"
    cookie = base / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20))
    cookie.chmod(0o400)
    (base / "enabled_plugins").write_text(f"[{','.join(plugins)}]." if plugins else "")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{amqp}\nmanagement.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {management}\n")
    (base / "rabbitmq-env.conf").write_text("")  # not the main node's /etc/rabbitmq/rabbitmq-env.conf
    env = {
        "HOME": str(base), "RABBITMQ_NODENAME": name, "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist), "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"), "RABBITMQ_MNESIA_BASE": str(base / "data"),
        "RABBITMQ_LOG_BASE": str(base / "log"), "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(base / "pid"), "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    for tool in ("rabbitmqctl", "rabbitmq-plugins"):
        shim = shims / tool
        shim.write_text("#!/bin/sh\nexec env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
                        + f" {RABBITMQ_BIN / tool} \"$@\"\n")
        shim.chmod(0o755)
    node = OwnNode(name, amqp, management, base, shims, env)
    (base / "log").mkdir()
    with open(base / "log" / "startup.log", "wb") as startup:
        server = subprocess.Popen([str(RABBITMQ_BIN / "rabbitmq-server")], env={**os.environ, **env},
                                  stdout=startup, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    try:
        probe = subprocess.run([sys.executable, str(PROBE), "--deadline", str(START_DEADLINE_S), node.amqp_url],
                               capture_output=True, text=True, timeout=START_DEADLINE_S + 30)
        assert probe.returncode == 0, f"{name} did not answer AMQP: {probe.stderr}\n{node.log()}"
        yield node
    finally:
        node.ctl("stop", timeout=STOP_DEADLINE_S)
        try:
            server.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=10)
        _await_unregistered(name.split("@")[0], time.monotonic() + STOP_DEADLINE_S)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(shims, ignore_errors=True)


def _await_unregistered(short_name: str, deadline: float) -> None:
    """Until epmd no longer lists the node (its VM has gone)."""
    while time.monotonic() < deadline:
        names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10).stdout
        if f"name {short_name} at port " not in names:
            return
        time.sleep(0.2)
