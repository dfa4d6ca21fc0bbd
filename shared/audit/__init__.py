"""The audit trail (docs/architecture.md, "Security"): who ran which operator command on
what, and when; and which source address or API key id the HTTP services throttled for
wrong keys (shared/http/auth.py). Provisioned with the platform schemas; written by the
operator commands and, INSERT only, by the services that authenticate tenants."""
from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path
from typing import Any

from shared.db.migrate import Schema
from shared.db.pool import Queryable

SCHEMA = Schema("audit", Path(__file__).with_name("migrations"))


def operator() -> str:
    """Who runs this command: ARCSERVE_OPERATOR where set (a CI job, a named admin),
    else the login on this host."""
    named = os.environ.get("ARCSERVE_OPERATOR")
    if named:
        return named
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        login = f"uid {os.getuid()}"
    return f"{login}@{socket.gethostname()}"


async def record(conn: Queryable, action: str, subject: str, *, actor: str | None = None, **detail: Any) -> None:
    """One record, with the database user this command (or service: `actor`) connected as."""
    await conn.execute(
        "INSERT INTO audit.records (actor, action, subject, detail) VALUES ($1 || ' as ' || current_user, $2, $3, $4::jsonb)",
        actor or operator(), action, subject, json.dumps(detail, default=str),
    )
