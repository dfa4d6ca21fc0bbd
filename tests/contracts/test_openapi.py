"""The OpenAPI document of the tenants' one origin (docs/openapi.json): generated from the running
code, committed, every `$ref` resolvable, the real error body and the bearer scheme declared,
and an example per application kind that the API itself accepts."""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from shared.contracts.applications import parse_application
from shared.http.openapi import ERRORS
from tests.support import scripts

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"


def generator() -> ModuleType:
    return scripts.load("openapi")


def committed() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_the_committed_document_is_the_one_the_code_generates() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == generator().render(), \
        "docs/openapi.json is not what the services generate: run `make contracts` and commit it"


def test_every_ref_resolves_and_nothing_hides_in_request_bodies() -> None:
    document = committed()
    text = json.dumps(document)
    assert "#/$defs/" not in text and '"$defs"' not in text
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert refs and refs <= set(document["components"]["schemas"]), refs - set(document["components"]["schemas"])
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])


def test_every_route_declares_its_answer_its_errors_and_the_bearer_scheme() -> None:
    document = committed()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operations = [(path, method, op) for path, ops in document["paths"].items() for method, op in ops.items()]
    assert {(path, method) for path, method, _ in operations} == {
        ("/v1/applications", "post"), ("/v1/applications", "get"), ("/v1/applications/{application_id}", "get"),
        ("/v1/contracts", "get"), ("/v1/contracts/{contract_id}", "get")}
    for path, method, operation in operations:
        assert operation["security"] == [{"bearer": []}], (path, method)
        responses = operation["responses"]
        success = responses["202" if method == "post" else "200"]["content"]["application/json"]["schema"]
        assert success["$ref"].startswith("#/components/schemas/"), (path, method)
        for status in ("401", "429", "431", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"}, (path, method, status)
        for status, header in (("401", "WWW-Authenticate"), ("429", "Retry-After")):  # always sent, so required
            assert responses[status]["headers"][header]["required"] is True, (path, method, status)
    submit = document["paths"]["/v1/applications"]["post"]
    assert {str(status) for status in ERRORS if status != 404} <= set(submit["responses"])
    assert submit["responses"]["202"]["headers"]["Location"]["required"] is True
    assert [p["name"] for p in submit["parameters"]] == ["Idempotency-Key"]


def test_the_examples_cover_every_kind_and_the_api_accepts_each() -> None:
    examples = committed()["paths"]["/v1/applications"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    kinds = {example["value"]["kind"] for example in examples.values()}
    assert kinds == {"new", "addition", "vm_count_increase", "cancellation", "contact_change"}
    for name, example in examples.items():
        assert parse_application(example["value"]).kind == example["value"]["kind"], name  # R4's own check
