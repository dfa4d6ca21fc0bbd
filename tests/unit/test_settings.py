"""Settings: each process's model beside its code (services/*/config.py), the shared parts
and the loading in shared/config.py. Read from the environment only by `from_env()`, every
problem reported at once and by its variable, never with its value; each process reads only
its own variables; docs/configuration.md's tables generated from the models."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.intake.config import IntakeSettings
from services.license_issuer.config import LicenseIssuerSettings
from services.order_id.config import OrderIdSettings
from services.portal.config import PortalSettings
from services.provisioning.boundaries import BOUNDARIES
from services.provisioning.config import ProvisioningSettings
from services.status.config import StatusSettings
from services.tools.config import ToolSettings
from shared.config import ServiceSettings, SettingsError, variables
from tests.support import scripts

ROOT = Path(__file__).resolve().parents[2]
SERVICES: dict[str, type[ServiceSettings]] = {"intake": IntakeSettings, "status": StatusSettings, "license-issuer": LicenseIssuerSettings,
            "order-id": OrderIdSettings}


def test_every_problem_is_reported_at_once_by_its_variable_and_never_with_its_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUS_AMQP_URL", "amqp://status:hunter2-password@rabbitmq/")
    for name, value in {"ARCSERVE_PREFETCH": "0", "STATUS_METRICS_PORT": "70000", "LOG_FORMAT": "xml",
                        "ARCSERVE_RETRY_DELAYS_S": "1,-4", "ARCSERVE_RATE_LIMIT_PER_S": "fast",
                        "ARCSERVE_YEAR_END_CLOSURE": "hunter2-closure"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        StatusSettings.from_env()
    problems = raised.value.problems
    named = [problem.split(":", 1)[0] for problem in problems]
    assert named == ["STATUS_DATABASE_URL is not set", "LOG_FORMAT", "STATUS_METRICS_PORT", "ARCSERVE_PREFETCH",
                     "ARCSERVE_RETRY_DELAYS_S", "ARCSERVE_RATE_LIMIT_PER_S", "ARCSERVE_YEAR_END_CLOSURE"], problems
    assert "greater than or equal to 1" in problems[named.index("ARCSERVE_PREFETCH")]
    assert "provisioning step" in problems[0]
    assert "hunter2" not in str(raised.value)


def test_a_day_that_does_not_exist_is_no_year_end_closure() -> None:
    with pytest.raises(SettingsError) as raised:
        StatusSettings.from_env({"ARCSERVE_YEAR_END_CLOSURE": "02-30/01-03", "STATUS_AMQP_URL": "amqp://s@rabbitmq/",
                                 "STATUS_DATABASE_URL": "postgresql://s@postgres/arcserve"})
    assert [problem.split(":", 1)[0] for problem in raised.value.problems] == ["ARCSERVE_YEAR_END_CLOSURE"]
    assert "02-30" not in str(raised.value)


def test_a_service_reads_its_own_urls_and_the_rest_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://admin:admin-password@rabbitmq/")  # the administrator's: not for a service
    monkeypatch.setenv("INTAKE_AMQP_URL", "amqp://intake:pw@rabbitmq/")  # another service's
    monkeypatch.setenv("STATUS_AMQP_URL", "amqp://status:pw@rabbitmq/")
    monkeypatch.setenv("STATUS_DATABASE_URL", "postgresql://status:pw@postgres/arcserve")
    monkeypatch.setenv("ARCSERVE_RETRY_DELAYS_S", "1,2.5")
    monkeypatch.setenv("ARCSERVE_API_KEY_PEPPER", "a-pepper-of-the-status-service")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("STATUS_PORT", "18081")
    monkeypatch.setenv("INTAKE_PORT", "18080")
    settings = StatusSettings.from_env()
    assert settings.amqp_url == "amqp://status:pw@rabbitmq/" and settings.port == 18081
    assert settings.retry_delays_s == (1.0, 2.5) and settings.log_level == "DEBUG"
    assert "a-pepper" not in repr(settings) and "pw@" not in repr(settings)
    admin = ProvisioningSettings.from_env()
    assert admin.amqp_url == "amqp://admin:admin-password@rabbitmq/"


def test_a_given_environment_is_read_instead_of_the_process_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_ID_PORT", "1")
    given = {"ORDER_ID_AMQP_URL": "amqp://order-id@rabbitmq/", "ORDER_ID_DATABASE_URL": "postgresql://o@postgres/a",
             "ARCSERVE_SIM_NEW_DELAY_S": "2"}
    settings = OrderIdSettings.from_env(given)
    assert settings.port == 8083 and settings.sim_new_delay_s == 2.0


def test_a_model_built_in_code_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCSERVE_PREFETCH", "99")
    monkeypatch.setenv("PORTAL_PORT", "1")
    assert OrderIdSettings(amqp_url="amqp://order-id@rabbitmq/", database_url="postgresql://o@postgres/a").prefetch == 64
    assert PortalSettings().port == 8084
    assert PortalSettings.from_env().port == 1


def test_each_service_reads_its_own_prefix_and_no_other_process_s_variables() -> None:
    by_service = {boundary.name: boundary for boundary in BOUNDARIES}
    prefixes = {f"{boundary.env_prefix}_" for boundary in BOUNDARIES} | {"PORTAL_"}
    for name, model in SERVICES.items():
        own = f"{by_service[name].env_prefix}_"
        assert model.model_config.get("env_prefix") == own, name
        read = set(variables(model).values())
        assert {f"{own}{suffix}" for suffix in ("AMQP_URL", "DATABASE_URL", "PORT", "METRICS_PORT")} <= read
        assert not [v for v in read for other in prefixes - {own} if v.startswith(other)], name
        assert not read & {"AMQP_URL", "DATABASE_URL", "ARCSERVE_API_KEYS"}, name  # the administrator's
    assert "ARCSERVE_YEAR_END_CLOSURE" in variables(StatusSettings).values()
    assert not [m for m in (IntakeSettings, LicenseIssuerSettings, OrderIdSettings, PortalSettings, ToolSettings,
                            ProvisioningSettings) if "ARCSERVE_YEAR_END_CLOSURE" in variables(m).values()]
    assert not [m for m in (IntakeSettings, StatusSettings, PortalSettings, ToolSettings, ProvisioningSettings)
                if {"ARCSERVE_SIM_NEW_DELAY_S", "ARCSERVE_SIM_CHANGE_DELAY_S"} & set(variables(m).values())]
    consuming = {"ARCSERVE_PREFETCH", "ARCSERVE_RETRY_DELAYS_S", "ARCSERVE_INBOX_RETENTION_DAYS"}
    assert consuming & set(variables(IntakeSettings).values()) == set()  # intake consumes nothing
    assert all(consuming <= set(variables(m).values()) for m in (StatusSettings, LicenseIssuerSettings, OrderIdSettings))


def test_the_configuration_document_is_the_models() -> None:
    script = scripts.load("configuration")
    document = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert document == script.rewritten(document), "docs/configuration.md is stale: run `make docs`"
    for process in ("intake", "status", "license-issuer", "order-id", "portal", "provisioning", "operator commands"):
        assert f"\n### {process}\n" in document
    for variable in ("ARCSERVE_PREFETCH", "OTEL_TRACES_EXPORTER", "PORTAL_METRICS_PORT", "ARCSERVE_ID_SECRET",
                     "STATUS_METRICS_PORT", "ORDER_ID_AMQP_URL", "ARCSERVE_YEAR_END_CLOSURE"):
        assert f"| `{variable}` |" in document


def test_none_turns_the_year_end_closure_off_and_an_empty_variable_keeps_the_default() -> None:
    own = {"STATUS_AMQP_URL": "amqp://status@rabbitmq/", "STATUS_DATABASE_URL": "postgresql://s@postgres/a"}
    assert StatusSettings.from_env({**own, "ARCSERVE_YEAR_END_CLOSURE": "none"}).year_end_closure == "none"
    assert StatusSettings.from_env({**own, "ARCSERVE_YEAR_END_CLOSURE": ""}).year_end_closure == "12-29/01-03"
