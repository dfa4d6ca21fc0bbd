"""The input limits (shared/contracts/limits.py): hostile JSON is refused naming the
problem, never by the parser's own failure, and never at a cost that grows with the input."""
from __future__ import annotations

import json

import pytest

from shared.contracts import limits
from shared.contracts.applications import InvalidApplication, parse_application
from shared.contracts.envelope import PoisonMessage, parse_event


def _new(**contact: str) -> dict:
    return {
        "kind": "new", "product": "arcserve-udp-10",
        "contact": {"email": "ops@example.co.jp", "company_name": "Example K.K.", **contact},
        "licenses": [{"usage": "virtual_server", "license_type": "per_server", "quantity": 2}],
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param("[" * 20_000 + "]" * 20_000, "nested deeper than 16 levels", id="40 KB of nested brackets"),
        pytest.param('{"a":' * 17 + "1" + "}" * 17, "nested deeper than 16 levels at $.a.a", id="17 levels"),
        pytest.param("9" * 5000, "a number of 5000 characters", id="5,000-digit number"),
        pytest.param("1e999999999999999999999999999999999", "a number of 35 characters", id="huge exponent"),
        pytest.param('{"n": NaN}', "NaN is not a JSON number", id="NaN"),
        pytest.param('{"n": -Infinity}', "-Infinity is not a JSON number", id="Infinity"),
        pytest.param('{"name": "a\\u0000b"}', "a NUL character at $.name", id="NUL in a value"),
        pytest.param('{"a\\u0000\\r\\n": 1}', "a NUL character at $ (a member name)", id="NUL in a name"),
        pytest.param(json.dumps({"s": "x" * 5000}), "a string of 5000 characters at $.s", id="long string"),
        pytest.param(json.dumps(list(range(1001))), "1001 items at $", id="long list"),
    ],
)
def test_hostile_json_is_refused_naming_the_problem(body: str, problem: str) -> None:
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.loads(body)
    assert problem in str(refused.value)


def test_a_real_application_is_well_inside_every_limit() -> None:
    body = json.dumps(_new())
    assert limits.loads(body) == json.loads(body)
    assert limits.loads("[1.5, -2, 3e2]") == [1.5, -2, 300.0]


def test_where_a_hostile_member_name_is_reported_its_control_characters_are_escaped() -> None:
    deep = {"a\r\nb": {"c": [[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}}
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.loads(json.dumps(deep))
    assert "$.a\\r\\nb.c[0]" in str(refused.value) and "\r" not in str(refused.value)


@pytest.mark.parametrize("name", ["Example\x00K.K.", "Example\r\nBcc: x@example.com", "Tab\tbed"])
def test_a_company_name_with_control_characters_is_invalid(name: str) -> None:
    with pytest.raises(InvalidApplication) as refused:
        parse_application(_new(company_name=name))
    assert refused.value.errors == [{"field": "contact.company_name",
                                     "problem": "must not contain control characters (NUL, CR, LF, tab and the like)"}]


def test_keys_per_application_are_bounded() -> None:
    lines = [{"usage": "virtual_server", "license_type": "per_server", "quantity": 60}] * 2
    with pytest.raises(InvalidApplication) as refused:
        parse_application({**_new(), "licenses": lines})
    assert refused.value.errors == [{"field": "licenses", "problem": "120 license keys in one application; the limit is 100"}]


def _event(**fields: object) -> bytes:
    return json.dumps({"specversion": "1.0", "id": "1", "source": "urn:x", "type": "arcserve.application.new",
                       "tenantid": "t", "data": _new(), **fields}).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b'{"specversion": "1.0", "id": ' + b"9" * 5000 + b"}", "limit_exceeded: a number", id="number"),
        pytest.param(b"[" * 20_000 + b"]" * 20_000, "limit_exceeded: nested deeper", id="nesting"),
        pytest.param(_event(tenantid="t\r\nx"), "not_cloudevent: tenantid: Value error, must not contain control", id="CR/LF tenant"),
        pytest.param(_event(id="a\x00b"), "limit_exceeded: a NUL character at $.id", id="NUL id"),
        pytest.param(_event(extension={"deep": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}), "limit_exceeded: nested", id="deep extension"),
    ],
)
def test_a_hostile_envelope_is_poison_dead_lettered_at_once(body: bytes, reason: str) -> None:
    with pytest.raises(PoisonMessage) as poison:
        parse_event(body)
    assert poison.value.reason.startswith(reason), poison.value.reason


def test_a_submission_whose_data_is_past_a_limit_is_invalid_so_its_tenant_sees_it_rejected() -> None:
    from shared.contracts import catalogue

    event = parse_event(_event(data={**_new(company_name="Example\x00K.K."), "application_id": "8d1f6f0e-0000-4000-8000-000000000001"}))
    with pytest.raises(catalogue.InvalidData) as invalid:
        catalogue.parse(event)
    assert invalid.value.reason == "invalid_application: data: a NUL character at data.contact.company_name"


@pytest.mark.parametrize(("body", "field"), [
    pytest.param('{"a": 1, "a": 2}', "a", id="top level"),
    pytest.param('{"x": [{"q": 1}, {"q": 1, "q": 2}]}', "x.1.q", id="in a list"),
    pytest.param('{"c\\r\\n": {"e": 1, "e": 1}}', "c\\r\\n.e", id="the same value twice, a name escaped"),
])
def test_a_member_named_twice_is_refused_naming_where(body: str, field: str) -> None:
    with pytest.raises(limits.DuplicateKey) as refused:
        limits.loads(body)
    assert refused.value.field == field and str(refused.value) == f"{field}: {limits.DuplicateKey.PROBLEM}"


def test_after_a_member_named_twice_the_rest_is_still_read_within_the_limits() -> None:
    with pytest.raises(limits.LimitExceeded, match="a number of 5000 characters"):
        limits.loads('{"a": 1, "a": 2, "n": ' + "9" * 5000 + "}")
    with pytest.raises(limits.LimitExceeded, match="nested deeper"):
        limits.loads('{"a": 1, "a": 2, "n": ' + "[" * 100_000 + "}")
