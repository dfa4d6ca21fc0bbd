"""One test deployment: its own topology prefix and database, provisioned the way a real one
is (services/provisioning: broker users, permissions and topology; roles, grants and
migrations), and removed again however the run ends (tests/support/leftovers.py)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg

from services.provisioning import broker, database
from services.provisioning.__main__ import provision
from services.provisioning.boundaries import BOUNDARIES, queue_specs
from services.provisioning.config import ProvisioningSettings
from services.provisioning.deployment import Deployment, service_urls
from shared.boundary import Boundary
from shared.messaging.topology import Topology
from tests.support import leftovers
from tests.support.infra import Servers, create_database, delete_topology, drop_database, with_database


@dataclass
class TestDeployment:
    servers: Servers
    topology: Topology
    database_url: str  # its own database, with the administrator's credentials
    passwords: dict[str, str] = field(
        default_factory=lambda: {b.name: secrets.token_urlsafe(18) for b in BOUNDARIES}, repr=False
    )
    extra_queues: list[str] = field(default_factory=list)  # the tests' own, removed with it
    extra_users: list[str] = field(default_factory=list)  # likewise: other systems' broker users
    pepper: str = field(default_factory=lambda: secrets.token_urlsafe(24))  # ARCSERVE_API_KEY_PEPPER

    __test__ = False  # not a test class, whatever its name

    @classmethod
    async def create(cls, servers: Servers, kind: str, retry_delays_s: tuple[float, ...]) -> TestDeployment:
        made = cls.named(servers, kind, retry_delays_s)
        await create_database(servers.admin_url, made.database_name)
        return made

    @classmethod
    def named(cls, servers: Servers, kind: str, retry_delays_s: tuple[float, ...] = (0.2, 0.5, 1.0)) -> TestDeployment:
        """Its names only, nothing made yet (for a run that provisions it itself)."""
        made = cls(servers, Topology(leftovers.new_prefix(kind), retry_delays_s),
                   with_database(servers.admin_url, leftovers.new_database_name()))
        leftovers.hold(made.topology.prefix, made.remove)
        return made

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")  # the URL may carry a query (several hosts)

    @property
    def deployment(self) -> Deployment:
        # Roles are cluster-wide: named after the deployment's own database.
        return Deployment(self.topology, role_prefix=f"{self.database_name}_")

    async def provision(self, keys: dict[str, str] | None = None) -> None:
        """The one-shot step, with the administrator's credentials."""
        await provision(self.admin_settings, self.deployment, self.passwords, keys=keys)

    @property
    def admin_settings(self) -> ProvisioningSettings:
        """The administrator's settings of this deployment (what the provisioning step runs with)."""
        return ProvisioningSettings(amqp_url=self.servers.amqp_url, database_url=self.database_url,
                                    management_url=self.servers.management_url,
                                    topology_prefix=self.topology.prefix, role_prefix=self.deployment.role_prefix,
                                    retry_delays_s=self.topology.retry_delays_s, api_key_pepper=self.pepper)

    def urls(self, boundary: Boundary, amqp_url: str, database_url: str) -> tuple[str, str]:
        """The service's own URLs, to the servers `amqp_url` and `database_url` point at."""
        urls = service_urls(self.deployment, boundary, self.passwords[boundary.name], amqp_url, database_url)
        return urls[f"{boundary.env_prefix}_AMQP_URL"], urls[f"{boundary.env_prefix}_DATABASE_URL"]

    async def remove(self) -> None:
        """Its exchanges, queues, policies, broker users, database and roles."""
        await delete_topology(self.servers.amqp_url, self.topology, queue_specs(), also=self.extra_queues)
        management = broker.Management.for_amqp_url(self.servers.amqp_url, self.servers.management_url)
        management.delete_users([*(self.deployment.user(b) for b in BOUNDARIES), *self.extra_users])
        # Its queues' policies too: each one left behind is matched against every queue the
        # broker declares from then on (hundreds of them made a long-running broker slow).
        for policy in broker.policies(self.topology, queue_specs(), self.deployment.vhost):
            management.delete_policy(policy["vhost"], policy["name"])
        await drop_database(self.servers.admin_url, self.database_url)
        conn = await asyncpg.connect(self.servers.admin_url)
        try:
            await database.drop_roles(conn, self.deployment, BOUNDARIES)
        finally:
            await conn.close()
        leftovers.release(self.topology.prefix)
