"""Traces across HTTP and AMQP (OpenTelemetry): one application's path through intake, the
status service, the workers and back is one trace.

- HTTP: the FastAPI instrumentation makes a server span per request, continuing a caller's
  W3C `traceparent` (the portal's httpx client sends it on what it forwards).
- AMQP: the aio-pika instrumentation puts `traceparent` into every published message's
  headers and continues it in the consumer; a retry or dead-letter copy carries it on.
- The outbox: a message written in a transaction is published later by the relay, so the
  row keeps the `traceparent` of the work that wrote it (`current_traceparent`) and the
  relay publishes it inside that trace again (`continued`).
- asyncpg: a span per query (statements only, never their parameters), when exporting.

Spans are recorded only when they leave the process, as `OTEL_TRACES_EXPORTER` says (`otlp`,
to `OTEL_EXPORTER_OTLP_ENDPOINT`; `console` for a look by hand); without an exporter only the
trace context is made, which is what gives every log line its trace id and every message
its `traceparent`. The SDK reads the other standard OTEL_* variables (sampler, resource).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from shared.config import TracesExporter

# Probes and scrapes are no one's work: no spans for them.
UNTRACED_URLS = "/healthz,/readyz,/metrics"
_provider: TracerProvider | None = None


def configure(service: str, exporter: TracesExporter = "none") -> TracerProvider:
    """The process's tracer provider and instrumentations, once (the tests run every
    service in one process: the first one names it)."""
    global _provider
    if _provider is None:
        name = os.environ.get("OTEL_SERVICE_NAME") or f"arcserve-{service}"
        _provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}), sampler=sampler_for(exporter))
        trace.set_tracer_provider(_provider)
        AioPikaInstrumentor().instrument(tracer_provider=_provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=_provider)
        if exporter != "none":  # a span per query is for a trace someone sees; without one it only costs
            AsyncPGInstrumentor().instrument(tracer_provider=_provider)
        if exporter != "none":
            _provider.add_span_processor(_processor(exporter))
    return _provider


def sampler_for(exporter: TracesExporter) -> Sampler | None:
    """What is recorded. Exporting: every span of a request's or a message's trace
    (TracesOfWork), unless the operator chose a sampler (OTEL_TRACES_SAMPLER, which the SDK
    reads itself). Not exporting: nothing, since a span nobody will see costs hundreds of µs
    per message; its context is made all the same, so trace ids still reach every log line
    and every message's `traceparent`."""
    if exporter == "none":
        return ALWAYS_OFF
    return None if os.environ.get("OTEL_TRACES_SAMPLER") else TracesOfWork()


class TracesOfWork(Sampler):
    """Every span of a request's or a message's trace; no trace that a client call would
    start on its own: the relay's idle polls, probes, scrapes and housekeeping query the
    database every second, and each would be a trace of one span."""

    def __init__(self) -> None:
        self._within = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context: context.Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None, links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        if kind is SpanKind.CLIENT and not trace.get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self._within.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "TracesOfWork"


def _processor(exporter: TracesExporter) -> SpanProcessor:
    if exporter == "otlp":
        # Imported here: the exporter pulls in protobuf, which a process that does not export needs not load.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return BatchSpanProcessor(OTLPSpanExporter())
    return BatchSpanProcessor(ConsoleSpanExporter())


def instrument(app: FastAPI) -> None:
    """A server span per request of `app` (once `configure` has run)."""
    assert _provider is not None, "configure() first"
    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls=UNTRACED_URLS)


def shutdown() -> None:
    """Flush what is still to be exported (at the end of the process)."""
    if _provider is not None:
        _provider.shutdown()


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the span in hand, to be continued later (an outbox row)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Inside the block, the trace of `traceparent` is the current one (nothing changes
    without one)."""
    if not traceparent:
        yield
        return
    token = context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)
