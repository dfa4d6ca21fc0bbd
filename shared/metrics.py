"""Prometheus metrics, defined once per process (the test stack runs every service in one)."""
from prometheus_client import Counter, Histogram

MESSAGES = Counter(
    "arcserve_messages_total", "Messages consumed, by queue and outcome", ["queue", "outcome"]
)
OUTBOX_PUBLISHED = Counter("arcserve_outbox_published_total", "Outbox messages published", ["publisher"])
APPLICATIONS_SUBMITTED = Counter(
    "arcserve_applications_submitted_total", "Applications accepted by intake (202)", ["kind"]
)
DECISIONS = Counter(
    "arcserve_application_decisions_total", "Applications decided by the status gate", ["kind", "outcome"]
)
HTTP_LATENCY = Histogram(
    "arcserve_http_request_seconds", "HTTP request latency", ["service", "route", "status"]
)
