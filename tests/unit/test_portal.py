"""The portal's pure parts: forms to application bodies and the API's errors back onto the
form, sealed sessions, and the words it shows."""
from __future__ import annotations

import base64

from starlette.datastructures import FormData

from services.portal import forms
from services.portal.i18n import Words
from shared.http.sessions import Session, SessionCodec
from shared.sealing import Keyring

CONTRACT = "6f1d7e0c-2a59-4c1b-9a9e-0d5f1b7a4e21"


def form(*pairs: tuple[str, str]) -> FormData:
    return FormData(list(pairs))


def test_unused_rows_are_left_out_and_errors_land_on_the_row_that_was_typed() -> None:
    filled = forms.new(form(
        ("product", "arcserve-udp-10"), ("contact.email", " ops@example.co.jp "), ("contact.company_name", "Example"),
        ("licenses.0.usage", "virtual_server"), ("licenses.0.license_type", "per_server"), ("licenses.0.quantity", ""),
        ("licenses.2.usage", "hypervisor"), ("licenses.2.license_type", "dedicated_hypervisor"),
        ("licenses.2.quantity", "1"), ("licenses.2.vm_count", "ten"),
    ))
    assert filled.body == {
        "kind": "new", "product": "arcserve-udp-10",
        "contact": {"email": "ops@example.co.jp", "company_name": "Example"},
        "licenses": [{"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": "ten"}],
    }
    shown = filled.errors_by_field([
        {"field": "licenses.0.vm_count", "problem": "Input should be a valid integer"},
        {"field": "licenses.0", "problem": "usage 'x' cannot take license_type 'y'"},
        {"field": "contact.email", "problem": "not an e-mail"},
        {"field": "contact.email", "problem": "too long"},
    ])
    assert shown == {"licenses.2.vm_count": "Input should be a valid integer",
                     "licenses.2": "usage 'x' cannot take license_type 'y'",
                     "contact.email": "not an e-mail; too long"}


def test_a_cancellation_names_all_or_the_chosen_keys_and_the_hypervisor_group_as_each_of_its_keys() -> None:
    assert forms.cancellation(form(("scope", "all"), ("license_ids", "a")), CONTRACT).body == {
        "kind": "cancellation", "contract_id": CONTRACT, "scope": "all"}
    chosen = forms.cancellation(form(("scope", "some"), ("license_ids", "a"), ("license_ids", "h1,h2"),
                                     ("license_ids", "a")), CONTRACT)
    assert chosen.body["license_ids"] == ["a", "h1", "h2"]


def test_numbers_are_sent_as_numbers_and_anything_else_as_typed_for_the_api_to_name() -> None:
    body = forms.vm_count_increase(form(("license_id", "L"), ("additional_vms", "5")), CONTRACT).body
    assert body["additional_vms"] == 5
    assert forms.vm_count_increase(form(("license_id", "L"), ("additional_vms", "-1")), CONTRACT).body["additional_vms"] == "-1"


def codec(max_age_s: float = 3600) -> SessionCodec:
    return SessionCodec(Keyring.parse(Keyring.new_key_text(), "TEST"), max_age_s, "arcserve-portal-session")


def test_a_session_is_sealed_and_opens_only_with_its_keyring_until_it_expires() -> None:
    sealer = codec()
    session = Session.anonymous(now=1000.0).signed_in("secret-api-key", now=1000.0)
    cookie = sealer.encode(session)
    assert "secret-api-key" not in cookie and "secret-api-key" not in base64.urlsafe_b64decode(cookie).decode()
    assert sealer.decode(cookie, now=1000.0 + 3599) == session
    assert sealer.decode(cookie, now=1000.0 + 3601) is None  # expired
    assert codec().decode(cookie, now=1000.0) is None  # another server's keyring
    assert sealer.decode(cookie[:-4] + "AAAA", now=1000.0) is None  # tampered
    assert sealer.decode("not base64 at all", now=1000.0) is None


def test_signing_in_changes_the_csrf_token_and_only_the_exact_token_is_accepted() -> None:
    anonymous = Session.anonymous(now=0.0)
    signed = anonymous.signed_in("k", now=0.0)
    assert signed.csrf != anonymous.csrf
    assert signed.accepts(signed.csrf)
    assert not signed.accepts(anonymous.csrf) and not signed.accepts(None) and not signed.accepts("")


def test_refusals_are_said_in_the_language_chosen() -> None:
    reason = {"code": "change_in_progress", "message": "addition x is still processing"}
    assert Words("ja").reason(reason) == "追加または仮想サーバー数追加の処理中は廃止できません。"
    assert Words("en").reason(reason).startswith("An addition")
    assert Words("ja").reason({"code": "unheard_of", "message": "the API's own words"}) == "the API's own words"
    assert Words("xx").lang == "ja"  # Japanese by default
    assert Words("ja").label("contract_status", "preparing") == "新規準備中"


def test_the_forwarder_keeps_this_hops_headers_and_never_leaves_v1() -> None:
    from starlette.requests import Request

    from services.portal.forward import inside_v1, request_headers

    def request(method: str, headers: list[tuple[str, str]]) -> Request:
        return Request({"type": "http", "method": method, "path": "/v1/contracts", "query_string": b"",
                        "headers": [(k.encode(), v.encode()) for k, v in headers]})

    sent = [("authorization", "Bearer k"), ("cookie", "arcserve_session=sealed"), ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"), ("x-arcserve-client", "6.6.6.6;0;forged"), ("connection", "close, x-secret"), ("x-secret", "s"), ("host", "portal"),
            ("content-length", "0"), ("idempotency-key", "i"), ("accept", "application/json")]
    assert request_headers(request("GET", sent)) == [(b"authorization", b"Bearer k"), (b"idempotency-key", b"i"),
                                                      (b"accept", b"application/json")]
    assert (b"content-length", b"0") in request_headers(request("POST", sent))
    assert inside_v1("/v1/contracts/abc") and inside_v1("/v1/applications")
    for climbing in ("/v1/../metrics", "/v1/..%2Fmetrics", "/v1/%2e%2e/readyz", "/v1/contracts/%2E/x", "/metrics", "/v10/x"):
        assert not inside_v1(climbing), climbing


def test_odd_digits_are_sent_as_typed_not_turned_into_numbers() -> None:
    for typed in ("²", "١٢", "9" * 50):
        assert forms.vm_count_increase(form(("additional_vms", typed)), CONTRACT).body["additional_vms"] == typed
