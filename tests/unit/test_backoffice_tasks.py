"""The console's tasks as operators see them (services/backoffice/tasks.py): overdue once past
due and still open, a cursor that only this API hands out, and what it takes only from the
license issuer."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.backoffice.cursor import Cursor
from services.backoffice.handlers import TASKS, Deps
from services.backoffice.tasks import Task, task_of
from shared.contracts import fulfilment
from shared.contracts.applications import Kind, LicenseType, Usage
from shared.messaging.testing import Harness

NOW = datetime(2026, 12, 7, 10, tzinfo=UTC)
NEEDS = fulfilment.Needs(arcserve_order_id=True, licenses=[
    fulfilment.NeededLicense(license_id=uuid.uuid4(), usage=Usage.VIRTUAL_SERVER, license_type=LicenseType.PER_SERVER)])


def task(due_at: datetime, state: str = "open") -> Task:
    return Task("acme", uuid.uuid4(), uuid.uuid4(), Kind.NEW, due_at - timedelta(days=7), due_at, NEEDS,
                state)  # type: ignore[arg-type]


def test_a_task_is_overdue_only_while_open_past_its_due_time():
    assert task(NOW - timedelta(seconds=1)).overdue(NOW)
    assert not task(NOW).overdue(NOW) and not task(NOW + timedelta(days=1)).overdue(NOW)
    assert not task(NOW - timedelta(days=1), "fulfilled").overdue(NOW)


def test_the_view_is_the_documented_task():
    view = task(NOW - timedelta(hours=1)).view(NOW)
    assert {"application_id", "tenant", "contract_id", "kind", "state", "submitted_at", "due_at", "overdue",
            "needs"} <= set(view)
    assert view["overdue"] is True and view["needs"]["arcserve_order_id"] is True
    assert view["needs"]["licenses"][0]["usage"] == "virtual_server"


def test_an_announced_task_without_a_due_time_is_due_when_submitted():
    requested = fulfilment.FulfilmentRequested(application_id=uuid.uuid4(), tenant="acme", contract_id=uuid.uuid4(),
                                               kind=Kind.ADDITION, submitted_at=NOW, due_at=None, needs=NEEDS)
    assert task_of(requested).due_at == NOW


def test_a_cursor_reads_back_and_nothing_else_does():
    cursor = Cursor(NOW, "acme", uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for garbage in ("", "garbage", "W10", "WyJ4IiwgMSwgMl0"):
        with pytest.raises(ValueError):
            Cursor.decode(garbage)


def test_the_fulfil_form_is_the_api_s_body_and_its_errors_go_beside_their_fields():
    from starlette.datastructures import FormData

    from services.backoffice.pages import beside_fields, delivered_from

    two = fulfilment.Needs(arcserve_order_id=True, licenses=[
        *NEEDS.licenses, fulfilment.NeededLicense(license_id=uuid.uuid4(), usage=Usage.BARE_METAL,
                                                  license_type=LicenseType.PER_SERVER)])
    shown = Task("acme", uuid.uuid4(), uuid.uuid4(), Kind.NEW, NOW, NOW, two)
    first, second = (str(lic.license_id) for lic in two.licenses)
    form = FormData([("csrf", "x"), ("arcserve_order_id", "ARC-1"), (f"key.{first}", "K1"), (f"key.{second}", "")])

    assert delivered_from(form, shown) == {"arcserve_order_id": "ARC-1", "license_keys": [
        {"license_id": first, "license_key": "K1"}, {"license_id": second, "license_key": ""}]}
    assert beside_fields([{"field": "license_keys.1.license_key", "problem": "not a license key"},
                          {"field": "arcserve_order_id", "problem": "required"},
                          {"field": "license_keys", "problem": "a license is named twice"}], shown) == {
        f"key.{second}": "not a license key", "arcserve_order_id": "required", "form": "a license is named twice"}


async def test_the_console_takes_tasks_and_revocations_only_as_the_license_issuer_published_them():
    console = Harness(TASKS, Deps(), service="backoffice")
    forged = fulfilment.RevocationRequested(
        application_id=uuid.uuid4(), tenant="acme", contract_id=uuid.uuid4(), requested_at=NOW,
        licenses=[fulfilment.RevokedLicense(license_id=uuid.uuid4(), key_ends_with="E3VJA")],
        arcserve_order_id=None, attempt=1)

    for publisher in ("arcserve-status", "orders", None):
        assert await console.send(forged, publisher=publisher) == "dead_lettered"  # before any table is touched
    assert all(letter.reason.startswith("unauthorized_publisher") for letter in console.dead_letters)
