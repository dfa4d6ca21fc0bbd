"""The operator command for the back-office console's operators (docs/architecture.md, "Fulfilment").

    python -m services.tools.operators create NAME --role fulfiller|viewer
                                           first line `operator id: ID`, last line the key alone
    python -m services.tools.operators list [--json]
    python -m services.tools.operators revoke ID

A viewer sees the fulfilment tasks in the console (`python -m services.backoffice`); a
fulfiller also types in what Arcserve delivered and rejects what it refused. An operator key
is `ops_<operator id>_<43 random characters>` (256 random bits), shown once, when it is made,
and stored only as its HMAC-SHA256 under the server pepper (ARCSERVE_API_KEY_PEPPER); a
revoked key stops working at once. Listings show ids, names, roles and dates, never a key.
Creating and revoking leave an audit record.

Configured like the other operator commands (DATABASE_URL: the administrator's; the pepper
from the environment or the credentials file `make run` keeps). Exit status: 0 done;
1 refused (no such operator, the database unreachable, no pepper); 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import sys

import asyncpg

from services.tools import operator_settings, run_command
from shared import audit
from shared.secrets import PEPPER_WHY, MissingSecret, required
from shared.tenancy.operators import OperatorRole, create_operator, operators, revoke_operator


async def run(args: argparse.Namespace) -> int:
    settings = operator_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        if args.command == "create":
            pepper = required("ARCSERVE_API_KEY_PEPPER", settings.api_key_pepper.get_secret_value(), PEPPER_WHY)
            async with conn.transaction():
                made, key = await create_operator(conn, pepper, args.name, OperatorRole(args.role))
                await audit.record(conn, "operators.create", made.operator_id, name=made.name, role=made.role.value)
            print(f"operator id: {made.operator_id}")
            print(f"name: {made.name}, role: {made.role.value}")
            print("the operator key, shown this once (keep it; it cannot be shown again):")
            print(key)
            return 0
        if args.command == "revoke":
            async with conn.transaction():
                revoked = await revoke_operator(conn, args.operator_id)
                if revoked is not None:
                    await audit.record(conn, "operators.revoke", args.operator_id, name=revoked.name)
            if revoked is None:
                print(f"no such operator id: {args.operator_id}", file=sys.stderr)
                return 1
            print(f"revoked {revoked.operator_id} ({revoked.name}) at {revoked.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
            return 0
        listed = await operators(conn)
        if args.json:
            print(json.dumps([{"operator_id": o.operator_id, "name": o.name, "role": o.role.value,
                               "created_at": o.created_at.isoformat(),
                               "revoked_at": o.revoked_at.isoformat() if o.revoked_at else None} for o in listed],
                             indent=2, ensure_ascii=False))
        else:
            print("operator id\tname\trole\tcreated\trevoked")
            for o in listed:
                revoked_at = f"{o.revoked_at:%Y-%m-%d %H:%M:%S}" if o.revoked_at else "-"
                print(f"{o.operator_id}\t{o.name}\t{o.role.value}\t{o.created_at:%Y-%m-%d %H:%M:%S}\t{revoked_at}")
        return 0
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tools.operators", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new operator of the back-office console, its key shown once")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--role", required=True, choices=[r.value for r in OperatorRole],
                        help="fulfiller: sees, fulfils and rejects; viewer: sees")
    listing = commands.add_parser("list", help="ids, names, roles, created and revoked; never a key")
    listing.add_argument("--json", action="store_true")
    revoke = commands.add_parser("revoke", help="revoke an operator: its key stops working at once")
    revoke.add_argument("operator_id", metavar="ID")
    args = parser.parse_args(argv)
    if args.command == "create" and not (1 <= len(args.name) <= 100 and args.name.isprintable() and args.name.strip()):
        parser.error("NAME: 1 to 100 printable characters")
    return run_command(run(args), (MissingSecret,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
