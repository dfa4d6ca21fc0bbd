"""`make run`: the provisioning step, then the services, the back-office console and the portal as
local processes against a local RabbitMQ and Postgres, each service with its own credentials,
then a demo application through the portal's origin from 新規準備中 to 提供中 and a
cancellation to 廃止済. With `ARCSERVE_FULFILMENT=back-office` the keys and the order ID come
from the console: the run makes an operator key of its own, prints it with the console's URL,
and its demo fulfils the new application there, as an operator would.

Stops with Ctrl-C (SIGTERM to every service: they drain and exit 0).
`--demo-and-exit` stops after the demo (used by the tests).
"""
from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import demo  # noqa: E402  (scripts/demo.py, beside this file)

from services.backoffice.config import BackofficeSettings  # noqa: E402
from services.intake.config import IntakeSettings  # noqa: E402
from services.license_issuer.config import LicenseIssuerSettings  # noqa: E402
from services.order_id.config import OrderIdSettings  # noqa: E402
from services.provisioning.__main__ import provision_all  # noqa: E402
from services.provisioning.broker import ManagementError  # noqa: E402
from services.provisioning.config import ProvisioningSettings  # noqa: E402
from services.provisioning.deployment import read_env_file, write_env_file  # noqa: E402
from services.status.config import StatusSettings  # noqa: E402
from shared.config import ServiceSettings  # noqa: E402
from shared.sealing import Keyring  # noqa: E402

# Server secrets the services need; made once and kept in the credentials file (mode 600),
# unless the environment sets them.
LOCAL_SECRETS = {
    "ARCSERVE_ID_SECRET": lambda: secrets.token_urlsafe(32),
    "ARCSERVE_LICENSE_KEY_KEYRING": Keyring.new_key_text,
    "ARCSERVE_API_KEY_PEPPER": lambda: secrets.token_urlsafe(32),
    "ARCSERVE_PORTAL_SESSION_KEYRING": Keyring.new_key_text,
    "ARCSERVE_BACKOFFICE_SESSION_KEYRING": Keyring.new_key_text,
    "ARCSERVE_FORWARDING_SECRET": lambda: secrets.token_urlsafe(32),
}
SERVICES: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings, "status": StatusSettings, "license_issuer": LicenseIssuerSettings,
    "order_id": OrderIdSettings, "backoffice": BackofficeSettings,
}
# The portal holds no broker or database credentials: it reaches the services over HTTP.
PORTAL_SECRETS = ("ARCSERVE_PORTAL_SESSION_KEYRING", "ARCSERVE_FORWARDING_SECRET")
# The forwarding secret is intake's and status's too (shared/http/vouch.py); the session keyring only the portal's.
PORTAL_ONLY = ("ARCSERVE_PORTAL_SESSION_KEYRING",)
HINT = (
    "start them with `rabbitmq-server -detached` and "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
    "(Debian packages rabbitmq-server, postgresql), or `docker compose up -d rabbitmq postgres`"
)


def command(name: str) -> list[str]:
    """How a service or the portal is started: its module under this Python, the environment saying the rest
    (ARCSERVE_HOST too: unset, every port binds 127.0.0.1, this machine only)."""
    return [sys.executable, "-m", f"services.{name}"]


def portal_env(env: dict[str, str], intake_port: int, status_port: int,
               server_secrets: dict[str, str]) -> dict[str, str]:
    """The portal's environment: intake and status on this machine, its own secret and none of theirs."""
    return {**{k: v for k, v in env.items() if k not in LOCAL_SECRETS},
            "PORTAL_INTAKE_URL": f"http://127.0.0.1:{intake_port}",
            "PORTAL_STATUS_URL": f"http://127.0.0.1:{status_port}",
            **{k: server_secrets[k] for k in PORTAL_SECRETS}}


def _where(url: str) -> str:
    """A server's URL without its credentials."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or ""))


async def _demo_tenant(settings: ProvisioningSettings) -> tuple[str, tuple[str, str]]:
    """A tenant of this run's own, with a new API key: (tenant, (key id, key))."""
    from shared.tenancy import create_api_key

    tenant = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        return tenant, await create_api_key(conn, settings.api_key_pepper.get_secret_value().encode(), tenant)
    finally:
        await conn.close()


async def _demo_operator(settings: ProvisioningSettings) -> tuple[str, str]:
    """A fulfiller of this run's own for the back-office console: (operator id, key)."""
    from shared.tenancy.operators import OperatorRole, create_operator

    conn = await asyncpg.connect(settings.database_url)
    try:
        made, key = await create_operator(conn, settings.api_key_pepper.get_secret_value().encode(),
                                          f"make run {time.strftime('%Y%m%d-%H%M%S')}", OperatorRole.FULFILLER)
        return made.operator_id, key
    finally:
        await conn.close()


async def _check_broker(url: str) -> None:
    from shared.messaging import nodes

    connection = await nodes.connect(url, timeout=5)
    await connection.close()


def main() -> int:
    portal = f"http://127.0.0.1:{os.environ.get('PORTAL_PORT', '8084')}"
    os.environ.setdefault("ARCSERVE_STATUS_URL", portal)  # Location headers name the tenants' one origin
    # The simulator's default is near zero; two seconds let the demo show 新規準備中.
    os.environ.setdefault("ARCSERVE_SIM_NEW_DELAY_S", "2")
    logs = ROOT / ".run"
    credentials = Path(os.environ.get("ARCSERVE_CREDENTIALS_FILE") or logs / "credentials.env")
    kept = read_env_file(credentials)
    server_secrets = {name: os.environ.get(name) or kept.get(name) or make() for name, make in LOCAL_SECRETS.items()}
    os.environ.update(server_secrets)  # the provisioning step seeds keys under the same pepper
    settings = ProvisioningSettings.from_env()  # the administrator's, as the provisioning step's
    try:
        asyncio.run(_check_broker(settings.amqp_url))
    except Exception as exc:
        demo.say(f"RabbitMQ does not answer at {_where(settings.amqp_url)} ({exc}): {HINT}")
        return 1
    try:  # the one-shot step; the services' own URLs are kept in the credentials file
        service_urls = asyncio.run(provision_all(settings, credentials))
        write_env_file(credentials, {**read_env_file(credentials), **server_secrets})
        demo_tenant, (demo_key_id, demo_key) = asyncio.run(_demo_tenant(settings))
        back_office = os.environ.get("ARCSERVE_FULFILMENT") == "back-office"
        operator = asyncio.run(_demo_operator(settings)) if back_office else None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:  # it answers, and refuses this login
        demo.say(f"PostgreSQL at {_where(settings.database_url)} refused the login ({exc}): "
                 "`make database` says what to run")
        return 1
    except (OSError, asyncpg.CannotConnectNowError) as exc:
        demo.say(f"PostgreSQL does not answer at {_where(settings.database_url)} ({exc}): {HINT}")
        return 1
    except (ManagementError, ValueError, asyncpg.PostgresError) as exc:
        demo.say(f"provisioning failed: {exc}")
        return 1

    logs.mkdir(exist_ok=True)
    processes: list[subprocess.Popen] = []
    # Each service gets its own credentials, never the administrator's.
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URL", "DATABASE_URL")}
    service_secrets = {k: v for k, v in server_secrets.items() if k not in PORTAL_ONLY}
    service_env = {**env, **service_urls, **service_secrets}
    # Each service's settings as it will read them (its ports; every problem said here, before any starts).
    services = {name: model.from_env(service_env) for name, model in SERVICES.items()}
    for name in SERVICES:
        log = open(logs / f"{name}.log", "ab")
        processes.append(subprocess.Popen(command(name), cwd=ROOT, stdout=log, stderr=log, env=service_env))
    log = open(logs / "portal.log", "ab")
    processes.append(subprocess.Popen(command("portal"), cwd=ROOT, stdout=log, stderr=log,
                                      env=portal_env(env, services["intake"].port, services["status"].port,
                                                     server_secrets)))

    def stop_all(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        deadline = time.monotonic() + 60
        for service in services.values():
            demo.wait_ready(f"http://127.0.0.1:{service.port}", deadline)
        demo.wait_ready(portal, deadline)
        demo.say("arcserve-licensing is running (logs in .run/):")
        demo.say(f"  portal  {portal}/  the license main menu (Arcserveライセンス メインメニュー), and the whole /v1 API")
        demo.say(f"  intake  http://127.0.0.1:{services['intake'].port}/v1/applications")
        demo.say(f"  status  http://127.0.0.1:{services['status'].port}/v1/contracts")
        demo.say(f"  workers http://127.0.0.1:{services['license_issuer'].port}/readyz, "
             f"http://127.0.0.1:{services['order_id'].port}/readyz")
        console = f"http://127.0.0.1:{services['backoffice'].port}"
        demo.say(f"  console {console}/ops/v1/fulfilments  the back-office console (operators only; keys and order IDs "
                 f"come from {os.environ.get('ARCSERVE_FULFILMENT') or 'simulator'}, ARCSERVE_FULFILMENT)")
        demo.say("  metrics " + ", ".join(f"http://127.0.0.1:{service.metrics_port}/metrics"
                                          for service in services.values())
                 + " (the operators' ports; JSON logs in .run/)")
        # Only the key this run made, in a tenant of its own: never one an operator configured.
        demo.say(f"  demo tenant {demo_tenant}, API key (id {demo_key_id}): {demo_key}")
        if operator is not None:
            demo.say(f"  operator of the console (a fulfiller, id {operator[0]}): {operator[1]}")
        demo.run(portal, portal, demo_key,  # one origin: the portal forwards /v1
                 (console, operator[1]) if operator is not None else None)
        if "--demo-and-exit" in sys.argv:
            return 0
        demo.say("\nRunning; try e.g.\n"
             f"  open {portal}/ and sign in with the demo API key\n"
             f"  ARCSERVE_API_KEY={demo_key} {ROOT / '.venv/bin/arcserve'} contracts\n"
             f"  curl -H 'Authorization: Bearer {demo_key}' {portal}/v1/contracts\n"
             "Ctrl-C stops every service (they drain first).")
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        demo.say("a service exited; see .run/*.log")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()
        codes = [p.wait(timeout=60) for p in processes]
        demo.say(f"services stopped (exit codes {codes})")


if __name__ == "__main__":
    sys.exit(main())
