"""The demo every way of running the stack ends with: a new application goes 新規準備中 →
提供中, then a cancellation of all its keys makes the contract 廃止済 (R1, R9). It talks to
the public HTTP API only, so it runs against `make run`'s processes and against the
compose stack's published ports alike:

    python scripts/demo.py --intake http://127.0.0.1:8080 --status http://127.0.0.1:8081 --key acme-demo-key

`--wait S` first waits up to S seconds for both services' /readyz. With `--console URL
--operator-key KEY` (a deployment with `ARCSERVE_FULFILMENT=back-office`), the demo plays the
provider's operator too: it finds the new application's task in the back-office console and
types in an order ID and a key per license, as an operator would from what Arcserve delivered,
and once the contract is cancelled, confirms its revocation at Arcserve there.
"""
from __future__ import annotations

import argparse
import json
import secrets
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


def delivered(task: dict) -> dict:
    """What Arcserve would deliver for a task: well-formed, made up for the demo."""
    def part(n: int) -> str:
        return "".join(secrets.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(n))

    body: dict[str, Any] = {"license_keys": [{"license_id": lic["license_id"],
                                              "license_key": "-".join(part(5) for _ in range(5))}
                                             for lic in task["needs"]["licenses"]]}
    if task["needs"]["arcserve_order_id"]:
        body["arcserve_order_id"] = f"ARC-{time.strftime('%Y%m%d')}-{part(5)}-{part(5)}"
    return body


def fulfil_in_console(console: str, operator_key: str, application_id: str) -> None:
    """The operator's part: the application's task, fulfilled through the console's API."""
    task = poll(f"{console}/ops/v1/fulfilments/{application_id}", operator_key, lambda t: t.get("state") == "open")
    say(f"back office: task {application_id} ({task['kind']}), due {task['due_at']}, needs "
        f"{'an order ID and ' if task['needs']['arcserve_order_id'] else ''}{len(task['needs']['licenses'])} keys")
    code, answer = http("POST", f"{console}/ops/v1/fulfilments/{application_id}/fulfil", operator_key, delivered(task))
    say(f"POST /ops/v1/fulfilments/{application_id}/fulfil → {code} {answer.get('state')}")
    if code != 200:
        raise SystemExit(f"the console refused the fulfilment: {answer}")


def run(intake: str, status: str, key: str, console: tuple[str, str] | None = None) -> None:
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
            if seen == "preparing" and console is not None:
                fulfil_in_console(*console, answer["application_id"])
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
    if console is not None:
        confirm_in_console(*console, answer["application_id"])


def confirm_in_console(console: str, operator_key: str, application_id: str) -> None:
    """The operator's part of a cancellation: revoked at Arcserve, confirmed in the console."""
    revocation = poll(f"{console}/ops/v1/revocations/{application_id}", operator_key,
                      lambda r: r.get("state") == "open")
    say(f"back office: revoke {len(revocation['licenses'])} keys at Arcserve (ending "
        f"{', '.join(lic['key_ends_with'] for lic in revocation['licenses'])}) and cancel order ID "
        f"{revocation['arcserve_order_id']}")
    code, answer = http("POST", f"{console}/ops/v1/revocations/{application_id}/confirm", operator_key)
    say(f"POST /ops/v1/revocations/{application_id}/confirm → {code} {answer.get('state')}")
    if code != 200:
        raise SystemExit(f"the console refused the confirmation: {answer}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intake", default="http://127.0.0.1:8080", help="intake's base URL")
    parser.add_argument("--status", default="http://127.0.0.1:8081", help="the status service's base URL")
    parser.add_argument("--key", default="acme-demo-key", help="a tenant's API key")
    parser.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for /readyz")
    parser.add_argument("--console", help="the back-office console's base URL (ARCSERVE_FULFILMENT=back-office)")
    parser.add_argument("--operator-key", help="a fulfiller's operator key, with --console")
    args = parser.parse_args()
    if bool(args.console) != bool(args.operator_key):
        parser.error("--console and --operator-key go together")
    if args.wait:
        deadline = time.monotonic() + args.wait
        for base_url in (args.intake, args.status):
            wait_ready(base_url, deadline)
    run(args.intake.rstrip("/"), args.status.rstrip("/"), args.key,
        (args.console.rstrip("/"), args.operator_key) if args.console else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
