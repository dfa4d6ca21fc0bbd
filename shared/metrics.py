"""Prometheus metrics, defined once per process (the test stack runs every service in one,
told apart by their `service` or `queue` label). Served on each process's internal
metrics port, never on its public one (shared/runtime.py)."""
from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # a `_created` series per counter doubles the scrape for no question anyone asks

MESSAGES = Counter(
    "arcserve_messages_total", "Messages consumed, by queue and outcome", ["queue", "outcome"]
)
HANDLER_SECONDS = Histogram(
    "arcserve_handler_duration_seconds", "From delivery to settlement of a consumed message, by queue and outcome",
    ["queue", "outcome"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UNIT_OF_WORK_MESSAGES = Histogram(
    "arcserve_unit_of_work_messages", "Messages one transaction of a consumer carried (group commit), by queue",
    ["queue"], buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
INBOX_DUPLICATES = Counter(
    "arcserve_inbox_duplicates_total",
    "Messages a consumer had handled already (redelivered or published twice): absorbed, no second effect",
    ["queue"],
)
DEAD_LETTERED = Counter(
    "arcserve_dead_lettered_total", "Messages dead-lettered, by queue and reason code", ["queue", "reason"]
)
FULFILMENTS = Counter("arcserve_fulfilments_total", "Fulfilment requests completed, by service and by where the "
                      "result came from", ["service", "source"])
FULFILMENT_OPEN = Gauge("arcserve_fulfilment_open", "Fulfilment tasks waiting for their result, by kind and by where it "
                        "is to come from (read at scrape time)", ["kind", "source"])
FULFILMENT_OVERDUE = Gauge("arcserve_fulfilment_overdue", "Those of them past their due time, R12's expected completion "
                           "(read at scrape time)", ["kind", "source"])
REVOCATIONS = Counter("arcserve_revocations_total", "Revocations at Arcserve confirmed, by where the confirmation "
                      "came from", ["source"])
REVOCATIONS_OPEN = Gauge("arcserve_revocations_open", "Revocations at Arcserve not confirmed yet (read at scrape time)",
                         ["source"])
OUTBOX_PUBLISHED = Counter("arcserve_outbox_published_total", "Outbox messages published", ["service"])
OUTBOX_BACKLOG = Gauge("arcserve_outbox_backlog", "Outbox rows not yet published (read at scrape time)", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "arcserve_outbox_oldest_age_seconds", "Age of the oldest outbox row not yet published; 0 when none (at scrape time)",
    ["service"],
)
APPLICATIONS_SUBMITTED = Counter(
    "arcserve_applications_submitted_total", "Applications accepted by intake (202)", ["kind"]
)
DECISIONS = Counter(
    "arcserve_application_decisions_total", "Applications decided by the status gate", ["kind", "outcome"]
)
# R12 promises days for `new`; the simulator answers at once, so the buckets span both.
COMPLETION_SECONDS = Histogram(
    "arcserve_application_completion_seconds", "From receipt of a submission to its application completed, by kind",
    ["kind"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400, 432000),
)
HTTP_SECONDS = Histogram(
    "arcserve_http_request_duration_seconds", "HTTP requests, by service, method, route and status",
    ["service", "method", "route", "status"],
)

_CODE = re.compile(r"[a-z][a-z_]{0,39}")


def reason_code(reason: str) -> str:
    """A dead letter's reason as a label: its leading code (`not_json`, `unauthorized_publisher`,
    `retries_exhausted`, …), never its free text, which would make a series per message."""
    head = reason.split(":", 1)[0].strip()
    return head if _CODE.fullmatch(head) else "other"
