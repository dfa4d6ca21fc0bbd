"""The running API answers what its OpenAPI document declares, for requests schemathesis generates from that
document (property-based): the portal's origin, which tenants use and which serves intake's and status's
operations as one document, so the forwarding hop is under test too. Every operation, with valid and invalid
requests: no server error, only declared statuses, the declared content type, body and headers, invalid input
refused (R4), and without a valid key nothing but 401. Derandomized, so CI runs the same requests every time.

schemathesis runs in a worker thread: the stack serves HTTP on this event loop, which must keep running."""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Err

from tests.support.stack import Stack, Tenant

# schemathesis' own strategies draw from `random` (its concern, not ours): say it once, not per example.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

EXAMPLES = 40  # per operation and pass: about 5 s for a tenant's pass (at RATE), 2 s for one without a key
# A tenant's requests, paced across both services so that each stays under its per-tenant limit (50/s, bursts
# of 100; shared/http/ratelimit.py): answers of 429 would check nothing. Refusals (401) come before the limit.
RATE = "50/s"
# What the document promises of every answer (schemathesis's checks; docs/contracts.md, "The HTTP API as OpenAPI").
DECLARED = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]
Answered = Counter[tuple[str, int]]  # (operation, status) → how often


def refused(_ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Without a valid key nothing is served, and nothing is learnt of ids, fields or limits (no 404 for an id,
    422, 409 or 413) before authentication: 401. Only a path that no route takes answers 404 first (the portal's
    /v1 forwarding takes no line feed in a path)."""
    routed_nowhere = response.status_code == 404 and response.json() == {"code": "not_found", "message": "Not Found"}
    assert response.status_code == 401 or routed_nowhere, \
        f"{case.operation.label} answered {response.status_code} without a valid key"


def fuzz(base_url: str, config: dict[str, Any], checked_by: list[Any],
         known: dict[str, str] | None = None) -> Answered:
    """Every operation of the document `base_url` serves, with valid and invalid requests, each answer checked;
    `known` path parameters (real ids of the tenant's) are tried besides generated ones."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=schemathesis.Config.from_dict({
        "base-url": base_url,
        # The key is the test's own (valid, wrong or missing), never a generated one.
        "generation": {"with-security-parameters": False},
        **config,
    }))
    answered: Answered = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read is a fault of the document's
            failures.append(str(result.err()))
            continue
        operation = result.ok()
        try:
            _property(operation, known or {}, checked_by, answered)()
        # Every operation's failures at once, not only the first one's (schemathesis raises a BaseExceptionGroup).
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}:\n{exc}")
    assert not failures, "\n\n".join(failures)
    return answered


def _property(operation: schemathesis.APIOperation, known: dict[str, str], checked_by: list[Any],
              answered: Answered) -> Callable[[], None]:
    strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
    ids = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
    if ids:
        strategies.append(operation.as_strategy(path_parameters=ids))

    # Shrunk to the smallest failing request, but not explained: that phase replays it many times over.
    @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                         phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=st.one_of(strategies))
    def answers_as_declared(case: schemathesis.Case) -> None:
        response = case.call_and_validate(checks=checked_by)
        answered[(operation.label, response.status_code)] += 1

    return answers_as_declared


def operations(answered: Answered, statuses: range | set[int]) -> set[str]:
    return {label for label, status in answered if status in statuses}


async def test_every_answer_to_a_tenant_is_one_the_document_declares(stack: Stack, tenant: Tenant) -> None:
    contract = await stack.active_contract(tenant, [
        {"usage": "virtual_server", "license_type": "per_server", "quantity": 1},
        {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 3}])
    known = {"contract_id": contract["contract_id"], "application_id": contract["applications"][0]["application_id"]}
    key = {"auth": {"openapi": {"bearer": {"bearer": tenant.key}}}, "rate-limit": RATE}
    answered = await asyncio.to_thread(fuzz, stack.portal_url, key, [*DECLARED, checks.ignored_auth], known)
    # Not only refusals were checked: every operation also answered with its success, real data in it.
    assert operations(answered, range(200, 300)) == {label for label, _ in answered}, answered


async def test_without_a_valid_key_every_operation_answers_401(stack: Stack) -> None:
    missing: dict[str, Any] = {}
    wrong = {"headers": {"Authorization": "Bearer not-a-key-of-anyone"}}
    for config in (missing, wrong):
        answered = await asyncio.to_thread(fuzz, stack.portal_url, config, [*DECLARED, refused])
        assert operations(answered, {401}) == {label for label, _ in answered}, answered
