"""Several broker nodes behind one setting (shared/messaging/nodes.py): a comma-separated
URL is read node by node, refused naming the bad part (never its password), and each
service's own URL keeps every node with the service's credentials; and the fault suite's
measure of how long intake refused work."""
from __future__ import annotations

import pytest

from services.provisioning.deployment import _with_credentials
from shared.config import masked
from shared.messaging import nodes
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
    assert _with_credentials(CLUSTER, "status", "pw") == (
        "amqp://status:pw@rabbit-1:5672/,amqp://status:pw@rabbit-2:5672/,amqp://status:pw@rabbit-3:5672/")
    assert _with_credentials("postgresql://postgres@db-1:5432,db-2:5432/arcserve?target_session_attrs=read-write",
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
