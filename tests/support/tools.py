"""The operator commands (docs/architecture.md, "Operator commands") run as an operator runs them: a real
process, configured by the environment with the administrator's URLs of a test stack."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from tests.support.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


async def run_tool(stack: Stack, tool: str, *args: str, **env: str) -> tuple[int, str, str]:
    """`python -m services.tools.<tool> ARGS`: its exit status, stdout and stderr."""
    environment = {**os.environ, "AMQP_URL": stack.settings.amqp_url, "DATABASE_URL": stack.settings.database_url,
                   "ARCSERVE_TOPOLOGY_PREFIX": stack.settings.topology_prefix,
                   "ARCSERVE_API_KEY_PEPPER": stack.settings.api_key_pepper.get_secret_value(),
                   "ARCSERVE_CREDENTIALS_FILE": "/nonexistent",  # never a developer's own `make run` secrets
                   **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"services.tools.{tool}", *args,
        cwd=ROOT, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def ok(stack: Stack, tool: str, *args: str) -> str:
    code, out, err = await run_tool(stack, tool, *args)
    assert code == 0, (tool, args, code, out, err)
    return out


async def run_python(*command: str, env: dict[str, str]) -> tuple[int, str, str]:
    """`python COMMAND…` from the checkout, with `env` added: its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, cwd=ROOT, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def system_user(stack: Stack, user: str, role: str) -> str:
    """Another system's broker user, made by the operator's command (`python -m
    services.provisioning system USER ROLE`); its URL (with the password it printed)."""
    code, out, err = await run_python("-m", "services.provisioning", "system", user, role, env={
        "AMQP_URL": stack.settings.amqp_url, "RABBITMQ_MANAGEMENT_URL": stack.servers.management_url,
        "ARCSERVE_TOPOLOGY_PREFIX": stack.settings.topology_prefix})
    assert code == 0, (out, err)
    password = out.splitlines()[-1]
    parts = urlsplit(stack.settings.amqp_url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 5672}"
    return urlunsplit(parts._replace(netloc=netloc))
