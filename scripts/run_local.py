"""`make run`: the four services as local processes against a local RabbitMQ and Postgres,
then a demo application from 新規準備中 to 提供中 and a cancellation to 廃止済.

Stops with Ctrl-C (SIGTERM to every service: they drain and exit 0).
`--demo-and-exit` stops after the demo (used by the tests).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.config import Settings  # noqa: E402
from shared.db.migrate import migrate, seed_api_keys  # noqa: E402

DEMO_KEYS = "acme:acme-demo-key,globex:globex-demo-key"
SERVICES = ("intake", "status", "license_issuer", "order_id")
HINT = (
    "start them with `rabbitmq-server -detached` and "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
    "(Debian packages rabbitmq-server, postgresql), or `docker compose up -d rabbitmq postgres`"
)


def _say(text: str) -> None:
    print(text, flush=True)


async def _prepare_database(url: str, api_keys: dict[str, str]) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await seed_api_keys(conn, api_keys)
    finally:
        await conn.close()


async def _check_broker(url: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=5)
    await connection.close()


def _http(method: str, url: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"a service on port {port} did not become ready; see .run/*.log")


def _poll(url: str, key: str, done, deadline_s: float = 30.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        status, body = _http("GET", url, key)
        if status == 200 and done(body):
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting on {url}: last answer {status} {body}")
        time.sleep(0.2)


def _demo(settings: Settings, key: str) -> None:
    intake = f"http://127.0.0.1:{settings.intake_port}"
    status = f"http://127.0.0.1:{settings.status_port}"
    product = "arcserve-udp-10"
    # A demo interrupted earlier may have left a live contract (R2): cancel it first.
    _, page = _http("GET", f"{status}/v1/contracts?status=active", key)
    for item in page.get("items", []):
        if item["product"]["code"] == product:
            _http("POST", f"{intake}/v1/applications", key,
                  {"kind": "cancellation", "contract_id": item["contract_id"], "scope": "all"})
            _poll(f"{status}/v1/contracts/{item['contract_id']}", key, lambda c: c["status"] == "cancelled")

    _say("\n── demo: a new application (新規申込) ──")
    code, answer = _http("POST", f"{intake}/v1/applications", key, {
        "kind": "new", "product": product,
        "contact": {"email": "ops@example.co.jp", "company_name": "Acme K.K."},
        "licenses": [
            {"usage": "virtual_server", "license_type": "per_server", "quantity": 2},
            {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10},
        ],
    })
    _say(f"POST /v1/applications → {code} {answer}")
    app_url = f"{status}/v1/applications/{answer['application_id']}"
    application = _poll(app_url, key, lambda a: a.get("contract_id") is not None)
    contract_url = f"{status}/v1/contracts/{application['contract_id']}"
    seen = None
    deadline = time.monotonic() + 30
    while True:
        _, contract = _http("GET", contract_url, key)
        if contract.get("status") != seen:
            seen = contract.get("status")
            _say(f"contract {contract['contract_id']}: {contract['status_label']} ({contract['status']})")
        if seen == "active" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    application = _poll(app_url, key, lambda a: a["status"] == "completed")
    _say(f"Arcserve order ID: {contract['arcserve_order_id']['value']}  "
         f"(expected by {application['expected_completion_at']}, R12)")
    for lic in contract["licenses"]:
        _say(f"  key {lic['license_key'][:5]}-…  {lic['usage']}/{lic['license_type']}  {lic['status_label']}")

    _say("\n── demo: a cancellation of all keys (廃止申込) ──")
    code, answer = _http("POST", f"{intake}/v1/applications", key,
                         {"kind": "cancellation", "contract_id": contract["contract_id"], "scope": "all"})
    _say(f"POST /v1/applications → {code} {answer}")
    contract = _poll(contract_url, key, lambda c: c["status"] == "cancelled")
    _say(f"contract {contract['contract_id']}: {contract['status_label']} ({contract['status']}); "
         f"order ID {contract['arcserve_order_id']['value']} is {contract['arcserve_order_id']['status']}")
    _poll(f"{status}/v1/applications/{answer['application_id']}", key, lambda a: a["status"] == "completed")


def main() -> int:
    os.environ.setdefault("ARCSERVE_API_KEYS", DEMO_KEYS)
    os.environ.setdefault("ARCSERVE_STATUS_URL", f"http://127.0.0.1:{os.environ.get('STATUS_PORT', '8081')}")
    # The simulator's default is near zero; two seconds let the demo show 新規準備中.
    os.environ.setdefault("ARCSERVE_SIM_NEW_DELAY_S", "2")
    settings = Settings.from_env()
    try:
        asyncio.run(_check_broker(settings.amqp_url))
    except Exception as exc:
        _say(f"RabbitMQ does not answer at {settings.amqp_url} ({exc}): {HINT}")
        return 1
    try:
        asyncio.run(_prepare_database(settings.database_url, settings.api_keys))
    except (OSError, asyncpg.PostgresError) as exc:
        _say(f"PostgreSQL does not answer at {settings.database_url} ({exc}): {HINT}")
        return 1

    logs = ROOT / ".run"
    logs.mkdir(exist_ok=True)
    processes: list[subprocess.Popen] = []
    for name in SERVICES:
        log = open(logs / f"{name}.log", "ab")
        processes.append(subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, stdout=log, stderr=log))

    def stop_all(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        deadline = time.monotonic() + 60
        for port in (settings.intake_port, settings.status_port, settings.license_issuer_port, settings.order_id_port):
            _wait_ready(port, deadline)
        _say("arcserve-licensing is running (logs in .run/):")
        _say(f"  intake  http://127.0.0.1:{settings.intake_port}/v1/applications")
        _say(f"  status  http://127.0.0.1:{settings.status_port}/v1/contracts")
        _say(f"  workers http://127.0.0.1:{settings.license_issuer_port}/readyz, "
             f"http://127.0.0.1:{settings.order_id_port}/readyz")
        _say("  API keys: " + ", ".join(f"{tenant} → {key}" for key, tenant in settings.api_keys.items()))
        demo_key = next(iter(settings.api_keys))
        _demo(settings, demo_key)
        if "--demo-and-exit" in sys.argv:
            return 0
        _say("\nRunning; try e.g.\n"
             f"  curl -H 'Authorization: Bearer {demo_key}' http://127.0.0.1:{settings.status_port}/v1/contracts\n"
             "Ctrl-C stops every service (they drain first).")
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        _say("a service exited; see .run/*.log")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()
        codes = [p.wait(timeout=60) for p in processes]
        _say(f"services stopped (exit codes {codes})")


if __name__ == "__main__":
    sys.exit(main())
