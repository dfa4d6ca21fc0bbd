"""Configuration from the environment (one place; every service reads it the same way).

Each service connects with credentials of its own: `<SERVICE>_AMQP_URL` and
`<SERVICE>_DATABASE_URL` (e.g. `STATUS_AMQP_URL`), which the provisioning step created.
`AMQP_URL` and `DATABASE_URL` are the administrator's: the provisioning step, the operator
commands and the tests use them; no service does."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from shared.secrets import secret

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/arcserve"
# Bounded exponential backoff of delayed retries: attempt n waits the n-th delay; after the
# last one the message is dead-lettered.
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (1, 4, 16, 60)


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _delays(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = os.environ.get(name, "")
    try:
        delays = tuple(float(part) for part in raw.split(",")) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be seconds separated by commas, e.g. 1,4,16,60; got {raw!r}") from None
    if not delays or any(d <= 0 for d in delays):
        raise SystemExit(f"{name} needs at least one delay, each above 0; got {raw!r}")
    return delays


def traces_exporter() -> Literal["none", "otlp", "console"]:
    raw = os.environ.get("OTEL_TRACES_EXPORTER") or "none"
    if raw not in ("none", "otlp", "console"):
        raise SystemExit(f"OTEL_TRACES_EXPORTER must be none, otlp or console, got {raw!r}")
    return raw  # type: ignore[return-value]


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(
            f"{name} is not set: each service connects with its own credentials, which the provisioning "
            "step creates (make migrate, or `python -m services.provisioning`); see README, Configuration"
        )
    return value


def parse_api_keys(text: str) -> dict[str, str]:
    """`tenant:key,tenant:key` → {key: tenant}."""
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        tenant, sep, key = item.partition(":")
        if not sep or not tenant or not key:
            raise SystemExit("ARCSERVE_API_KEYS must look like tenant:key,tenant:key")
        keys[key] = tenant
    return keys


def masked(url: str) -> str:
    """A URL as it may be shown: its password replaced."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


@dataclass(frozen=True, repr=False)
class Settings:
    amqp_url: str = DEFAULT_AMQP_URL
    database_url: str = DEFAULT_DATABASE_URL
    management_url: str = ""  # the RabbitMQ management API (provisioning): default, port 15672 of the AMQP host
    topology_prefix: str = ""  # prepended to every exchange, queue and broker user (tests isolate by it)
    role_prefix: str = "arcserve_"  # of the Postgres roles the provisioning step makes
    intake_port: int = 8080
    status_port: int = 8081
    license_issuer_port: int = 8082
    order_id_port: int = 8083
    # The internal operator ports (/metrics, /healthz, /readyz), never exposed to tenants.
    intake_metrics_port: int = 9080
    status_metrics_port: int = 9081
    license_issuer_metrics_port: int = 9082
    order_id_metrics_port: int = 9083
    host: str = "0.0.0.0"
    status_url: str = ""  # public base URL of the status API, for intake's Location header
    api_keys: dict[str, str] = field(default_factory=dict, repr=False)  # key → tenant; never logged
    # Intake: the server secret its application ids are derived with (ARCSERVE_ID_SECRET).
    id_secret: str = field(default="", repr=False)
    # Intake, status, provisioning: the pepper API keys are stored and looked up under (HMAC).
    api_key_pepper: str = field(default="", repr=False)
    # Intake and status: each tenant's requests per second and burst, per replica
    # (shared/http/ratelimit.py says why per replica); 0 turns the limit off.
    rate_limit_per_s: float = 50.0
    rate_limit_burst: int = 100
    # License issuer and status: the keyring license keys are sealed with (shared/sealing.py).
    license_key_keyring: str = field(default="", repr=False)
    sim_new_delay_s: float = 0.0
    sim_change_delay_s: float = 0.0
    year_end_closure: str = "12-29/01-03"
    prefetch: int = 8  # per consumer; a few more in hand than pool connections keeps both busy
    db_pool_size: int = 10
    drain_timeout_s: float = 25.0
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    inbox_retention_days: float = 7.0
    traces_exporter: Literal["none", "otlp", "console"] = "none"  # OTEL_TRACES_EXPORTER

    @classmethod
    def from_env(cls, service: str | None = None) -> Settings:
        """A service's settings (`service`: its env prefix, e.g. "STATUS"), or, without one,
        the administrator's (AMQP_URL, DATABASE_URL, with the local defaults)."""
        env = os.environ.get
        if service is None:
            amqp_url = env("AMQP_URL") or DEFAULT_AMQP_URL
            database_url = env("DATABASE_URL") or DEFAULT_DATABASE_URL
        else:
            amqp_url, database_url = _required(f"{service}_AMQP_URL"), _required(f"{service}_DATABASE_URL")
        return cls(
            amqp_url=amqp_url,
            database_url=database_url,
            management_url=env("RABBITMQ_MANAGEMENT_URL", ""),
            topology_prefix=env("ARCSERVE_TOPOLOGY_PREFIX", ""),
            role_prefix=env("ARCSERVE_DB_ROLE_PREFIX") or "arcserve_",
            intake_port=env_int("INTAKE_PORT", 8080),
            status_port=env_int("STATUS_PORT", 8081),
            license_issuer_port=env_int("LICENSE_ISSUER_PORT", 8082),
            order_id_port=env_int("ORDER_ID_PORT", 8083),
            intake_metrics_port=env_int("INTAKE_METRICS_PORT", 9080),
            status_metrics_port=env_int("STATUS_METRICS_PORT", 9081),
            license_issuer_metrics_port=env_int("LICENSE_ISSUER_METRICS_PORT", 9082),
            order_id_metrics_port=env_int("ORDER_ID_METRICS_PORT", 9083),
            host=env("ARCSERVE_HOST") or "0.0.0.0",
            status_url=env("ARCSERVE_STATUS_URL", ""),
            api_keys=parse_api_keys(env("ARCSERVE_API_KEYS", "")),
            id_secret=secret("ARCSERVE_ID_SECRET"),
            license_key_keyring=secret("ARCSERVE_LICENSE_KEY_KEYRING"),
            api_key_pepper=secret("ARCSERVE_API_KEY_PEPPER"),
            rate_limit_per_s=env_float("ARCSERVE_RATE_LIMIT_PER_S", 50.0),
            rate_limit_burst=env_int("ARCSERVE_RATE_LIMIT_BURST", 100),
            sim_new_delay_s=env_float("ARCSERVE_SIM_NEW_DELAY_S", 0.0),
            sim_change_delay_s=env_float("ARCSERVE_SIM_CHANGE_DELAY_S", 0.0),
            year_end_closure=env("ARCSERVE_YEAR_END_CLOSURE", "12-29/01-03"),  # the status service reads it
            prefetch=env_int("ARCSERVE_PREFETCH", 8),
            db_pool_size=env_int("ARCSERVE_DB_POOL_SIZE", 10),
            drain_timeout_s=env_float("ARCSERVE_DRAIN_TIMEOUT_S", 25.0),
            inbox_retention_days=env_float("ARCSERVE_INBOX_RETENTION_DAYS", 7.0),
            retry_delays_s=_delays("ARCSERVE_RETRY_DELAYS_S", DEFAULT_RETRY_DELAYS_S),
            traces_exporter=traces_exporter(),
        )

    def ports_of(self, service: str) -> tuple[int, int]:
        """A service's public port and its internal operator port (0: any free one)."""
        key = service.replace("-", "_")
        return getattr(self, f"{key}_port"), getattr(self, f"{key}_metrics_port")

    def __repr__(self) -> str:
        """Every setting but the secrets; URLs without their passwords."""
        shown = [f"{f.name}={masked(value) if f.name.endswith('_url') else value!r}"
                 for f in fields(self) if f.repr and (value := getattr(self, f.name)) is not None]
        return f"Settings({', '.join(shown)})"
