"""A minimal OTLP/HTTP trace receiver for the tests (`POST /v1/traces`, protobuf, as the
OpenTelemetry SDK's exporter sends): what the services export, kept as plain spans."""
from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.http.server import HttpServer


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int


@dataclass
class Collector:
    spans: list[Span] = field(default_factory=list)

    async def __aenter__(self) -> Collector:
        self._server = HttpServer(Starlette(routes=[Route("/v1/traces", self._export, methods=["POST"])]),
                                  host="127.0.0.1", port=0, name="otlp-collector", grace_s=1)
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.bound_port}"

    async def _export(self, request: Request) -> Response:
        sent = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in sent.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(Span(
                        attributes.get("service.name", "?"), span.trace_id.hex(), span.span_id.hex(),
                        span.parent_span_id.hex() or None, span.name, span.start_time_unix_nano, span.end_time_unix_nano,
                    ))
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[Span]:
        return sorted((s for s in self.spans if s.trace_id == trace_id), key=lambda s: s.start_ns)


SQL = ("SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN;", "COMMIT;", "ROLLBACK;", "LISTEN")


def tree(spans: list[Span]) -> str:
    """The spans of one trace as an indented tree: service, span name, duration; a run of
    database calls (a span each) is folded into one line."""
    children: dict[str | None, list[Span]] = {}
    ids = {s.span_id for s in spans}
    for span in spans:
        children.setdefault(span.parent_id if span.parent_id in ids else None, []).append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        calls: list[Span] = []

        def fold() -> None:
            if calls:
                spent = sum(c.end_ns - c.start_ns for c in calls) / 1e6
                lines.append(f"{'  ' * depth}{calls[0].service}: {len(calls)} database calls ({spent:.1f} ms)")
                calls.clear()

        for span in children.get(parent, []):
            if span.name.split(" ", 1)[0] in SQL and span.span_id not in children:
                calls.append(span)
                continue
            fold()
            lines.append(f"{'  ' * depth}{span.service}: {span.name} ({(span.end_ns - span.start_ns) / 1e6:.1f} ms)")
            walk(span.span_id, depth + 1)
        fold()

    walk(None, 0)
    return "\n".join(lines)
