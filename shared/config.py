"""Configuration (pydantic-settings): the loading and validation every process's settings
share (`SettingsModel`): `from_env()` reads the environment and reports every bad or missing
variable at once, naming each and never echoing a value (a value may be a password); built
in code (`IntakeSettings(...)`), a model reads nothing from the environment.

Each process has a model of its own beside its code, holding only what it reads
(services/<service>/config.py, services/portal/config.py, services/provisioning/config.py,
services/tools/config.py); docs/configuration.md is generated from them, a section per
process (scripts/configuration.py; a test fails while the two differ). Here, the parts
several processes share:

- `ProcessSettings`: what every long-running process (a service, the portal) reads the same
  way: where it binds, its drain, its logs and traces.
- `ServiceSettings`: what the shared runtime (shared/runtime.py) reads of a service. Each
  service connects with credentials of its own, `<SERVICE>_AMQP_URL` and
  `<SERVICE>_DATABASE_URL` (e.g. `STATUS_AMQP_URL`), which the provisioning step created,
  and serves on `<SERVICE>_PORT` and `<SERVICE>_METRICS_PORT`: its model sets the prefix.
- `ApiSettings`: what a service with a tenants' API reads for the shared authenticator
  (shared/http/auth.py): the pepper, the rate limits, the failure throttle, the forwarding secret.
- `AdministratorSettings`: the administrator's `AMQP_URL` and `DATABASE_URL`, which the
  provisioning step, the operator commands and the tests use; no service does.
- the variables several processes read alike (`ApiKeyPepper`, `LicenseKeyKeyring`,
  `RetryDelays`, ...), as annotated types a model gives a field.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from shared.contracts.binding import ContentMode
from shared.messaging import nodes
from shared.secrets import MissingSecret, secret

LOCAL_HOST = "127.0.0.1"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/arcserve"
# Bounded exponential backoff of delayed retries: attempt n waits the n-th delay; after the
# last one the message is dead-lettered.
DEFAULT_RETRY_DELAYS_S: tuple[float, ...] = (1, 4, 16, 60)
TracesExporter = Literal["none", "otlp", "console"]
Port = Annotated[int, Field(ge=0, le=65535)]  # 0: any free port (the tests)
# Shared by the portal and the services that authenticate (shared/http/vouch.py).
FORWARDING_SECRET = "ARCSERVE_FORWARDING_SECRET"
# The environment `from_env()` reads; while it is None (a model built in code) none is read.
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


def variables(model: type[BaseSettings]) -> dict[str, str]:
    """Each field's environment variable: its alias, else the model's prefix and its name in
    capitals (a service's `port` is `INTAKE_PORT`)."""
    prefix = model.model_config.get("env_prefix") or ""
    return {name: env_name(name, info, prefix) for name, info in model.model_fields.items()}


def env_name(name: str, info: FieldInfo, prefix: str = "") -> str:
    """The environment variable of a field: its alias, else `prefix` and its name in capitals."""
    return info.validation_alias if isinstance(info.validation_alias, str) else f"{prefix}{name}".upper()


# ---- variables of their own types ----------------------------------------------------------
def _broker_nodes(value: str) -> str:
    nodes.split(value)  # one node, or several of one cluster, comma-separated
    return value


def _seconds_list(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return tuple(float(part) for part in value.split(","))
        except ValueError:
            raise ValueError("must be seconds separated by commas, e.g. 1,4,16,60") from None
    return value


def _positive(value: tuple[float, ...]) -> tuple[float, ...]:
    if any(delay <= 0 for delay in value):
        raise ValueError("every delay must be above 0")
    return value


BrokerUrl = Annotated[str, AfterValidator(_broker_nodes)]
RetryDelays = Annotated[
    tuple[float, ...], NoDecode, BeforeValidator(_seconds_list), AfterValidator(_positive),
    Field(min_length=1, validation_alias="ARCSERVE_RETRY_DELAYS_S",
          description="the delayed retries a failing message gets before it is dead-lettered, seconds, "
                      "e.g. `1,4,16,60` (the provisioning step declares a queue for each)"),
]
TopologyPrefix = Annotated[str, Field(
    validation_alias="ARCSERVE_TOPOLOGY_PREFIX",
    description="prefix of every exchange, queue and broker user (tests and parallel stacks)")]
ApiKeyPepper = Annotated[SecretStr, Field(
    validation_alias="ARCSERVE_API_KEY_PEPPER",
    description="the server secret API keys are stored and looked up under, HMAC-SHA256 (16 characters or more; "
                "or `…_FILE`)")]
LicenseKeyKeyring = Annotated[SecretStr, Field(
    validation_alias="ARCSERVE_LICENSE_KEY_KEYRING",
    description="`id:base64-key,…` (32-byte keys); the first seals license keys, every one opens them "
                "(or `…_FILE`)")]
FulfilmentSource = Literal["simulator", "back-office", "external"]
Fulfilment = Annotated[FulfilmentSource, Field(
    validation_alias="ARCSERVE_FULFILMENT",
    description="where license keys and order IDs come from: `simulator` (answers after the simulator's delays), "
                "`back-office` (operators type them in the console) or `external` (another system of the "
                "provider publishes them on `arcserve.fulfilment`)")]
ForwardingSecret = Annotated[SecretStr, Field(
    validation_alias=FORWARDING_SECRET,
    description="the portal's, intake's and status's alike (16 characters or more; or `…_FILE`): the portal signs "
                "the client address it forwards for with it, so failed keys count by the client's address, not the "
                "portal's; without it they count by the portal's")]


class _Environment(EnvSettingsSource):
    """The variables of `environ` (the process's, or one given to `from_env`)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._given = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _secret_files(model: type[BaseSettings], environ: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    """`NAME_FILE` for every secret `NAME` (as Docker and Kubernetes mount secrets): the
    file's contents, without its trailing newline, where `NAME` itself is not set; a file
    that cannot be read is a problem."""
    found: dict[str, str] = {}
    named = variables(model)
    for name, info in model.model_fields.items():
        if info.annotation is SecretStr:
            try:
                if value := secret(named[name], environ):
                    found[name] = value
            except MissingSecret as exc:
                problems.append(str(exc))
    return found


class SettingsError(SystemExit):
    """Every problem with the environment, one per line, naming the variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the configuration has problems (docs/configuration.md):\n"
                         + "\n".join(f"  - {problem}" for problem in problems))


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper), Field(
    validation_alias="LOG_LEVEL", description="the lowest level logged")]
LogFormat = Annotated[Literal["json", "text"], Field(
    validation_alias="LOG_FORMAT",
    description="log lines: one JSON object each (with the trace and the message in hand), or text")]


class SettingsModel(BaseSettings):
    """A process's settings: read from the environment by `from_env()` only, frozen."""

    model_config = SettingsConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, extra="ignore",
                                      env_ignore_empty=True)
    # What a required variable's "is not set" says besides, by field.
    when_unset: ClassVar[dict[str, str]] = {}

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is None:
            return (init_settings,)
        return init_settings, _Environment(settings_cls, environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The process's settings from its environment (`environ`: another one), or
        SettingsError with every problem at once."""
        environ = dict(os.environ if environ is None else environ)
        problems: list[str] = []
        secrets: dict[str, Any] = _secret_files(cls, environ, problems)
        token = _ENVIRON.set(environ)
        try:
            loaded = cls(**secrets)
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


def _problems(model: type[SettingsModel], exc: ValidationError) -> list[str]:
    """One line per error, naming the variable and what is wrong, never the value; the
    required variables that are not set first."""
    named = variables(model)
    by_alias = {alias: alias for alias in named.values()}
    unset, wrong = [], []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = named.get(field) or by_alias.get(field) or field
        if error["type"] == "missing":
            unset.append(f"{variable} is not set: {model.when_unset.get(field, 'it is required')}")
        else:
            wrong.append(f"{variable}: {error['msg']}")
    return unset + wrong


class ProcessSettings(SettingsModel):
    """What every long-running process (a service, the portal) reads the same way: where it
    binds, how long it drains, its logs and its traces (shared/runtime.py, `run_process`)."""

    # Loopback unless told otherwise: a local run (`make run`) is reachable from this machine only, operator
    # ports included. Containers set 0.0.0.0, their own network's (docker-compose.yml, deploy/kubernetes).
    host: str = Field(LOCAL_HOST, validation_alias="ARCSERVE_HOST",
                      description="the address every HTTP port binds, operator ports included; `0.0.0.0` in "
                                  "containers (compose and Kubernetes set it)")
    drain_timeout_s: float = Field(
        25.0, gt=0, le=600, validation_alias="ARCSERVE_DRAIN_TIMEOUT_S",
        description="on SIGTERM, how long a process finishes the work in hand before it exits "
                    "(a deployment's grace period must be longer)")
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"
    traces_exporter: TracesExporter = Field(
        "none", validation_alias="OTEL_TRACES_EXPORTER",
        description="where spans go: `none`, `otlp` (to `OTEL_EXPORTER_OTLP_ENDPOINT`; the SDK reads the other "
                    "standard `OTEL_*` variables), or `console`; trace ids are in the logs either way")


OWN_CREDENTIALS = ("each service connects with its own credentials, which the provisioning step creates "
                   "(make migrate, or `python -m services.provisioning`)")


class ServiceSettings(ProcessSettings):
    """What the shared runtime (shared/runtime.py) reads of a service. A service's model sets
    `env_prefix` (`INTAKE_`): its URLs and ports are `INTAKE_AMQP_URL`, `INTAKE_DATABASE_URL`,
    `INTAKE_PORT`, `INTAKE_METRICS_PORT`; it redeclares `port` and `metrics_port` with its defaults."""

    when_unset: ClassVar[dict[str, str]] = {"amqp_url": OWN_CREDENTIALS, "database_url": OWN_CREDENTIALS}

    amqp_url: BrokerUrl = Field(
        description="its own broker URL (several nodes of one cluster: comma-separated); `make migrate` writes it "
                    "to `.run/credentials.env`")
    database_url: str = Field(
        description="its own database URL (a primary and its standbys: several hosts, "
                    "`postgresql://…@db-1:5432,db-2:5432/…?target_session_attrs=read-write`), likewise")
    port: Port = Field(description="its HTTP port")
    metrics_port: Port = Field(description="its operator port: /metrics, /healthz, /readyz; internal, never exposed "
                                           "to tenants")
    topology_prefix: TopologyPrefix = ""
    db_pool_size: int = Field(10, ge=1, le=1_000, validation_alias="ARCSERVE_DB_POOL_SIZE",
                              description="database connections per process")
    cloudevents_mode: ContentMode = Field(
        "structured", validation_alias="ARCSERVE_CLOUDEVENTS_MODE",
        description="how the CloudEvents it publishes travel: `structured` (the event is the JSON body) or "
                    "`binary` (attributes in `ce-` headers, the body is `data`); consumers read both either way")


class ConsumerSettings(ServiceSettings):
    """What the shared runtime reads of a service that consumes (its consumers, their retries,
    their inbox)."""

    prefetch: int = Field(64, ge=1, le=10_000, validation_alias="ARCSERVE_PREFETCH",
                          description="messages in hand per consumer")
    batch: int = Field(32, ge=1, le=10_000, validation_alias="ARCSERVE_BATCH",
                       description="the most messages one transaction of a consumer carries: those that arrived "
                                   "while the one before ran (1: a transaction each)")
    retry_delays_s: RetryDelays = DEFAULT_RETRY_DELAYS_S
    inbox_retention_days: float = Field(7.0, gt=0, validation_alias="ARCSERVE_INBOX_RETENTION_DAYS",
                                        description="how long handled message ids are kept")


class ApiSettings(ServiceSettings):
    """What a service with a tenants' API (intake, status) reads for the shared authenticator
    (shared/http/auth.py)."""

    api_key_pepper: ApiKeyPepper = SecretStr("")
    rate_limit_per_s: float = Field(
        50.0, ge=0, validation_alias="ARCSERVE_RATE_LIMIT_PER_S",
        description="each tenant's requests per second, per replica (0: none)")
    rate_limit_burst: int = Field(100, ge=1, validation_alias="ARCSERVE_RATE_LIMIT_BURST",
                                  description="each tenant's burst, likewise")
    auth_failure_burst: int = Field(
        10, ge=1, validation_alias="ARCSERVE_AUTH_FAILURE_BURST",
        description="wrong API keys a source address, or an API key id, may send before 429 `too_many_failures` "
                    "(per replica)")
    auth_failure_refill_s: float = Field(
        30.0, gt=0, validation_alias="ARCSERVE_AUTH_FAILURE_REFILL_S",
        description="then one more wrong key every this many seconds")
    forwarding_secret: ForwardingSecret = SecretStr("")


class AdministratorSettings(SettingsModel):
    """The administrator's connections: what the provisioning step and the operator commands
    (and the tests) connect with; no service does."""

    amqp_url: BrokerUrl = Field(
        DEFAULT_AMQP_URL, validation_alias="AMQP_URL",
        description="the administrator's broker URL (several nodes of one cluster: comma-separated); a service "
                    "reads its own `<SERVICE>_AMQP_URL` instead")
    database_url: str = Field(
        DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL",
        description="the administrator's database URL (a primary and its standbys: several hosts, "
                    "`postgresql://…@db-1:5432,db-2:5432/…?target_session_attrs=read-write`); a service reads its "
                    "own `<SERVICE>_DATABASE_URL`")
    topology_prefix: TopologyPrefix = ""
