"""`python -m services.provisioning [all|broker|database|definitions|kubernetes|system USER]`: the one-shot step
that makes everything the services need, with the administrator's AMQP_URL and
DATABASE_URL, before any service starts (`make migrate`; a one-shot service in
docker-compose.yml). No service does any of this at start-up.

- broker: each service's RabbitMQ user and permissions, every exchange, queue and binding
  (through the management API);
- database: the owner role, each service's role and grants, every schema's migrations;
- keys: ARCSERVE_API_KEYS (`tenant:key,…`) seeded into `tenancy`;
- all (the default): the three, in that order.

Passwords come from `<SERVICE>_PASSWORD` where set, else fresh ones. `--env-file FILE` (with `all`)
writes each service's own URLs there (`STATUS_AMQP_URL=…`, mode 600), and takes the
passwords it already holds. `definitions` prints the broker definitions instead (for a broker that loads
them at boot; `--deterministic` keeps the file stable); `kubernetes` prints the same as custom
resources of the RabbitMQ Messaging Topology Operator (`make kubernetes-topology`).

`system USER --publisher` or `system USER --events-reader` makes another system's broker user
instead (docs/security.md, "Onboarding a direct publisher"): a publisher may write submissions (for the
tenants `python -m services.tools.publishers allow` names), an events reader reads
`arcserve.events` from its queue `USER.events`, made with it. No user is both: one that may
write the submissions and read the events could bind the one exchange into the other
(`broker.combines_publishing_and_reading`), so a system that does both has two users. `system USER
--fulfiller` makes the user of a system that fulfils tasks (`ARCSERVE_FULFILMENT=external`;
docs/security.md, "Onboarding a fulfilment system"): it reads `fulfilment.requested` and
`fulfilment.revocation_requested` from its queue `USER.fulfilment` and writes results to `arcserve.fulfilment` (counted once
`python -m services.tools.publishers allow-fulfilment USER` allows it), and has no other role. Its password is
SYSTEM_PASSWORD where set, else a fresh one, printed alone on the last line, this once;
running it again sets the password anew.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from services.provisioning import broker, database, kubernetes
from services.provisioning.boundaries import BOUNDARIES, PLATFORM_SCHEMAS, own_fulfillers, own_publishers
from services.provisioning.config import ProvisioningSettings
from services.provisioning.deployment import (
    Deployment,
    Passwords,
    passwords_for,
    read_env_file,
    service_urls,
    write_env_file,
)
from shared import tenancy
from shared.messaging import nodes
from shared.messaging.topology import Topology
from shared.observability import logs
from shared.secrets import PEPPER_WHY, required

log = logging.getLogger("provisioning")


async def provision(settings: ProvisioningSettings, deployment: Deployment, passwords: Passwords, *, broker_side: bool = True,
                    database_side: bool = True, keys: dict[str, str] | None = None) -> None:
    if broker_side:
        broker.Management.for_amqp_url(settings.amqp_url, settings.management_url).import_definitions(
            broker.definitions(deployment, BOUNDARIES, passwords)
        )
        log.info("broker: %d users, their permissions and the topology (prefix %r)", len(BOUNDARIES),
                 deployment.topology.prefix)
    if not database_side and not keys:
        return
    if database_side:
        await database.ensure_database(settings.database_url)
    conn = await asyncpg.connect(settings.database_url)
    try:
        if database_side:
            applied = await database.provision(conn, deployment, BOUNDARIES, PLATFORM_SCHEMAS, passwords)
            log.info("database: roles and grants; migrations applied: %s", ", ".join(applied) or "none (up to date)")
            publishers = own_publishers(deployment, nodes.user_of(settings.amqp_url))
            await tenancy.register_publishers(conn, publishers)
            log.info("tenancy: the deployment's own publishers of submissions: %s",
                     ", ".join(f"{user} ({role})" for user, role in sorted(publishers.items())))
            fulfillers = own_fulfillers(deployment)
            await tenancy.register_fulfillers(conn, fulfillers)
            log.info("tenancy: the deployment's own publishers of fulfilment results: %s", ", ".join(fulfillers))
        if keys:
            await tenancy.seed_api_keys(conn, keys, required("ARCSERVE_API_KEY_PEPPER", settings.api_key_pepper.get_secret_value(),
                                                             PEPPER_WHY))
            log.info("tenancy: %d API keys of %d tenants", len(keys), len(set(keys.values())))
    finally:
        await conn.close()


async def provision_all(settings: ProvisioningSettings, env_file: Path | None = None) -> dict[str, str]:
    """Everything, for the deployment `settings` describe (the administrator's URLs and the
    topology prefix); returns each service's own URLs, also written to `env_file`."""
    deployment = _deployment(settings)
    passwords = _passwords(env_file)
    await provision(settings, deployment, passwords, keys=settings.api_keys)
    urls: dict[str, str] = {}
    for boundary in BOUNDARIES:
        urls.update(service_urls(deployment, boundary, passwords[boundary.name], settings.amqp_url,
                                 settings.database_url))
    if env_file is not None:
        write_env_file(env_file, urls)
        log.info("each service's URLs are in %s", env_file)
    return urls


def provision_system(settings: ProvisioningSettings, user: str, password: str, *, publisher: bool = False,
                     events_reader: bool = False, fulfiller: bool = False) -> str:
    """Another system's broker user, through the management API; returns what it may do."""
    topology = _deployment(settings).topology
    management = broker.Management.for_amqp_url(settings.amqp_url, settings.management_url)
    if fulfiller:
        # Its own user, for nothing else: results it writes decide tenants' keys, and with read on an
        # exchange it could bind that exchange into arcserve.fulfilment.
        if [p for p in management.permissions_of(user) if not broker.is_fulfiller_grant(topology, user, p)]:
            raise ValueError(f"{user} has another role already; a system that fulfils tasks gets a user of its own")
        management.import_definitions(broker.fulfiller(topology, user, password))
        return (f"{user}: reads tasks from its queue {broker.fulfilment_queue(user)}; writes results to "
                f"{topology.name('arcserve.fulfilment')}, counted once "
                f"`python -m services.tools.publishers allow-fulfilment {user}` allows it")
    document = (broker.direct_publisher(topology, user, password) if publisher
                else broker.events_reader(topology, user, password))
    if broker.combines_publishing_and_reading(topology, [*management.permissions_of(user), *document["permissions"]]):
        raise ValueError(f"{user} already {'reads events' if publisher else 'writes submissions'}; a user that does "
                         f"both could bind {topology.events} into {topology.applications}: give this system a second "
                         "user for the other role")
    management.import_definitions(document)
    rights = [f"writes submissions to {topology.applications} for the tenants "
              f"`python -m services.tools.publishers allow {user} TENANT...` names"] if publisher else []
    if events_reader:
        rights.append(f"reads {topology.events} from its queue {broker.events_queue(user)}")
    return f"{user}: " + "; ".join(rights)


def compose_passwords(path: Path) -> dict[str, str]:
    """`<SERVICE>_PASSWORD` of a compose file's `provision` service, from its environment and
    its env files (`${VAR:-default}` in their paths resolved as compose does; PyYAML: a
    development dependency, as this is)."""
    import yaml

    provision = yaml.safe_load(path.read_text())["services"]["provision"]
    values: dict[str, str] = {}
    for env_file in provision.get("env_file") or []:
        resolved = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1)) or m.group(2), env_file)
        values.update(read_env_file(path.parent / resolved))
    values.update({key: str(value) for key, value in (provision.get("environment") or {}).items()})
    return {key: value for key, value in values.items() if key.endswith("_PASSWORD")}


def _print_manifests(resources: list[dict[str, Any]]) -> None:
    """A YAML stream, as kustomize reads it (PyYAML: a development dependency, as this is)."""
    import yaml

    sys.stdout.write("# Generated from the services' boundaries by `make kubernetes-topology`: do not edit.\n"
                     "# The broker side of deploy/rabbitmq/definitions.json, as Messaging Topology Operator\n"
                     "# resources (services/provisioning/kubernetes.py); a test fails while the two differ.\n")
    yaml.safe_dump_all(resources, sys.stdout, sort_keys=False, explicit_start=True, width=1000)


def _deployment(settings: ProvisioningSettings) -> Deployment:
    return Deployment(Topology(settings.topology_prefix, settings.retry_delays_s), role_prefix=settings.role_prefix)


def _passwords(env_file: Path | None) -> Passwords:
    """`<SERVICE>_PASSWORD` where set; else the one an existing env file holds (so running
    again changes nothing); else a fresh one."""
    held = read_env_file(env_file) if env_file else {}
    from_file = {}
    for boundary in BOUNDARIES:
        url = held.get(f"{boundary.env_prefix}_AMQP_URL")
        if url and urlsplit(url).password:
            from_file[f"{boundary.env_prefix}_PASSWORD"] = unquote(urlsplit(url).password or "")
    return passwords_for(BOUNDARIES, env={**from_file, **os.environ})


def _system_user(name: str) -> str:
    """Another system's user name: it names its queue (USER.events) and its submissions' `user_id` too."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", name):
        raise argparse.ArgumentTypeError(f"{name!r} is no user name for another system: 1 to 200 letters, digits, "
                                         "'.', '_' or '-', starting with a letter or digit")
    return name


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.provisioning", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="all",
                        choices=("all", "broker", "database", "definitions", "kubernetes", "system"))
    parser.add_argument("system_user", nargs="?", metavar="USER", type=_system_user,
                        help="system: another system's broker user")
    parser.add_argument("--publisher", action="store_true", help="system: it may write submissions")
    parser.add_argument("--events-reader", action="store_true", help="system: it reads events from USER.events")
    parser.add_argument("--fulfiller", action="store_true",
                        help="system: it takes fulfilment tasks from USER.fulfilment and publishes their results")
    parser.add_argument("--env-file", type=Path, help="write each service's own URLs here (and reuse its passwords)")
    parser.add_argument("--deterministic", action="store_true", help="definitions: salts from the user names")
    parser.add_argument("--admin", help="definitions: also an administrator, USER:PASSWORD")
    parser.add_argument("--compose", type=Path,
                        help="definitions: the passwords of this compose file's `provision` service")
    parser.add_argument("--cluster", default="arcserve-rabbitmq",
                        help="kubernetes: the RabbitmqCluster the resources belong to")
    args = parser.parse_args(argv)
    if (args.what == "system") != bool(args.system_user):
        parser.error("USER goes with `system`, and only with it")
    if args.what == "system" and args.publisher + args.events_reader + args.fulfiller != 1:
        parser.error("system: say what it may do: --publisher, --events-reader or --fulfiller (a system that does "
                     "more has a user for each: one user that may do two could bind one exchange into the other)")
    settings = ProvisioningSettings.from_env()
    # Its log on stderr: stdout carries what `definitions` and `kubernetes` print.
    logs.configure("provisioning", settings.log_level, settings.log_format, sys.stderr)
    deployment = _deployment(settings)
    passwords = _passwords(args.env_file)
    if args.what == "definitions":
        if args.compose:
            passwords = passwords_for(BOUNDARIES, env=compose_passwords(args.compose))
        user, _, password = (args.admin or "").partition(":")
        document = broker.definitions(deployment, BOUNDARIES, passwords, admin=(user, password) if user else None,
                                      deterministic=args.deterministic)
        json.dump(document, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if args.what == "kubernetes":
        _print_manifests(kubernetes.manifests(deployment, BOUNDARIES, args.cluster))
        return 0
    try:
        if args.what == "system":
            password = os.environ.get("SYSTEM_PASSWORD") or secrets.token_urlsafe(24)
            print(provision_system(settings, args.system_user, password, publisher=args.publisher,
                                   events_reader=args.events_reader, fulfiller=args.fulfiller))
            if not os.environ.get("SYSTEM_PASSWORD"):
                print("its password, shown this once (give it to the system; it cannot be shown again):")
                print(password)
        elif args.what == "all":
            await provision_all(settings, args.env_file)
        else:
            await provision(settings, deployment, passwords, broker_side=args.what == "broker",
                            database_side=args.what == "database",
                            keys=settings.api_keys if args.what == "database" else None)
    except (broker.ManagementError, OSError, asyncpg.PostgresError, ValueError) as exc:
        print(f"provisioning failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
