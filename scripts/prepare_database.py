"""Check that the provisioning step can log in to PostgreSQL, or say in one line what to run:
`make run`, `make migrate` and `make test` call this first (`make database`).

    python scripts/prepare_database.py      # DATABASE_URL as the provisioning step reads it

Debian's `postgresql` as installed asks every login over TCP for a password
(`scram-sha-256` in pg_hba.conf) and gives the `postgres` role none, so the default
DATABASE_URL (`postgres` on 127.0.0.1, no password) cannot log in. That is not this
project's to change: this says so, and how, in one line (exit 1). So does a server that
is not running. Anything else it leaves to the provisioning step, which reports it. It
changes nothing. Standard library only (the first packet of a login, never a password).
"""
from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

# As the provisioning step reads it (shared/config.py; a test keeps them equal).
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/arcserve"
AUTH_OK, PASSWORD_METHODS = 0, {3: "password", 5: "md5", 10: "scram-sha-256"}


def say(line: str) -> None:
    print(f"database: {line}", file=sys.stderr, flush=True)


def start_command() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir())
    command = f"pg_ctlcluster {versions[0]} main start" if versions else "systemctl start postgresql"
    return command if os.geteuid() == 0 else f"sudo {command}"


def first_answer(host: str, port: int, user: str, database: str) -> tuple[str, int | str]:
    """What the server answers a login's first packet: ("R", authentication method) or ("E", SQLSTATE)."""
    params = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in (("user", user), ("database", database)))
    body = struct.pack(">I", 196608) + params + b"\0"  # protocol 3.0
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(struct.pack(">I", len(body) + 4) + body)
        kind, length = struct.unpack(">cI", _read(conn, 5))
        payload = _read(conn, length - 4)
    if kind == b"R":
        return "R", struct.unpack(">I", payload[:4])[0]
    if kind == b"E":
        fields = dict((f[:1], f[1:].decode(errors="replace")) for f in payload.split(b"\0") if f)
        return "E", fields.get(b"C", "")
    return kind.decode(errors="replace"), 0


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return data


def check(url: str) -> str | None:
    """The one line when the provisioning step cannot log in for a reason it cannot fix, else None."""
    parts = urlsplit(url)
    if "," in parts.netloc or not parts.hostname or "host=" in parts.query:
        return None  # several hosts, or a Unix socket: the provisioning step's own connection says
    host, port = parts.hostname, parts.port or 5432
    user = unquote(parts.username or os.environ.get("PGUSER") or "postgres")
    database = unquote(parts.path.lstrip("/")) or user
    try:
        kind, answer = first_answer(host, port, user, database)
    except OSError as exc:
        return f"no PostgreSQL answers at {host}:{port} ({exc}): start it with `{start_command()}`"
    if kind == "R" and answer in PASSWORD_METHODS and not (parts.password or os.environ.get("PGPASSWORD")):
        shown = parts._replace(netloc=f"{parts.username or user}:PASSWORD@{parts.netloc.rpartition('@')[2]}").geturl()
        as_postgres = "runuser -u postgres --" if os.geteuid() == 0 else "sudo -u postgres"
        return (f"PostgreSQL at {host}:{port} asks {user} for a password ({PASSWORD_METHODS[int(answer)]}, as Debian's "
                f"pg_hba.conf does) and DATABASE_URL gives none: set one with `{as_postgres} psql{'' if port == 5432 else f' -p {port}'} -c \"ALTER ROLE "
                f"{user} PASSWORD 'PASSWORD'\"` and export DATABASE_URL={shown}")
    return None


def main() -> int:
    line = check(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    if line:
        say(line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
