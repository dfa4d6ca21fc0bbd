"""The operator command for direct publishers (docs/architecture.md, "Security"): which
RabbitMQ users may publish submissions for which tenants.

    python -m services.tools.publishers allow BROKER_USER TENANT...
    python -m services.tools.publishers revoke BROKER_USER [TENANT...]   (no tenant: all)
    python -m services.tools.publishers allow-fulfilment BROKER_USER
    python -m services.tools.publishers revoke-fulfilment BROKER_USER
    python -m services.tools.publishers list [--json]

A submission on `arcserve.applications` acts for its `tenantid` only when the broker user
that published it (its AMQP `user_id`, which the broker checks) is allowed for that tenant;
anything else is dead-lettered as `unauthorized_publisher` and has no effect. The
deployment's own publishers (intake, the gate's retries, the administrator's replays) are
listed too; their roles are the provisioning step's. The broker user itself and its rights
are made by `python -m services.provisioning system USER --publisher` (docs/security.md, "Onboarding a
direct publisher").

A fulfilment result on `arcserve.fulfilment` (`ARCSERVE_FULFILMENT=external`) completes a
task only when its broker user is allowed for fulfilment (`allow-fulfilment`); the
deployment's own back-office console is, by the provisioning step. Its broker user is made
by `python -m services.provisioning system USER --fulfiller`.

Configured like the other operator commands (DATABASE_URL: the administrator's). Every
change leaves an audit record. Exit status: 0 done; 1 refused (an unknown tenant, the
database unreachable); 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import sys

import asyncpg

from services.tools import operator_settings, run_command
from shared import audit, tenancy


async def run(args: argparse.Namespace, database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        if args.command == "list":
            listed = await tenancy.publishers(conn)
            fulfillers = await tenancy.fulfillers(conn)
            if args.json:
                print(json.dumps([{"broker_user": p.broker_user, "role": p.role.value, "tenants": list(p.tenants)}
                                  for p in listed]
                                 + [{"broker_user": f.broker_user, "role": "fulfiller", "tenants": []}
                                    for f in fulfillers], indent=2))
            else:
                for p in listed:
                    tenants = "every tenant" if p.role is tenancy.Role.EDGE else ", ".join(p.tenants) or "-"
                    print(f"{p.broker_user}\t{p.role.value}\t{tenants}")
                for f in fulfillers:
                    print(f"{f.broker_user}\tfulfiller\t{'the back-office console' if f.own else 'fulfilment results'}")
            return 0
        if args.command in ("allow-fulfilment", "revoke-fulfilment"):
            async with conn.transaction():
                if args.command == "allow-fulfilment":
                    await tenancy.allow_fulfilment(conn, args.broker_user)
                    had = True
                else:
                    had = await tenancy.revoke_fulfilment(conn, args.broker_user)
                await audit.record(conn, f"publishers.{args.command}", args.broker_user)
            allowed = args.command == "allow-fulfilment"
            print(f"{args.broker_user} {'may' if allowed else 'may not'} publish fulfilment results"
                  + ("" if had else " (it was not allowed)"))
            return 0
        async with conn.transaction():
            if args.command == "allow":
                now = await tenancy.allow(conn, args.broker_user, args.tenants)
            else:
                now = await tenancy.revoke(conn, args.broker_user, args.tenants or None)
            await audit.record(conn, f"publishers.{args.command}", args.broker_user,
                               tenants=args.tenants or "all", now_allowed=now)
        print(f"{args.broker_user} may act for: {', '.join(now) or 'no tenant'}")
        return 0
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tools.publishers", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    allow = commands.add_parser("allow", help="let a broker user publish submissions for these tenants")
    allow.add_argument("broker_user")
    allow.add_argument("tenants", nargs="+", metavar="TENANT")
    revoke = commands.add_parser("revoke", help="take tenants back (all of them when none is named)")
    revoke.add_argument("broker_user")
    revoke.add_argument("tenants", nargs="*", metavar="TENANT")
    for name, what in (("allow-fulfilment", "let a broker user publish fulfilment results"),
                       ("revoke-fulfilment", "take fulfilment results back from a broker user")):
        commands.add_parser(name, help=what).add_argument("broker_user")
    listing = commands.add_parser("list", help="every publisher, its role and its tenants; every fulfiller")
    listing.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return run_command(run(args, operator_settings().database_url), (ValueError,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
