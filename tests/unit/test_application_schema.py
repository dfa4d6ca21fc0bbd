"""R4: application bodies are validated at intake; wished-for dates, unknown fields and
every value outside the schema are refused with the offending field named."""
from __future__ import annotations

import pytest

from shared.contracts.applications import (
    MAX_LICENSE_LINES,
    MAX_QUANTITY,
    AdditionApplication,
    CancellationApplication,
    ContactChangeApplication,
    InvalidApplication,
    NewApplication,
    VmCountIncreaseApplication,
    parse_application,
)

CONTRACT_ID = "0b6c7f4e-3c1d-4a8e-9d52-7c1a2b3c4d5e"
LICENSE_ID = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
OTHER_LICENSE_ID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
CONTACT = {"email": "ops@example.co.jp", "company_name": "Example K.K."}
VIRTUAL = {"usage": "virtual_server", "license_type": "per_server", "quantity": 2}
DEDICATED = {"usage": "hypervisor", "license_type": "dedicated_hypervisor", "quantity": 1, "vm_count": 10}


def line(usage="virtual_server", license_type="per_server", quantity=1, **extra):
    return {"usage": usage, "license_type": license_type, "quantity": quantity, **extra}


def new(*lines, **extra):
    return {"kind": "new", "product": "arcserve-udp-10", "contact": CONTACT,
            "licenses": list(lines) or [VIRTUAL], **extra}


def addition(*lines, **extra):
    return {"kind": "addition", "contract_id": CONTRACT_ID, "licenses": list(lines) or [VIRTUAL], **extra}


def vm_count_increase(**extra):
    return {"kind": "vm_count_increase", "contract_id": CONTRACT_ID, "license_id": LICENSE_ID,
            "additional_vms": 5, **extra}


def cancellation(**fields):
    return {"kind": "cancellation", "contract_id": CONTRACT_ID, **(fields or {"scope": "all"})}


def contact_change(contact=CONTACT, **extra):
    return {"kind": "contact_change", "contract_id": CONTRACT_ID, "contact": contact, **extra}


def refusal(body) -> list[dict[str, str]]:
    with pytest.raises(InvalidApplication) as caught:
        parse_application(body)
    return caught.value.errors


# ---- every kind's valid body parses ----------------------------------------------------

@pytest.mark.parametrize(
    ("body", "model"),
    [
        pytest.param(new(VIRTUAL, DEDICATED), NewApplication, id="new-design-example"),
        pytest.param(new(line("bare_metal")), NewApplication, id="new-bare_metal-per_server"),
        pytest.param(new(line("hypervisor")), NewApplication, id="new-hypervisor-per_server"),
        pytest.param(new(line(quantity=MAX_QUANTITY)), NewApplication, id="new-quantity-at-limit"),
        pytest.param(new(*[line()] * MAX_LICENSE_LINES), NewApplication, id="new-lines-at-limit"),
        pytest.param({**new(), "product": "arcserve-udp-9"}, NewApplication, id="new-other-catalog-product"),
        pytest.param(addition(DEDICATED), AdditionApplication, id="addition"),
        pytest.param(vm_count_increase(), VmCountIncreaseApplication, id="vm_count_increase"),
        pytest.param(cancellation(scope="all"), CancellationApplication, id="cancellation-scope-all"),
        pytest.param(cancellation(license_ids=[LICENSE_ID, OTHER_LICENSE_ID]), CancellationApplication,
                     id="cancellation-license_ids"),
        pytest.param(contact_change(), ContactChangeApplication, id="contact_change"),
    ],
)
def test_valid_body_parses(body, model):
    parsed = parse_application(body)
    assert isinstance(parsed, model)
    assert parsed.kind == body["kind"]


def test_new_keeps_lines_as_given():
    parsed = parse_application(new(VIRTUAL, DEDICATED))
    assert isinstance(parsed, NewApplication)
    assert [(l.usage, l.license_type, l.quantity, l.vm_count) for l in parsed.licenses] == [
        ("virtual_server", "per_server", 2, None),
        ("hypervisor", "dedicated_hypervisor", 1, 10),
    ]


# ---- R4: wished-for dates and unknown fields -------------------------------------------

ALL_KINDS = {
    "new": new,
    "addition": addition,
    "vm_count_increase": vm_count_increase,
    "cancellation": lambda **extra: cancellation(scope="all", **extra),
    "contact_change": contact_change,
}


@pytest.mark.parametrize("date_field", ["desired_start_date", "desired_cancellation_date"])
@pytest.mark.parametrize("kind", list(ALL_KINDS))
def test_every_kind_refuses_a_wished_for_date(kind, date_field):
    errors = refusal(ALL_KINDS[kind](**{date_field: "2026-07-01"}))
    assert [e["field"] for e in errors] == [date_field]
    assert "unknown field" in errors[0]["problem"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(new(note="please hurry"), "note", id="top-level"),
        pytest.param(new(line(desired_start_date="2026-07-01")), "licenses.0.desired_start_date",
                     id="in-license-line-new"),
        pytest.param(addition(VIRTUAL, line(colour="red")), "licenses.1.colour", id="in-license-line-addition"),
        pytest.param({**new(), "contact": {**CONTACT, "desired_start_date": "2026-07-01"}},
                     "contact.desired_start_date", id="in-contact-new"),
        pytest.param(contact_change({**CONTACT, "phone": "03-0000-0000"}), "contact.phone",
                     id="in-contact-contact_change"),
    ],
)
def test_unknown_field_is_refused_by_name(body, field):
    errors = refusal(body)
    assert [e["field"] for e in errors] == [field]
    assert "unknown field" in errors[0]["problem"]


# ---- R4: every other schema break, with the offending field named ----------------------
# `field` is the error's path; `mentions` must appear in it or in the problem text (checks
# that cross fields, e.g. usage × license_type, are reported on the line that breaks them).

@pytest.mark.parametrize(
    ("body", "field", "mentions"),
    [
        pytest.param({**new(), "product": "arcserve-udp-99"}, "product", "arcserve-udp-99", id="unknown-product"),
        pytest.param(new(line("virtual_server", "dedicated_hypervisor", vm_count=5)), "licenses.0", "license_type",
                     id="virtual_server-dedicated_hypervisor"),
        pytest.param(new(line("bare_metal", "dedicated_hypervisor", vm_count=5)), "licenses.0", "license_type",
                     id="bare_metal-dedicated_hypervisor"),
        pytest.param(addition(line("bare_metal", "dedicated_hypervisor", vm_count=5)), "licenses.0", "license_type",
                     id="addition-bare_metal-dedicated_hypervisor"),
        pytest.param(new(line("container")), "licenses.0.usage", "usage", id="unknown-usage"),
        pytest.param(new(line(license_type="per_cpu")), "licenses.0.license_type", "license_type",
                     id="unknown-license_type"),
        pytest.param(new(line("hypervisor", "dedicated_hypervisor")), "licenses.0", "vm_count",
                     id="vm_count-missing-for-dedicated"),
        pytest.param(new(line("hypervisor", "dedicated_hypervisor", vm_count=0)), "licenses.0.vm_count", "vm_count",
                     id="vm_count-zero"),
        pytest.param(new(line("hypervisor", "per_server", vm_count=5)), "licenses.0", "vm_count",
                     id="vm_count-given-for-per_server-hypervisor"),
        pytest.param(new(line(vm_count=5)), "licenses.0", "vm_count", id="vm_count-given-for-virtual_server"),
        pytest.param(new(line(quantity=0)), "licenses.0.quantity", "quantity", id="quantity-0"),
        pytest.param(new(line(quantity=-1)), "licenses.0.quantity", "quantity", id="quantity-negative"),
        pytest.param(new(line(quantity=MAX_QUANTITY + 1)), "licenses.0.quantity", "quantity", id="quantity-101"),
        pytest.param(new(line(quantity="2")), "licenses.0.quantity", "quantity", id="quantity-string"),
        pytest.param(new(line(quantity=2.5)), "licenses.0.quantity", "quantity", id="quantity-float"),
        pytest.param(new(line(quantity=True)), "licenses.0.quantity", "quantity", id="quantity-bool"),
        pytest.param(new(VIRTUAL, line(quantity=0)), "licenses.1.quantity", "quantity", id="quantity-0-second-line"),
        pytest.param({**new(), "contact": {**CONTACT, "email": "ops.example.co.jp"}}, "contact.email", "email",
                     id="email-without-at"),
        pytest.param({**new(), "contact": {**CONTACT, "email": "ops@"}}, "contact.email", "email",
                     id="email-without-domain"),
        pytest.param({**new(), "contact": {**CONTACT, "company_name": ""}}, "contact.company_name", "company_name",
                     id="company-name-empty"),
        pytest.param(contact_change({**CONTACT, "company_name": "   "}), "contact.company_name", "company_name",
                     id="company-name-blank"),
        pytest.param({**new(), "contact": {"email": CONTACT["email"]}}, "contact.company_name", "company_name",
                     id="company-name-missing"),
        pytest.param(new(*[line()] * (MAX_LICENSE_LINES + 1)), "licenses", "licenses", id="too-many-license-lines"),
        pytest.param({**new(), "licenses": []}, "licenses", "licenses", id="no-license-lines"),
        pytest.param(addition(VIRTUAL, contract_id="not-a-uuid"), "contract_id", "contract_id",
                     id="contract_id-not-a-uuid"),
        pytest.param(vm_count_increase(additional_vms=0), "additional_vms", "additional_vms",
                     id="additional_vms-zero"),
        pytest.param(vm_count_increase(additional_vms="5"), "additional_vms", "additional_vms",
                     id="additional_vms-string"),
        pytest.param({k: v for k, v in vm_count_increase().items() if k != "license_id"}, "license_id", "license_id",
                     id="vm_count_increase-without-license_id"),
        pytest.param(cancellation(scope="all", license_ids=[LICENSE_ID]), "(body)", "license_ids",
                     id="cancellation-scope-and-license_ids"),
        pytest.param({"kind": "cancellation", "contract_id": CONTRACT_ID}, "(body)", "license_ids",
                     id="cancellation-neither-scope-nor-license_ids"),
        pytest.param(cancellation(license_ids=[LICENSE_ID, LICENSE_ID]), "(body)", "license_ids",
                     id="cancellation-duplicated-license_ids"),
        pytest.param(cancellation(license_ids=[]), "license_ids", "license_ids", id="cancellation-empty-license_ids"),
        pytest.param(cancellation(scope="some"), "scope", "scope", id="cancellation-unknown-scope"),
        pytest.param({**new(), "kind": "renewal"}, "kind", "renewal", id="unknown-kind"),
        pytest.param({k: v for k, v in new().items() if k != "kind"}, "kind", "kind", id="missing-kind"),
    ],
)
def test_schema_break_is_refused_naming_the_field(body, field, mentions):
    errors = refusal(body)
    matching = [e for e in errors if e["field"] == field]
    assert matching, f"no error on {field!r}: {errors}"
    assert any(mentions in f"{e['field']} {e['problem']}" for e in matching), errors


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([new()], id="list"),
        pytest.param("new", id="string"),
        pytest.param(None, id="null"),
        pytest.param(42, id="number"),
    ],
)
def test_non_object_body_is_refused(body):
    assert refusal(body) == [{"field": "(body)", "problem": "must be a JSON object"}]


def test_every_bad_field_is_named_at_once():
    body = {**new(line(quantity=0)), "contact": {"email": "nope", "company_name": ""}}
    assert {e["field"] for e in refusal(body)} == {
        "contact.email", "contact.company_name", "licenses.0.quantity",
    }


def test_a_stored_body_still_reads_after_its_product_left_the_catalog():
    body = {"kind": "new", "product": "arcserve-udp-8",
            "contact": {"email": "ops@example.co.jp", "company_name": "Example K.K."},
            "licenses": [{"usage": "bare_metal", "license_type": "per_server", "quantity": 1}]}
    with pytest.raises(InvalidApplication):
        parse_application(body)  # a new application must name a product on sale
    stored = parse_application(body, stored=True)
    assert isinstance(stored, NewApplication)
    assert stored.product == "arcserve-udp-8"
