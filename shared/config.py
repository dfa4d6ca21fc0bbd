"""Configuration (pydantic-settings): one model of every setting, its environment variable,
range and meaning. README's configuration table is generated from these models
(scripts/configuration.py; a test fails while the two differ).

Each service connects with credentials of its own: `<SERVICE>_AMQP_URL` and
`<SERVICE>_DATABASE_URL` (e.g. `STATUS_AMQP_URL`), which the provisioning step created.
`AMQP_URL` and `DATABASE_URL` are the administrator's: the provisioning step, the operator
commands and the tests use them; no service does.

Built in code (`Settings(...)`), a model reads nothing from the environment: only
`from_env()` does, and it reports every bad or missing variable at once, naming each and
never echoing a value (a value may be a password).
"""
from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from shared.contracts.binding import ContentMode
from shared.messaging import nodes
from shared.secrets import secret

LOCAL_HOST = "127.0.0.1"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/arcserve"
# Bounded exponential backoff of delayed retries: attempt n waits the n-th delay; after the
# last one the message is dead-lettered.
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (1, 4, 16, 60)
TracesExporter = Literal["none", "otlp", "console"]
Port = Annotated[int, Field(ge=0, le=65535)]  # 0: any free port (the tests)
# The environment `from_env()` reads; while it is None (a model built in code) none is read.
# Shared by the portal and the services that authenticate (shared/http/vouch.py).
FORWARDING_SECRET = "ARCSERVE_FORWARDING_SECRET"
_ENVIRON: ContextVar[dict[str, str] | None] = ContextVar("arcserve_settings_environ", default=None)


def parse_api_keys(text: str) -> dict[str, str]:
    """`tenant:key,tenant:key` → {key: tenant}."""
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        tenant, sep, key = item.partition(":")
        if not sep or not tenant or not key:
            raise ValueError("must look like tenant:key,tenant:key")
        keys[key] = tenant
    return keys


def masked(url: str) -> str:
    """A URL as it may be shown: its password replaced (each node's, in a comma-separated
    broker URL; a database URL with several hosts has one)."""
    if "," in url:
        return ",".join(masked(part.strip()) for part in url.split(","))
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def env_name(name: str, info: FieldInfo) -> str:
    """The environment variable of a field: its alias, else its name in capitals."""
    return info.validation_alias if isinstance(info.validation_alias, str) else name.upper()


class _SecretFiles(PydanticBaseSettingsSource):
    """`NAME_FILE` for every secret `NAME` (as Docker and Kubernetes mount secrets): the
    file's contents, without its trailing newline, where `NAME` itself is not set."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str]):
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # all of it is in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            if info.annotation is SecretStr and (value := secret(env_name(name, info), self.environ)):
                found[name] = value
        return found


class SettingsError(SystemExit):
    """Every problem with the environment, one per line, naming the variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the configuration has problems (README, Configuration):\n"
                         + "\n".join(f"  - {problem}" for problem in problems))


class ProcessSettings(BaseSettings):
    """What every process of the system reads the same way."""

    model_config = SettingsConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, extra="ignore",
                                      env_ignore_empty=True)

    # Loopback unless told otherwise: a local run (`make run`) is reachable from this machine only, operator
    # ports included. Containers set 0.0.0.0, their own network's (docker-compose.yml, deploy/kubernetes).
    host: str = Field(LOCAL_HOST, validation_alias="ARCSERVE_HOST",
                      description="the address every HTTP port binds, operator ports included; `0.0.0.0` in "
                                  "containers (compose and Kubernetes set it)")
    drain_timeout_s: float = Field(
        25.0, gt=0, le=600, validation_alias="ARCSERVE_DRAIN_TIMEOUT_S",
        description="on SIGTERM, how long a process finishes the work in hand before it exits "
                    "(a deployment's grace period must be longer)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="LOG_LEVEL", description="the lowest level logged")
    log_format: Literal["json", "text"] = Field(
        "json", validation_alias="LOG_FORMAT",
        description="log lines on stdout: one JSON object each (with the trace and the message in hand), or text")
    traces_exporter: TracesExporter = Field(
        "none", validation_alias="OTEL_TRACES_EXPORTER",
        description="where spans go: `none`, `otlp` (to `OTEL_EXPORTER_OTLP_ENDPOINT`; the SDK reads the other "
                    "standard `OTEL_*` variables), or `console`; trace ids are in the logs either way")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is None:
            return (init_settings,)
        return init_settings, env_settings, _SecretFiles(settings_cls, environ)

    @classmethod
    def _load(cls, given: dict[str, Any], problems: list[str]) -> Any:
        """`cls` from the environment (what `given` does not say), or SettingsError with every
        problem: `problems` (found by the caller) and each variable that fails its model."""
        token = _ENVIRON.set(dict(os.environ))
        try:
            loaded = cls(**given)
        except ValidationError as exc:
            raise SettingsError([*problems, *_problems(cls, exc)]) from None
        finally:
            _ENVIRON.reset(token)
        if problems:
            raise SettingsError(problems)
        return loaded

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, validated as the model validates (unlike `model_copy`)."""
        return self.model_validate({**dict(self), **changes})

    def __repr_args__(self) -> Any:
        """Every setting but the secrets; URLs without their passwords."""
        for name, value in super().__repr_args__():
            yield name, masked(value) if name and name.endswith("_url") and isinstance(value, str) else value


def _problems(model: type[BaseSettings], exc: ValidationError) -> list[str]:
    """One line per error, naming the variable and what is wrong; never the value."""
    variables = {name: env_name(name, info) for name, info in model.model_fields.items()}
    by_alias = {alias: alias for alias in variables.values()}
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        lines.append(f"{variables.get(field) or by_alias.get(field) or field}: {error['msg']}")
    return lines


class Settings(ProcessSettings):
    """The services', the provisioning step's and the operator commands'."""

    amqp_url: str = Field(
        DEFAULT_AMQP_URL, validation_alias="AMQP_URL",
        description="the administrator's broker URL (several nodes of one cluster: comma-separated): provisioning, "
                    "operator commands, tests; a service reads its own `<SERVICE>_AMQP_URL` instead (required; `make migrate` writes it to `.run/credentials.env`)")
    database_url: str = Field(
        DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL",
        description="the administrator's database URL, likewise (a primary and its standbys: several hosts, "
                    "`postgresql://…@db-1:5432,db-2:5432/…?target_session_attrs=read-write`); a service reads its own "
                    "`<SERVICE>_DATABASE_URL`")
    management_url: str = Field(
        "", validation_alias="RABBITMQ_MANAGEMENT_URL",
        description="provisioning: the RabbitMQ management API (default: port 15672 of the AMQP host)")
    topology_prefix: str = Field(
        "", validation_alias="ARCSERVE_TOPOLOGY_PREFIX",
        description="prefix of every exchange, queue and broker user (tests and parallel stacks)")
    role_prefix: str = Field("arcserve_", min_length=1, validation_alias="ARCSERVE_DB_ROLE_PREFIX",
                             description="prefix of the Postgres roles provisioning makes")
    intake_port: Port = Field(8080, description="intake's HTTP API")
    status_port: Port = Field(8081, description="the status service's HTTP API (reads)")
    license_issuer_port: Port = Field(8082, description="the license issuer's probes")
    order_id_port: Port = Field(8083, description="the order-ID service's probes")
    intake_metrics_port: Port = Field(9080, description="intake's operator port: /metrics, /healthz, /readyz; "
                                                        "internal, never exposed to tenants")
    status_metrics_port: Port = Field(9081, description="the status service's operator port")
    license_issuer_metrics_port: Port = Field(9082, description="the license issuer's operator port")
    order_id_metrics_port: Port = Field(9083, description="the order-ID service's operator port")
    status_url: str = Field(
        "", validation_alias="ARCSERVE_STATUS_URL",
        description="public base URL of the status API; intake's `Location` header points there "
                    "(`make run` and compose: the portal's origin)")
    api_keys: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, repr=False, validation_alias="ARCSERVE_API_KEYS",
        description="`tenant:key,…`, seeded by the provisioning step (local runs and tests; "
                    "`python -m services.tools.api_keys` makes real ones)")
    id_secret: SecretStr = Field(
        SecretStr(""), validation_alias="ARCSERVE_ID_SECRET",
        description="intake: the server secret application ids are derived from `Idempotency-Key`s with "
                    "(16 characters or more; or `…_FILE`)")
    api_key_pepper: SecretStr = Field(
        SecretStr(""), validation_alias="ARCSERVE_API_KEY_PEPPER",
        description="intake, status, provisioning (seeding keys): the server secret API keys are stored and looked "
                    "up under, HMAC-SHA256 (or `…_FILE`)")
    license_key_keyring: SecretStr = Field(
        SecretStr(""), validation_alias="ARCSERVE_LICENSE_KEY_KEYRING",
        description="status and license issuer: `id:base64-key,…` (32-byte keys); the first seals license keys, "
                    "every one opens them (or `…_FILE`)")
    rate_limit_per_s: float = Field(
        50.0, ge=0, validation_alias="ARCSERVE_RATE_LIMIT_PER_S",
        description="each tenant's requests per second, per replica of intake and of the status service (0: none)")
    rate_limit_burst: int = Field(100, ge=1, validation_alias="ARCSERVE_RATE_LIMIT_BURST",
                                  description="each tenant's burst, likewise")
    auth_failure_burst: int = Field(
        10, ge=1, validation_alias="ARCSERVE_AUTH_FAILURE_BURST",
        description="wrong API keys a source address, or an API key id, may send before 429 `too_many_failures` "
                    "(per replica of intake and of the status service)")
    auth_failure_refill_s: float = Field(
        30.0, gt=0, validation_alias="ARCSERVE_AUTH_FAILURE_REFILL_S",
        description="then one more wrong key every this many seconds")
    forwarding_secret: SecretStr = Field(
        SecretStr(""), validation_alias=FORWARDING_SECRET,
        description="intake, status and the portal alike (16 characters or more; or `…_FILE`): the portal signs the "
                    "client address it forwards for with it, so failed keys count by the client's address, not the "
                    "portal's; without it they count by the portal's")
    sim_new_delay_s: float = Field(0.0, ge=0, validation_alias="ARCSERVE_SIM_NEW_DELAY_S",
                                   description="the issuance simulator's delay for new applications")
    sim_change_delay_s: float = Field(0.0, ge=0, validation_alias="ARCSERVE_SIM_CHANGE_DELAY_S",
                                      description="its delay for additions and VM-count increases")
    year_end_closure: str = Field(
        "12-29/01-03", pattern=r"^(\d\d-\d\d/\d\d-\d\d)?$", validation_alias="ARCSERVE_YEAR_END_CLOSURE",
        description="closed days for R12, `MM-DD/MM-DD` (empty: none)")
    prefetch: int = Field(8, ge=1, le=10_000, validation_alias="ARCSERVE_PREFETCH",
                          description="messages in hand per consumer")
    db_pool_size: int = Field(10, ge=1, le=1_000, validation_alias="ARCSERVE_DB_POOL_SIZE",
                              description="database connections per process")
    retry_delays_s: Annotated[tuple[float, ...], NoDecode] = Field(
        DEFAULT_RETRY_DELAYS_S, min_length=1, validation_alias="ARCSERVE_RETRY_DELAYS_S",
        description="the delayed retries a failing message gets before it is dead-lettered, seconds, e.g. `1,4,16,60`")
    cloudevents_mode: ContentMode = Field(
        "structured", validation_alias="ARCSERVE_CLOUDEVENTS_MODE",
        description="how the CloudEvents a service publishes travel: `structured` (the event is the JSON body) or "
                    "`binary` (attributes in `ce-` headers, the body is `data`); consumers read both either way")
    inbox_retention_days: float = Field(7.0, gt=0, validation_alias="ARCSERVE_INBOX_RETENTION_DAYS",
                                        description="how long handled message ids are kept")

    @field_validator("amqp_url")
    @classmethod
    def _broker_nodes(cls, value: str) -> str:
        nodes.split(value)  # one node, or several of one cluster, comma-separated
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys(cls, value: Any) -> Any:
        return parse_api_keys(value) if isinstance(value, str) else value

    @field_validator("retry_delays_s", mode="before")
    @classmethod
    def _delays(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = tuple(float(part) for part in value.split(","))
            except ValueError:
                raise ValueError("must be seconds separated by commas, e.g. 1,4,16,60") from None
        return value

    @field_validator("retry_delays_s")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every delay must be above 0")
        return value

    @classmethod
    def from_env(cls, service: str | None = None) -> Settings:
        """A service's settings (`service`: its env prefix, e.g. "STATUS"), or, without one,
        the administrator's (AMQP_URL, DATABASE_URL, with the local defaults)."""
        given: dict[str, Any] = {}
        problems: list[str] = []
        if service is not None:
            for setting in ("amqp_url", "database_url"):
                variable = f"{service}_{setting.upper()}"
                if value := os.environ.get(variable):
                    given[setting] = value
                else:
                    problems.append(
                        f"{variable} is not set: each service connects with its own credentials, which the "
                        "provisioning step creates (make migrate, or `python -m services.provisioning`)")
        loaded: Settings = cls._load(given, problems)
        return loaded

    def ports_of(self, service: str) -> tuple[int, int]:
        """A service's public port and its internal operator port (0: any free one)."""
        key = service.replace("-", "_")
        return getattr(self, f"{key}_port"), getattr(self, f"{key}_metrics_port")
