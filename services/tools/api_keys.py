"""The operator command for tenants' API keys (docs/architecture.md, "Security").

    python -m services.tools.api_keys create TENANT     first line `key id: KEY_ID`, last line the key alone
    python -m services.tools.api_keys list [--tenant T] [--json]
    python -m services.tools.api_keys revoke KEY_ID

A key is `arc_<key id>_<43 random characters>` (256 random bits), shown once, when it is
made, and stored only as its HMAC-SHA256 under the server pepper (ARCSERVE_API_KEY_PEPPER,
the one intake and the status service use). A revoked key stops working on every replica
within a second. Listings show key ids, tenants and dates, never a key. Creating and
revoking leave an audit record.

Configured like the other operator commands (DATABASE_URL: the administrator's; the pepper
from the environment or the credentials file `make run` keeps). Exit status: 0 done;
1 refused (no such key, the database unreachable, no pepper); 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import sys

import asyncpg

from services.tools import operator_settings, run_command
from shared import audit, tenancy
from shared.secrets import PEPPER_WHY, MissingSecret, required


async def run(args: argparse.Namespace) -> int:
    settings = operator_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        if args.command == "create":
            pepper = required("ARCSERVE_API_KEY_PEPPER", settings.api_key_pepper.get_secret_value(), PEPPER_WHY)
            async with conn.transaction():
                key_id, key = await tenancy.create_api_key(conn, pepper, args.tenant)
                await audit.record(conn, "api_keys.create", key_id, tenant=args.tenant)
            print(f"key id: {key_id}")
            print(f"tenant: {args.tenant}")
            print("the key, shown this once (keep it; it cannot be shown again):")
            print(key)
            return 0
        if args.command == "revoke":
            async with conn.transaction():
                revoked = await tenancy.revoke_api_key(conn, args.key_id)
                if revoked is not None:
                    await audit.record(conn, "api_keys.revoke", args.key_id, tenant=revoked.tenant_id)
            if revoked is None:
                print(f"no such key id: {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {revoked.key_id} of tenant {revoked.tenant_id} at {revoked.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
            return 0
        listed = await tenancy.api_keys(conn, args.tenant)
        if args.json:
            print(json.dumps([{"key_id": k.key_id, "tenant": k.tenant_id, "created_at": k.created_at.isoformat(),
                               "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None} for k in listed],
                             indent=2))
        else:
            print("key id\ttenant\tcreated\trevoked")
            for k in listed:
                revoked_at = f"{k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "-"
                print(f"{k.key_id}\t{k.tenant_id}\t{k.created_at:%Y-%m-%d %H:%M:%S}\t{revoked_at}")
        return 0
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tools.api_keys", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new key for a tenant (made if new), shown once")
    create.add_argument("tenant", metavar="TENANT")
    listing = commands.add_parser("list", help="key ids, tenants, created and revoked; never a key")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true")
    revoke = commands.add_parser("revoke", help="revoke a key: it stops working everywhere within a second")
    revoke.add_argument("key_id", metavar="KEY_ID")
    args = parser.parse_args(argv)
    if args.command == "create" and not (1 <= len(args.tenant) <= 128) or \
            args.command == "create" and any(c.isspace() or not c.isprintable() for c in args.tenant):
        parser.error("TENANT: 1 to 128 printable characters, no spaces")
    return run_command(run(args), (MissingSecret,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
