"""Several broker nodes behind one setting (shared/messaging/nodes.py): a comma-separated
URL is read node by node, refused naming the bad part (never its password), and each
service's own URL keeps every node with the service's credentials; a publish the broker did
not take is sent again until its deadline, an unroutable one never; and the fault suite's
measures of how long intake refused work."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import aiormq
import pamqp.commands
import pytest

from services.provisioning.deployment import with_credentials
from shared.config import masked
from shared.messaging import broker as broker_module
from shared.messaging import nodes
from shared.messaging.broker import Broker
from shared.messaging.topology import Topology
from tests.faults.workload import Ledger

CLUSTER = "amqp://admin:s3cret@rabbit-1:5672/, amqp://admin:s3cret@rabbit-2:5672/,amqp://admin:s3cret@rabbit-3:5672/"


def test_a_comma_separated_url_is_one_node_each_and_one_user() -> None:
    assert nodes.split(CLUSTER) == [
        "amqp://admin:s3cret@rabbit-1:5672/", "amqp://admin:s3cret@rabbit-2:5672/", "amqp://admin:s3cret@rabbit-3:5672/"]
    assert nodes.user_of(CLUSTER) == "admin"
    assert nodes.split("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "no broker URL given"),
        ("amqp://admin:s3cret@rabbit-1:5672/,http://admin:s3cret@rabbit-2/", "http://admin:******@rabbit-2/ is not an amqp"),
        ("amqp://a:x@rabbit-1/,amqp://b:y@rabbit-2/", "the nodes name different users (a, b)"),
    ],
)
def test_a_bad_list_is_refused_naming_the_problem_and_no_password(url: str, problem: str) -> None:
    with pytest.raises(ValueError) as refused:
        nodes.split(url)
    assert problem in str(refused.value) and "s3cret" not in str(refused.value)


def test_a_services_own_url_keeps_every_node_and_every_database_host() -> None:
    assert with_credentials(CLUSTER, "status", "pw") == (
        "amqp://status:pw@rabbit-1:5672/,amqp://status:pw@rabbit-2:5672/,amqp://status:pw@rabbit-3:5672/")
    assert with_credentials("postgresql://postgres@db-1:5432,db-2:5432/arcserve?target_session_attrs=read-write",
                             "arcserve_status", "pw") == (
        "postgresql://arcserve_status:pw@db-1:5432,db-2:5432/arcserve?target_session_attrs=read-write")


def test_refusals_close_together_make_one_outage_and_outages_add_up() -> None:
    ledger = Ledger()
    assert ledger.refused_seconds() == 0.0
    ledger.refusals = [10.0, 10.2, 10.4, 11.1, 30.0, 30.5, 50.0]  # 10.0–11.1, 30.0–30.5, one alone at 50
    assert ledger.refused_seconds() == pytest.approx(1.1 + 0.5)


def test_the_longest_pause_is_the_widest_gap_between_steps_ending() -> None:
    ledger = Ledger()
    assert ledger.longest_pause() == 0.0
    ledger.step_ends = [3.0, 1.0, 1.5, 7.5, 8.0]
    assert ledger.longest_pause() == pytest.approx(4.5)


def test_a_url_with_several_nodes_or_hosts_is_shown_without_any_password() -> None:
    assert masked(CLUSTER) == ",".join(f"amqp://admin:***@rabbit-{n}:5672/" for n in (1, 2, 3))
    assert masked("postgresql://r:pw@db-1:5432,db-2:5432/a?target_session_attrs=read-write") == (
        "postgresql://r:***@db-1:5432,db-2:5432/a?target_session_attrs=read-write")


class _Exchange:
    """Takes a publish after the failures it is given, one per attempt."""

    def __init__(self, *failures: BaseException):
        self.failures = list(failures)
        self.attempts = 0

    async def publish(self, message: Any, routing_key: str, **_: Any) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)


def _broker(exchange: _Exchange) -> Broker:
    broker = Broker("amqp://guest:guest@127.0.0.1:5672/", Topology("unit."), connection_name="unit")
    broker._publisher = cast(Any, object())  # connected, as far as publish() asks
    broker._exchanges["x"] = cast(Any, exchange)
    return broker


NACK = aiormq.exceptions.DeliveryError(None, pamqp.commands.Basic.Nack(delivery_tag=1))


async def test_a_publish_the_broker_did_not_take_is_sent_again_until_it_is() -> None:
    exchange = _Exchange(ConnectionResetError("node gone"), NACK)
    await _broker(exchange).publish("x", "new", b"{}", message_id="m")
    assert exchange.attempts == 3


async def test_an_unroutable_publish_is_refused_at_once() -> None:
    bounced = SimpleNamespace(delivery=pamqp.commands.Basic.Return(reply_code=312, reply_text="NO_ROUTE",
                                                                   routing_key="new"))
    returned = aiormq.exceptions.PublishError(cast(Any, bounced), cast(Any, None))
    exchange = _Exchange(returned)
    with pytest.raises(aiormq.exceptions.PublishError):
        await _broker(exchange).publish("x", "new", b"{}", message_id="m", mandatory=True)
    assert exchange.attempts == 1


async def test_a_publish_never_taken_fails_once_its_deadline_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module, "PUBLISH_TIMEOUT_S", 0.3)
    exchange = _Exchange(*(ConnectionResetError("no node") for _ in range(100)))
    with pytest.raises(ConnectionResetError):
        await _broker(exchange).publish("x", "new", b"{}", message_id="m")
    assert 2 <= exchange.attempts < 100
