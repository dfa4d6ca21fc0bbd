"""The operator commands (docs/architecture.md, "Operator commands"). They read the same configuration
as the stack `make run` started (their settings: services/tools/config.py): the environment first, then
the server secrets `make run` keeps in its credentials file (`ARCSERVE_CREDENTIALS_FILE`, default
`.run/credentials.env`)."""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import asyncpg

from services.tools.config import ToolSettings

ROOT = Path(__file__).resolve().parents[2]
# What an operator command may take from the credentials file: server secrets, never a
# service's own URLs (the commands connect as the administrator).
FROM_CREDENTIALS_FILE = ("ARCSERVE_ID_SECRET", "ARCSERVE_LICENSE_KEY_KEYRING", "ARCSERVE_API_KEY_PEPPER")


def operator_settings() -> ToolSettings:
    from services.provisioning.deployment import read_env_file

    path = Path(os.environ.get("ARCSERVE_CREDENTIALS_FILE") or ROOT / ".run" / "credentials.env")
    kept = read_env_file(path)
    for name in FROM_CREDENTIALS_FILE:
        if name in kept and not os.environ.get(name) and not os.environ.get(f"{name}_FILE"):
            os.environ[name] = kept[name]
    return ToolSettings.from_env()


def run_command(command: Coroutine[Any, Any, int], refusals: tuple[type[BaseException], ...]) -> int:
    """Run a database command to its exit status: a refusal (one of `refusals`) or a database
    that does not answer is said in one line on stderr, with status 1."""
    try:
        return asyncio.run(command)
    except refusals as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"the database is not reachable or refused: {exc!r}", file=sys.stderr)
        return 1
