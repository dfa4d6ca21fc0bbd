"""The command line's own logic, without a stack: the --license syntax, JST times, error lines, and that the
API key never shows (docs/architecture.md, "Portal and command line")."""
from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from services.cli.app import app
from services.cli.client import ApiFailure
from services.cli.licenses import parse_line
from services.cli.render import clean, jst


def test_license_lines() -> None:
    assert parse_line("virtual_server:per_server:2") == {"usage": "virtual_server", "license_type": "per_server",
                                                         "quantity": 2}
    assert parse_line("hypervisor:dedicated_hypervisor:1:10") == {
        "usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}


@pytest.mark.parametrize("spec, problem", [
    ("virtual_server", "expected usage:type:quantity[:vm_count]"),
    ("virtual_server:per_server:1:2:3", "expected usage:type:quantity[:vm_count]"),
    ("cloud:per_server:1", "unknown usage 'cloud'"),
    ("virtual_server:per_vm:1", "unknown license type 'per_vm'"),
    ("virtual_server:per_server:-1", "quantity must be a whole number"),
    ("hypervisor:dedicated_hypervisor:1:ten", "vm_count must be a whole number"),
])
def test_bad_license_lines_name_the_problem(spec: str, problem: str) -> None:
    with pytest.raises(typer.BadParameter, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_line(spec)


def test_times_are_shown_in_jst() -> None:
    assert jst("2026-11-27T16:30:00+00:00") == "2026-11-28 01:30 JST"
    assert jst("2026-11-27T16:30:00+00:00", zone=False) == "2026-11-28 01:30"
    assert jst(None) == "—"


def test_api_text_cannot_drive_the_terminal() -> None:
    assert "\x1b" not in clean("Example\x1b[2J K.K.")


def test_a_422_lists_each_field() -> None:
    failure = ApiFailure(422, "invalid_application", "contact.email: not an e-mail",
                         [{"field": "contact.email", "problem": "not an e-mail"}], "{}")
    assert failure.lines == ["error: invalid_application: contact.email: not an e-mail (HTTP 422)",
                             "  contact.email: not an e-mail"]


def test_the_key_never_shows_and_a_missing_key_is_a_usage_error() -> None:
    runner = CliRunner()
    secret = "secret-key-that-must-not-show"
    for args in (["--help"], ["contracts", "--help"], ["apply", "new", "--help"]):
        shown = runner.invoke(app, args, env={"ARCSERVE_API_KEY": secret})
        assert shown.exit_code == 0 and secret not in shown.output
    missing = runner.invoke(app, ["contracts"], env={"ARCSERVE_API_KEY": ""})
    assert missing.exit_code == 2 and "ARCSERVE_API_KEY" in missing.output
