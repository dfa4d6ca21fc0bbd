"""Settings (shared/config.py, services/portal/config.py): read from the environment only by
`from_env()`, every problem reported at once and by its variable, never with its value, and
docs/configuration.md's table generated from the models."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.portal.config import PortalSettings
from shared.config import Settings, SettingsError
from tests.support import scripts

ROOT = Path(__file__).resolve().parents[2]


def test_every_problem_is_reported_at_once_by_its_variable_and_never_with_its_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUS_AMQP_URL", "amqp://status:hunter2-password@rabbitmq/")
    for name, value in {"ARCSERVE_PREFETCH": "0", "INTAKE_METRICS_PORT": "70000", "LOG_FORMAT": "xml",
                        "ARCSERVE_RETRY_DELAYS_S": "1,-4", "ARCSERVE_RATE_LIMIT_PER_S": "fast",
                        "ARCSERVE_YEAR_END_CLOSURE": "hunter2-closure"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env("STATUS")
    problems = raised.value.problems
    named = [problem.split(":", 1)[0] for problem in problems]
    assert named == ["STATUS_DATABASE_URL is not set", "LOG_FORMAT", "INTAKE_METRICS_PORT",
                     "ARCSERVE_RATE_LIMIT_PER_S", "ARCSERVE_YEAR_END_CLOSURE", "ARCSERVE_PREFETCH",
                     "ARCSERVE_RETRY_DELAYS_S"], problems
    assert "greater than or equal to 1" in problems[named.index("ARCSERVE_PREFETCH")]
    assert "hunter2" not in str(raised.value)


def test_a_service_reads_its_own_urls_and_the_rest_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://admin:admin-password@rabbitmq/")  # the administrator's: not for a service
    monkeypatch.setenv("STATUS_AMQP_URL", "amqp://status:pw@rabbitmq/")
    monkeypatch.setenv("STATUS_DATABASE_URL", "postgresql://status:pw@postgres/arcserve")
    monkeypatch.setenv("ARCSERVE_RETRY_DELAYS_S", "1,2.5")
    monkeypatch.setenv("ARCSERVE_API_KEYS", "acme:acme-key,globex:globex-key")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = Settings.from_env("STATUS")
    assert settings.amqp_url == "amqp://status:pw@rabbitmq/"
    assert settings.retry_delays_s == (1.0, 2.5) and settings.log_level == "DEBUG"
    assert settings.api_keys == {"acme-key": "acme", "globex-key": "globex"}
    assert "acme-key" not in repr(settings) and "pw@" not in repr(settings)


def test_a_model_built_in_code_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCSERVE_PREFETCH", "99")
    monkeypatch.setenv("PORTAL_PORT", "1")
    assert Settings().prefetch == 8 and PortalSettings().port == 8084
    assert PortalSettings.from_env().port == 1


def test_the_configuration_table_is_the_models() -> None:
    script = scripts.load("configuration")
    readme = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert readme == script.rewritten(readme), "docs/configuration.md's table is stale: run `make docs`"
    for variable in ("ARCSERVE_PREFETCH", "OTEL_TRACES_EXPORTER", "PORTAL_METRICS_PORT", "ARCSERVE_ID_SECRET"):
        assert f"| `{variable}` |" in readme
