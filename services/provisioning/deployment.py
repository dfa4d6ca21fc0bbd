"""How one deployment names what it provisions: the topology prefix of its exchanges and
queues (and broker users), the prefix of its Postgres roles, and each service's password."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from shared.boundary import Boundary
from shared.messaging import nodes
from shared.messaging.topology import Topology


@dataclass(frozen=True)
class Deployment:
    topology: Topology = field(default_factory=Topology)
    role_prefix: str = "arcserve_"  # Postgres roles: <prefix><service>, <prefix>owner
    vhost: str = "/"

    def user(self, boundary: Boundary) -> str:
        """The service's RabbitMQ user."""
        return self.topology.user(boundary.name)

    def role(self, boundary: Boundary) -> str:
        """The service's Postgres role."""
        return f"{self.role_prefix}{boundary.name.replace('-', '_')}"

    @property
    def owner(self) -> str:
        """The role that owns every schema and runs the migrations."""
        return f"{self.role_prefix}owner"


Passwords = dict[str, str]  # service name → its password (broker user and Postgres role)


def passwords_for(boundaries: tuple[Boundary, ...], *, env: dict[str, str] | None = None) -> Passwords:
    """`<SERVICE>_PASSWORD` where set, else a fresh random one."""
    env = dict(os.environ) if env is None else env
    return {b.name: env.get(f"{b.env_prefix}_PASSWORD") or secrets.token_urlsafe(24) for b in boundaries}


def with_credentials(url: str, user: str, password: str) -> str:
    """`url` logging in as `user`: each node of a comma-separated broker URL, and a database
    URL with several hosts (`postgresql://…@db-1:5432,db-2:5432/…`) as it is."""
    if url.startswith(("amqp://", "amqps://")) and "," in url:
        return ",".join(with_credentials(node, user, password) for node in nodes.split(url))
    parts = urlsplit(url)
    hosts = parts.netloc.rsplit("@", 1)[-1] or "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{hosts}"))


def service_urls(deployment: Deployment, boundary: Boundary, password: str, amqp_url: str,
                 database_url: str) -> dict[str, str]:
    """The service's own `<SERVICE>_AMQP_URL` and `<SERVICE>_DATABASE_URL`, on the servers
    the administrator's URLs point at."""
    return {
        f"{boundary.env_prefix}_AMQP_URL": with_credentials(amqp_url, deployment.user(boundary), password),
        f"{boundary.env_prefix}_DATABASE_URL": with_credentials(database_url, deployment.role(boundary), password),
    }


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """A secrets file only its owner can read (the services' URLs carry passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"{key}={value}\n" for key, value in sorted(values.items())))


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key: value for key, value in pairs}
