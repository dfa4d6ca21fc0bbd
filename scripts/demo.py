"""The demo every way of running the stack ends with: a new application goes 新規準備中 →
提供中, then a cancellation of all its keys makes the contract 廃止済 (R1, R9). It talks to
the public HTTP API only, so it runs against `make run`'s processes and against the
compose stack's published ports alike:

    python scripts/demo.py --intake http://127.0.0.1:8080 --status http://127.0.0.1:8081 --key acme-demo-key

`--wait S` first waits up to S seconds for both services' /readyz.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

PRODUCT = "arcserve-udp-10"


def say(text: str) -> None:
    print(text, flush=True)


def http(method: str, url: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_ready(base_url: str, deadline: float) -> None:
    """Wait until `base_url/readyz` answers 200, or exit naming the service."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{base_url} did not become ready")


def poll(url: str, key: str, done: Callable[[dict], bool], deadline_s: float = 30.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        status, body = http("GET", url, key)
        if status == 200 and done(body):
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting on {url}: last answer {status} {body}")
        time.sleep(0.2)


def run(intake: str, status: str, key: str) -> None:
    # A demo interrupted earlier may have left a live contract (R2): cancel it first.
    _, page = http("GET", f"{status}/v1/contracts?status=active", key)
    for item in page.get("items", []):
        if item["product"]["code"] == PRODUCT:
            http("POST", f"{intake}/v1/applications", key,
                 {"kind": "cancellation", "contract_id": item["contract_id"], "scope": "all"})
            poll(f"{status}/v1/contracts/{item['contract_id']}", key, lambda c: c["status"] == "cancelled")

    say("\n── demo: a new application (新規申込) ──")
    code, answer = http("POST", f"{intake}/v1/applications", key, {
        "kind": "new", "product": PRODUCT,
        "contact": {"email": "ops@example.co.jp", "company_name": "Acme K.K."},
        "licenses": [
            {"usage": "virtual_server", "license_type": "per_server", "quantity": 2},
            {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10},
        ],
    })
    say(f"POST /v1/applications → {code} {answer}")
    if code != 202:
        raise SystemExit("the application was not accepted")
    app_url = f"{status}/v1/applications/{answer['application_id']}"
    application = poll(app_url, key, lambda a: a.get("contract_id") is not None)
    contract_url = f"{status}/v1/contracts/{application['contract_id']}"
    seen: Any = None
    deadline = time.monotonic() + 30
    while True:
        _, contract = http("GET", contract_url, key)
        if contract.get("status") != seen:
            seen = contract.get("status")
            say(f"contract {contract['contract_id']}: {contract['status_label']} ({contract['status']})")
        if seen == "active" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    application = poll(app_url, key, lambda a: a["status"] == "completed")
    say(f"Arcserve order ID: {contract['arcserve_order_id']['value']}  "
        f"(expected by {application['expected_completion_at']}, R12)")
    for lic in contract["licenses"]:
        say(f"  key {lic['license_key'][:5]}-…  {lic['usage']}/{lic['license_type']}  {lic['status_label']}")

    say("\n── demo: a cancellation of all keys (廃止申込) ──")
    code, answer = http("POST", f"{intake}/v1/applications", key,
                        {"kind": "cancellation", "contract_id": contract["contract_id"], "scope": "all"})
    say(f"POST /v1/applications → {code} {answer}")
    contract = poll(contract_url, key, lambda c: c["status"] == "cancelled")
    say(f"contract {contract['contract_id']}: {contract['status_label']} ({contract['status']}); "
        f"order ID {contract['arcserve_order_id']['value']} is {contract['arcserve_order_id']['status']}")
    poll(f"{status}/v1/applications/{answer['application_id']}", key, lambda a: a["status"] == "completed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intake", default="http://127.0.0.1:8080", help="intake's base URL")
    parser.add_argument("--status", default="http://127.0.0.1:8081", help="the status service's base URL")
    parser.add_argument("--key", default="acme-demo-key", help="a tenant's API key")
    parser.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for /readyz")
    args = parser.parse_args()
    if args.wait:
        deadline = time.monotonic() + args.wait
        for base_url in (args.intake, args.status):
            wait_ready(base_url, deadline)
    run(args.intake.rstrip("/"), args.status.rstrip("/"), args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
