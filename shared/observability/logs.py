"""Structured logs: one JSON object per line on stdout (or plain text for a terminal), each
with the process's service, the current trace and span ids, and the fields of what is in
hand: a consumer binds a message's `message_id`, `tenant_id`, `contract_id` and
`application_id` while it handles it, so every line about a message says which one.

    with log_fields(application_id=..., contract_id=...):
        log.info("…")                      # carries both, and trace_id

Fields live in a context variable: each message and each request has its own task, so
they never leak from one to another. A line's `extra={...}` adds fields of its own.
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, TextIO

from opentelemetry import trace

# What a line about a message always carries (null where the message names none).
MESSAGE_FIELDS = ("message_id", "tenant_id", "contract_id", "application_id")
_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar("arcserve_log_fields", default=MappingProxyType({}))
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
Format = Literal["json", "text"]


@contextlib.contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged inside the block (in this task)."""
    token = _FIELDS.set({**_FIELDS.get(), **fields})
    try:
        yield
    finally:
        _FIELDS.reset(token)


@contextlib.contextmanager
def message_fields(**fields: Any) -> Iterator[None]:
    """The fields of a message in hand: all of MESSAGE_FIELDS, null where unknown."""
    with log_fields(**{**dict.fromkeys(MESSAGE_FIELDS), **fields}):
        yield


def bind(**fields: Any) -> None:
    """Add fields for the rest of the current block (e.g. a contract id a handler just
    learnt); undone when the enclosing `log_fields` block ends."""
    _FIELDS.set({**_FIELDS.get(), **fields})


def current_fields() -> Mapping[str, Any]:
    return _FIELDS.get()


class ContextFilter(logging.Filter):
    """Puts the service, the trace and the bound fields on every record."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        record.span_id = format(span.span_id, "016x") if span.is_valid else None
        record.fields = dict(_FIELDS.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": getattr(record, "service", None),
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
            **getattr(record, "fields", {}),
            **{k: v for k, v in vars(record).items() if k not in _STANDARD and k not in _OURS},
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


# Ours, set by ContextFilter; and uvicorn's copy of each message with terminal colours.
_OURS = {"service", "trace_id", "span_id", "fields", "color_message"}


class TextFormatter(logging.Formatter):
    """For a terminal: the classic line, then the fields that are set."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = {**getattr(record, "fields", {}),
                  **{k: v for k, v in vars(record).items() if k not in _STANDARD and k not in _OURS}}
        shown = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return f"{text} [{shown}]" if shown else text


def configure(service: str, level: str = "INFO", fmt: Format = "json", stream: TextIO | None = None) -> None:
    """The process's logging: one handler on stdout (or `stream`), with the service's context."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(ContextFilter(service))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for chatty in ("aiormq", "aio_pika"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
