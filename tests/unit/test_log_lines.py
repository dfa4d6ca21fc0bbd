"""Log lines (shared/observability/logs.py) and metric labels (shared/metrics.py), without I/O."""
from __future__ import annotations

import json
import logging

from shared import metrics
from shared.observability import logs


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
