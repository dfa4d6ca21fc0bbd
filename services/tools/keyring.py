"""The operator command for the license-key keyring (docs/operations.md, "Runbook": rotating the
encryption key). License keys are sealed at rest with the keyring's first key and open with
any key of the ring (shared/sealing.py); this command tells which keys still hold sealed
values, and re-seals them under the first, so that an old key can leave the ring.

    python -m services.tools.keyring status [--json]   sealed values per table and key id
    python -m services.tools.keyring reseal            every value not under the first key, re-sealed

Run with the keyring the services will run with: the new key first, the old ones after it
(ARCSERVE_LICENSE_KEY_KEYRING, or its file, or the credentials file `make run` keeps), and
DATABASE_URL the administrator's. A value is replaced only if it is still the one read (a
service writing meanwhile wins, and the next run takes its value too); each table's re-seal
leaves an audit record, with counts only: no key, sealed or not, is ever printed. Exit
status: 0 done; 1 refused (no keyring, a value it cannot open, the database unreachable);
2 usage error.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import asyncpg

from services.tools import operator_settings, run_command
from shared import audit
from shared.sealing import Keyring, KeyringError

# Where sealed license keys are kept: (table, key column), the license id the context.
SEALED = (("status.licenses", "sealed_key"), ("license_issuer.keys", "sealed_key"))
BATCH = 500


async def counts(conn: asyncpg.Connection) -> dict[str, dict[str, int]]:
    """Sealed values per table and key id (the second field of `v1:<key id>:…`)."""
    found: dict[str, dict[str, int]] = {}
    for table, column in SEALED:
        rows = await conn.fetch(f"""SELECT split_part({column}, ':', 2) AS key_id, count(*) AS n FROM {table}
                                    WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 1""")
        found[table] = {row["key_id"]: row["n"] for row in rows}
    return found


async def reseal(conn: asyncpg.Connection, keyring: Keyring) -> dict[str, int]:
    """Re-seal, batch by batch, every value of every table not sealed with the current key."""
    done: dict[str, int] = {}
    for table, column in SEALED:
        done[table] = 0
        while True:
            async with conn.transaction():
                rows = await conn.fetch(
                    f"""SELECT license_id, {column} AS sealed FROM {table}
                        WHERE {column} IS NOT NULL AND split_part({column}, ':', 2) <> $1
                        ORDER BY license_id LIMIT $2 FOR UPDATE SKIP LOCKED""", keyring.current, BATCH)
                if not rows:
                    break
                for row in rows:
                    context = str(row["license_id"])
                    fresh = keyring.seal(keyring.open(row["sealed"], context=context), context=context)
                    await conn.execute(f"UPDATE {table} SET {column} = $2 WHERE license_id = $1 AND {column} = $3",
                                       row["license_id"], fresh, row["sealed"])
                done[table] += len(rows)
        await audit.record(conn, "keyring.reseal", table, resealed=done[table], key_id=keyring.current)
    return done


async def run(args: argparse.Namespace) -> int:
    settings = operator_settings()
    conn = await asyncpg.connect(settings.database_url)
    try:
        if args.command == "status":
            found: Any = await counts(conn)
            if args.json:
                print(json.dumps(found, indent=2))
            else:
                for table, by_key in found.items():
                    shown = ", ".join(f"{key_id}: {n}" for key_id, n in by_key.items()) or "none sealed"
                    print(f"{table}: {shown}")
            return 0
        keyring = Keyring.parse(settings.license_key_keyring.get_secret_value())
        done = await reseal(conn, keyring)
        for table, n in done.items():
            print(f"{table}: {n} re-sealed under {keyring.current}")
        return 0
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tools.keyring", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="sealed values per table and key id")
    status.add_argument("--json", action="store_true")
    sub.add_parser("reseal", help="re-seal every value not under the keyring's first key")
    args = parser.parse_args(argv)
    return run_command(run(args), (KeyringError,))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
