"""Make the broker ready for the provisioning step, or say in one line what to run: `make run`,
`make migrate` and `make test` call this first (`make broker`), so a newcomer's Debian
`rabbitmq-server`, exactly as installed (no plugins), needs nothing done by hand.

    python scripts/prepare_broker.py      # AMQP_URL, RABBITMQ_MANAGEMENT_URL as the provisioning step reads them

The provisioning step talks to the management API (RABBITMQ_MANAGEMENT_URL, default port
15672 of the AMQP host), which Debian's package leaves off. When that API does not answer:

- the broker is on this machine (a loopback AMQP URL): enable `rabbitmq_management` on the
  node that listens on that port (`rabbitmq-plugins enable` works on a running node), when
  this user can (root, or the rabbitmq user), then wait until the API answers;
- it is elsewhere, or this user cannot: change nothing, print one line saying what to run,
  exit 1.

It never starts, stops or restarts a broker. Exit 0: the API answers.
"""
from __future__ import annotations

import base64
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# As the provisioning step reads them (shared/config.py, services/provisioning/broker.py; a test
# keeps them equal). Standard library only: it runs before the virtual environment, and as
# any user.
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
MANAGEMENT_PORT = 15672
PLUGIN = "rabbitmq_management"
ENABLE = f"rabbitmq-plugins enable {PLUGIN}"
API_DEADLINE_S = float(os.environ.get("RABBITMQ_MANAGEMENT_DEADLINE_S", "60"))
COMMAND_TIMEOUT_S = 120.0
SBIN = "/usr/sbin"  # where Debian puts the RabbitMQ commands; not on a non-root user's PATH


class NotReady(Exception):
    """What is wrong and what to run, in one line."""


@dataclass(frozen=True)
class Broker:
    amqp_url: str  # the first node's, for a cluster's comma-separated URL
    management_url: str
    user: str
    password: str

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str] = os.environ) -> Broker:
        amqp_url = next((u.strip() for u in (env.get("AMQP_URL") or DEFAULT_AMQP_URL).split(",") if u.strip()),
                        DEFAULT_AMQP_URL)
        parts = urlsplit(amqp_url)
        management = env.get("RABBITMQ_MANAGEMENT_URL") or f"http://{parts.hostname or '127.0.0.1'}:{MANAGEMENT_PORT}"
        return cls(amqp_url, management.rstrip("/"), unquote(parts.username or "guest"),
                   unquote(parts.password or "guest"))

    @property
    def host(self) -> str:
        return urlsplit(self.amqp_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.amqp_url)
        return parts.port or (5671 if parts.scheme == "amqps" else 5672)

    def api_answers(self) -> str | None:
        """None when the management API answers (any HTTP answer: the provisioning step reports
        a refusal itself), else why not."""
        request = urllib.request.Request(f"{self.management_url}/api/overview", headers={
            "Authorization": "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()})
        try:
            with urllib.request.urlopen(request, timeout=10):
                return None
        except urllib.error.HTTPError:
            return None
        except OSError as exc:
            return str(getattr(exc, "reason", None) or exc)


def say(line: str) -> None:
    print(f"broker: {line}", file=sys.stderr, flush=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=SBIN)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)


def reason(done: subprocess.CompletedProcess[str]) -> str:
    """The first line that says something of a failed command's output, shortened."""
    for line in (done.stderr + "\n" + done.stdout).splitlines():
        line = re.sub(r"^(\d\d:\d\d:\d\d\.\d+ \[\w+\] |Error:)\s*", "", line.strip())  # a log line's time and level
        if line and not line.startswith(("Listing ", "Enabling ")):
            return line[:160]
    return f"exit status {done.returncode}"


def sudo(command: str) -> str:
    return command if os.geteuid() == 0 else f"sudo {command}"


def local_node(rabbitmqctl: str) -> tuple[str, list[int]]:
    """The node this machine's rabbitmqctl reaches: its name and its AMQP ports."""
    done = run([rabbitmqctl, "-q", "eval",
                "{node(), [element(6, L) || L <- rabbit_networking:node_listeners(node()), element(3, L) =:= amqp]}."])
    found = re.fullmatch(r"\{'?([^',]+)'?,\[([\d,]*)\]\}", "".join(done.stdout.split()))
    if done.returncode != 0 or not found:
        raise NotReady(reason(done))
    return found.group(1), [int(port) for port in found.group(2).split(",") if port]


def enable(broker: Broker, why: str) -> str:
    """Enable the plugin on the local node behind the broker's AMQP port and wait for the API."""
    missing = f"the RabbitMQ management API at {broker.management_url} does not answer ({why})"
    try:
        with socket.create_connection((broker.host, broker.port), timeout=5):
            pass
    except OSError as exc:
        raise NotReady(f"no RabbitMQ at {broker.host}:{broker.port} ({exc}): start it with "
                       f"`{sudo('rabbitmq-server -detached')}` (or `{sudo('systemctl start rabbitmq-server')}`)") from None
    rabbitmqctl, plugins = tool("rabbitmqctl"), tool("rabbitmq-plugins")
    if not (rabbitmqctl and plugins):
        raise NotReady(f"{missing} and this machine has no rabbitmq-plugins: run `{ENABLE}` where the broker runs, "
                       "or set RABBITMQ_MANAGEMENT_URL")
    try:
        node, ports = local_node(rabbitmqctl)
    except NotReady as exc:
        raise NotReady(f"{missing} and this user cannot enable it (rabbitmqctl: {exc}): run `{sudo(ENABLE)}`") from None
    if broker.port not in ports:
        raise NotReady(f"{missing}; the local node {node} listens on {ports or 'no AMQP port'}, not on "
                       f"{broker.port}: enable {PLUGIN} on the node that does, or set RABBITMQ_MANAGEMENT_URL")
    done = run([plugins, "-q", "enable", PLUGIN])
    if done.returncode != 0:
        raise NotReady(f"{missing} and this user cannot enable it (rabbitmq-plugins: {reason(done)}): "
                       f"run `{sudo(ENABLE)}`")
    deadline = time.monotonic() + API_DEADLINE_S
    while (still := broker.api_answers()) is not None:
        if time.monotonic() > deadline:
            raise NotReady(f"enabled {PLUGIN} on {node}, but its API at {broker.management_url} still does not "
                           f"answer after {API_DEADLINE_S:g} s ({still}): set RABBITMQ_MANAGEMENT_URL to its "
                           "management.tcp.port")
        time.sleep(0.5)
    if "unchanged" in done.stdout:  # on already, its API not up yet (a node that has just started)
        return f"{PLUGIN} was on already on {node}; its API answers now at {broker.management_url}"
    return f"enabled {PLUGIN} on {node} (the provisioning step uses its API, now at {broker.management_url})"


def prepare(broker: Broker) -> str | None:
    """Ready the broker; what was done (None: nothing was needed)."""
    why = broker.api_answers()
    if why is None:
        return None
    if not (is_loopback(broker.host) and is_loopback(urlsplit(broker.management_url).hostname or "")):
        raise NotReady(f"the RabbitMQ management API at {broker.management_url} does not answer ({why}) and the "
                       f"broker is not on this machine, so nothing was changed: run `{ENABLE}` on {broker.host}, "
                       "or set RABBITMQ_MANAGEMENT_URL")
    return enable(broker, why)


def main() -> int:
    try:
        done = prepare(Broker.from_env())
    except NotReady as exc:
        say(str(exc))
        return 1
    if done:
        say(done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
