"""Server secrets from the environment or a mounted file (shared/secrets.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.intake.config import IntakeSettings
from services.status.config import StatusSettings
from services.tools.config import ToolSettings
from shared.config import SettingsError
from shared.secrets import MissingSecret, required, secret


def test_a_secret_comes_from_the_variable_else_from_the_file_it_names(tmp_path: Path) -> None:
    mounted = tmp_path / "id-secret"
    mounted.write_text("from-a-mounted-file-0123456789\n")
    assert secret("ARCSERVE_ID_SECRET", {"ARCSERVE_ID_SECRET_FILE": str(mounted)}) == "from-a-mounted-file-0123456789"
    assert secret("ARCSERVE_ID_SECRET", {"ARCSERVE_ID_SECRET": "direct", "ARCSERVE_ID_SECRET_FILE": str(mounted)}) == "direct"
    assert secret("ARCSERVE_ID_SECRET", {}) == ""


def test_an_unreadable_file_or_a_short_secret_stops_the_service_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(MissingSecret, match="ARCSERVE_ID_SECRET_FILE names .* which cannot be read"):
        secret("ARCSERVE_ID_SECRET", {"ARCSERVE_ID_SECRET_FILE": str(tmp_path / "missing")})
    with pytest.raises(MissingSecret, match="ARCSERVE_ID_SECRET .* at least 16 characters: intake derives"):
        required("ARCSERVE_ID_SECRET", "short", "intake derives application ids with it")
    assert required("ARCSERVE_ID_SECRET", "x" * 16, "why") == b"x" * 16


URLS: dict[str, Any] = {"amqp_url": "amqp://status:pa%2Fss-word@rabbitmq:5672/", "database_url": "postgresql://status:pg-pass@db/x"}


def test_settings_never_show_the_secret() -> None:
    assert "s3cret-s3cret-s3cret" not in repr(IntakeSettings(**URLS, id_secret="s3cret-s3cret-s3cret"))


def test_settings_show_urls_without_their_passwords() -> None:
    settings = StatusSettings(**URLS, api_key_pepper="pepper-pepper-pepper", license_key_keyring="k1:c2VjcmV0")
    shown = repr(settings)
    for secret_text in ("pa%2Fss-word", "pg-pass", "pepper-pepper", "c2VjcmV0"):
        assert secret_text not in shown
    assert "amqp_url='amqp://status:***@rabbitmq:5672/'" in shown and "database_url='postgresql://status:***@db/x'" in shown


def test_settings_read_a_secret_from_the_file_it_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mounted = tmp_path / "pepper"
    mounted.write_text("a-pepper-from-a-mounted-file\n")
    monkeypatch.setenv("ARCSERVE_API_KEY_PEPPER_FILE", str(mounted))
    assert ToolSettings.from_env().api_key_pepper.get_secret_value() == "a-pepper-from-a-mounted-file"
    assert ToolSettings().api_key_pepper.get_secret_value() == ""  # built in code: no environment read


def test_an_unreadable_secret_file_is_one_problem_among_the_others(tmp_path: Path) -> None:
    environ = {"ARCSERVE_LICENSE_KEY_KEYRING_FILE": str(tmp_path / "missing"), "ARCSERVE_PREFETCH": "0",
               "STATUS_AMQP_URL": "amqp://status:pw@rabbitmq/", "STATUS_DATABASE_URL": "postgresql://status:pw@db/x"}
    with pytest.raises(SettingsError) as raised:
        StatusSettings.from_env(environ)
    named = [problem.split(" ", 1)[0].rstrip(":") for problem in raised.value.problems]
    assert named == ["ARCSERVE_LICENSE_KEY_KEYRING_FILE", "ARCSERVE_PREFETCH"], raised.value.problems
