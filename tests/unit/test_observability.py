"""Log lines (shared/observability/logs.py), which spans are kept (tracing.py) and metric
labels (shared/metrics.py, shared/http/observe.py), without I/O."""
from __future__ import annotations

import json
import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from starlette.types import Message, Receive, Scope, Send

from shared import metrics
from shared.http.observe import Observe
from shared.observability import logs
from shared.observability.tracing import TracesOfWork, sampler_for


def _line(formatter: logging.Formatter, message: str, **extra: object) -> str:
    record = logging.makeLogRecord({"name": "services.status.handlers", "levelno": logging.INFO,
                                    "levelname": "INFO", "msg": message, **extra})
    logs.ContextFilter("status").filter(record)
    return formatter.format(record)


def test_a_line_about_a_message_carries_all_its_fields_and_its_own() -> None:
    with logs.message_fields(message_id="m-1", queue="arcserve.status.submissions"):
        logs.bind(tenant_id="acme", application_id="a-1")
        line = json.loads(_line(logs.JsonFormatter(), "decided", decision="accepted", color_message="\x1b[36m"))
    assert line["service"] == "status" and line["message"] == "decided" and line["decision"] == "accepted"
    assert {k: line[k] for k in logs.MESSAGE_FIELDS} == {"message_id": "m-1", "tenant_id": "acme",
                                                          "contract_id": None, "application_id": "a-1"}
    assert "trace_id" in line and "color_message" not in line
    after = json.loads(_line(logs.JsonFormatter(), "next"))  # the block ended: the next line is nobody's
    assert "message_id" not in after and "tenant_id" not in after


def test_a_terminal_line_shows_the_fields_that_are_set() -> None:
    with logs.message_fields(message_id="m-2"):
        text = _line(logs.TextFormatter(), "handled")
    assert text.endswith("services.status.handlers: handled [message_id=m-2]")


def test_dead_letter_reasons_become_bounded_labels() -> None:
    assert metrics.reason_code("not_json: Expecting value: line 1 column 1") == "not_json"
    assert metrics.reason_code("retries_exhausted: handler_error: KeyError('x')") == "retries_exhausted"
    assert metrics.reason_code("Something odd: with text") == "other"
    assert metrics.reason_code("") == "other"


def test_a_trace_starts_at_work_never_at_a_lone_database_call() -> None:
    sampler = TracesOfWork()
    assert sampler.should_sample(None, 1, "SELECT", SpanKind.CLIENT).decision is Decision.DROP  # an idle poll
    assert sampler.should_sample(None, 1, "POST /v1/applications", SpanKind.SERVER).decision.is_sampled()
    assert sampler.should_sample(None, 1, "arcserve.events receive", SpanKind.CONSUMER).decision.is_sampled()
    within = trace.set_span_in_context(NonRecordingSpan(SpanContext(1, 2, is_remote=True,
                                                                    trace_flags=TraceFlags(TraceFlags.SAMPLED))))
    assert sampler.should_sample(within, 1, "SELECT", SpanKind.CLIENT).decision.is_sampled()  # inside a request


async def test_any_method_a_client_invents_is_one_label() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    observed = Observe(app, service="unit")
    for method in ("GET", "ZZ0", "ZZ1", "BREW"):
        await observed({"type": "http", "method": method, "path": "/x"}, receive, send)
    series = {sample.labels["method"] for family in metrics.HTTP_SECONDS.collect() for sample in family.samples
              if sample.labels.get("service") == "unit" and sample.name.endswith("_count")}
    assert series == {"GET", "other"}


def test_without_an_exporter_nothing_is_recorded_but_every_trace_id_is_made(monkeypatch: Any) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    quiet = sampler_for("none")
    assert quiet is not None and quiet.should_sample(None, 1, "POST", SpanKind.SERVER).decision is Decision.DROP
    assert isinstance(sampler_for("otlp"), TracesOfWork)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    assert sampler_for("otlp") is None  # the operator's choice, which the SDK reads itself
    provider = TracerProvider(sampler=quiet)
    with provider.get_tracer("t").start_as_current_span("request") as span:
        assert not span.is_recording() and span.get_span_context().is_valid  # an id for the log lines
