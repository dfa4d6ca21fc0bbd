"""One application is one trace (docs/operations.md, "Observability"): its path from intake's HTTP request,
through the gate, the outbox relays and both workers, back to its completion, carries one
W3C trace id, which every service's own JSON log lines show, and which the services export
over OTLP as one tree of spans. The services run as real processes, each with its own log,
so nothing is shared but the broker and the database."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from tests.faults.processes import SERVICES, ProcessStack
from tests.faults.workload import seed_tenants
from tests.support.infra import Servers
from tests.support.otlp import SQL, Collector, tree
from tests.support.stack import eventually, new_application

ROOT = Path(__file__).resolve().parent.parent


def lines_about(log: Path, application_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("application_id") == application_id]


async def test_one_application_is_one_trace_in_every_services_logs(infrastructure: Servers, tmp_path: Path) -> None:
    hypervisor = {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 4}
    async with Collector() as collector, ProcessStack(infrastructure, tmp_path, log_level="INFO", extra_env={
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }) as system:
        [(tenant, key)] = await seed_tenants(system, 1)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(timeout=10) as client:
            # A tenant's client, untraced: where this test process traces too (the in-process
            # stack's instrumentations), it would send its own, unsampled, trace context on.
            HTTPXClientInstrumentor.uninstrument_client(client)
            answer = await client.post(system.url("intake", "/v1/applications"), headers=headers,
                                       json=new_application([hypervisor]))
            assert answer.status_code == 202, answer.text
            application_id = answer.json()["application_id"]

            async def completed() -> bool:
                got = await client.get(system.url("status", f"/v1/applications/{application_id}"), headers=headers)
                return got.status_code == 200 and got.json()["status"] == "completed"

            await eventually(completed, "the application to complete")
            await system.drained()
            scraped = {name: (await client.get(f"http://127.0.0.1:{system.metrics_ports[name]}/metrics")).text
                       for name in SERVICES}
        logs = {name: tmp_path / f"{system.prefix}{name}.log" for name in SERVICES}
    # The processes have drained and exited: every line is written, every span exported.

    about = {name: lines_about(log, application_id) for name, log in logs.items()}
    for name, lines in about.items():
        assert lines, f"{name} logged nothing about application {application_id}"
        for line in lines:
            assert line["tenant_id"] == tenant and line["trace_id"], (name, line)
    traces = {line["trace_id"] for lines in about.values() for line in lines}
    assert len(traces) == 1, f"one application, {len(traces)} traces: {about}"
    decision = [line for line in about["status"] if line.get("decision")]
    assert [line["decision"] for line in decision] == ["accepted"]
    assert any(f"application {application_id} completed" in line["message"] for line in about["status"])

    [trace_id] = traces
    spans = collector.trace(trace_id)
    assert {span.service for span in spans} == {"arcserve-intake", "arcserve-status", "arcserve-license-issuer",
                                                "arcserve-order-id"}
    ids = {span.span_id for span in spans}
    [root] = [span for span in spans if span.parent_id not in ids]  # one tree
    assert root.service == "arcserve-intake" and root.name == "POST /v1/applications"
    # The relays polled, the probes and scrapes queried meanwhile: none of that is a trace of its own.
    lone = [span for span in collector.spans if span.parent_id is None and span.name.split(" ", 1)[0] in SQL]
    assert not lone, lone[:3]
    shown = tree(spans)
    (ROOT / "test-output").mkdir(exist_ok=True)
    (ROOT / "test-output" / "trace.txt").write_text(shown + "\n")  # docs/operations.md, "Observability", shows one
    shown_metrics = [line for name, text in scraped.items() for line in text.splitlines()
                     if line.startswith("arcserve_") and not line.startswith("arcserve_http")]
    assert any(line.startswith('arcserve_application_completion_seconds_count{kind="new"} 1.0')
               for line in scraped["status"].splitlines())
    (ROOT / "test-output" / "metrics.txt").write_text("\n".join(shown_metrics) + "\n")
    (ROOT / "test-output" / "log-lines.json").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for lines in about.values() for line in lines))
