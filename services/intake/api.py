"""`POST /v1/applications` (docs/architecture.md, "Public contract"): authenticate, validate (R4), publish with a
confirm, answer 202. The application id is chosen here, derived from the Idempotency-Key
when one is given, and the status service decides. Intake remembers only which body each
Idempotency-Key was first used with."""
from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from shared import metrics, tenancy
from shared.contracts import catalogue
from shared.contracts.answers import Received
from shared.contracts.applications import (
    InvalidApplication,
    application_json_schema,
    parse_application,
    submission_of,
)
from shared.http import openapi
from shared.http.auth import Authenticator
from shared.http.body import read_json
from shared.http.errors import ApiError
from shared.messaging.broker import Broker
from shared.observability import logs

log = logging.getLogger(__name__)
MAX_IDEMPOTENCY_KEY = 255


_CONTACT = {"email": "ops@example.co.jp", "company_name": "Example K.K."}
_CONTRACT = "3f6f3b5e-2d0c-5c8e-9a43-6b1f0f3f1a10"
EXAMPLES = {  # one per kind (docs/architecture.md, "Public contract")
    "new": {"summary": "新規申込: a new contract", "value": {
        "kind": "new", "product": "arcserve-udp-10", "contact": _CONTACT,
        "licenses": [{"usage": "virtual_server", "license_type": "per_server", "quantity": 2},
                     {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}]}},
    "addition": {"summary": "追加申込: more keys", "value": {
        "kind": "addition", "contract_id": _CONTRACT,
        "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]}},
    "vm_count_increase": {"summary": "仮想サーバー数追加: more VMs on a dedicated hypervisor license", "value": {
        "kind": "vm_count_increase", "contract_id": _CONTRACT,
        "license_id": "9b2f6a1e-7c3d-5e4f-8a9b-0c1d2e3f4a5b", "additional_vms": 5}},
    "cancellation_all": {"summary": "廃止申込: every key (the order ID goes too)", "value": {
        "kind": "cancellation", "contract_id": _CONTRACT, "scope": "all"}},
    "cancellation_some": {"summary": "廃止申込: the named keys", "value": {
        "kind": "cancellation", "contract_id": _CONTRACT, "license_ids": ["9b2f6a1e-7c3d-5e4f-8a9b-0c1d2e3f4a5b"]}},
    "contact_change": {"summary": "連絡先変更", "value": {
        "kind": "contact_change", "contract_id": _CONTRACT,
        "contact": {"email": "new@example.co.jp", "company_name": "New K.K."}}},
}


def application_id_for(secret: bytes, tenant: str, idempotency_key: str | None) -> uuid.UUID:
    """The same tenant and key always give the same application (the status service ignores
    a repeated id); keyed with the server's secret, so nobody else can compute it."""
    if idempotency_key is None:
        return uuid.uuid4()
    digest = hmac.new(secret, f"{tenant}\n{idempotency_key}".encode(), hashlib.sha256).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


async def first_use(pool: asyncpg.Pool, tenant: str, application_id: uuid.UUID, body_sha256: bytes) -> bytes:
    """The digest of the body this tenant's Idempotency-Key was first used with (this one,
    if it is the first use)."""
    async with pool.acquire() as conn:
        first: bytes | None = await conn.fetchval(
            """INSERT INTO intake.idempotency_keys (tenant_id, application_id, body_sha256) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING RETURNING body_sha256""",
            tenant, application_id, body_sha256,
        )
        if first is None:
            first = await conn.fetchval(
                "SELECT body_sha256 FROM intake.idempotency_keys WHERE tenant_id = $1 AND application_id = $2",
                tenant, application_id,
            )
    assert first is not None
    return first


def router(broker: Broker, auth: Authenticator, pool: Callable[[], asyncpg.Pool], id_secret: bytes, source: str,
           status_url: str = "") -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.post(
        "/applications",
        status_code=202,
        summary="Apply (申込): new, addition, VM-count increase, cancellation or contact change",
        responses={
            202: {"model": Received, "description": "Taken; the status service decides next.", "headers": {
                "Location": {"description": "Where to follow the application (GET).", "required": True,
                             "schema": {"type": "string"}}}},
            **openapi.errors(401, 409, 413, 422, 429, 503),
        },
        openapi_extra={
            "parameters": [{
                "name": "Idempotency-Key", "in": "header", "required": False,
                "description": "The same key (and body) returns the same application, however often it is sent.",
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
            }],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": application_json_schema(), "examples": EXAMPLES}}},
        },
    )
    async def submit(request: Request, caller: tenancy.Caller = Depends(auth.caller)) -> JSONResponse:
        tenant = caller.tenant_id
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise ApiError(422, "invalid_request", f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        raw = await read_json(request, "invalid_application")
        try:
            application = parse_application(raw)
        except InvalidApplication as exc:  # R4: nothing is published
            raise ApiError(422, "invalid_application", str(exc), errors=exc.errors) from None
        application_id = application_id_for(id_secret, tenant, idempotency_key)
        if idempotency_key is not None:
            body_sha256 = hashlib.sha256(application.model_dump_json().encode()).digest()
            if await first_use(pool(), tenant, application_id, body_sha256) != body_sha256:
                raise ApiError(409, "idempotency_key_reused",
                               "this Idempotency-Key was used before with another body; a new application needs a new key")
        contract_id = getattr(application, "contract_id", None)
        logs.bind(message_id=str(application_id), tenant_id=tenant, application_id=str(application_id),
                  contract_id=str(contract_id) if contract_id else None)
        entry, event = catalogue.to_event(
            submission_of(application, application_id),
            id=str(application_id),  # the dedupe key: a retried publish is the same message
            source=source,
            tenant_id=tenant,
            subject=str(contract_id) if contract_id else None,
            extensions={"apikeyid": caller.key_id},  # who submitted it, for the record
        )
        try:
            await broker.publish_event(
                broker.topology.name(entry.exchange),
                entry.routing_key,
                event.to_json(),
                message_id=event.id,
                mandatory=True,  # unroutable would mean lost: refuse instead
            )
        except Exception as exc:
            log.warning("could not publish application %s: %r", application_id, exc)
            # Without a confirm the broker may still have taken it: a retry with the same
            # Idempotency-Key is safe either way, so say so.
            raise ApiError(
                503, "unavailable", "the broker did not confirm the application; retry later with the same Idempotency-Key"
            ) from None
        metrics.APPLICATIONS_SUBMITTED.labels(application.kind).inc()
        log.info("application %s received: %s", application_id, application.kind, extra={"kind": application.kind})
        location = f"{status_url}/v1/applications/{application_id}"  # served by the status service
        return JSONResponse(
            {"application_id": str(application_id), "status": "received"},
            status_code=202,
            headers={"Location": location},
        )

    return api
