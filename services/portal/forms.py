"""From the portal's forms to application bodies, and the API's field errors back onto the
form (pure: no I/O). Fields are named by their path in the body (`contact.email`,
`licenses.0.quantity`), so that the API's own validation (R4) speaks of the field the tenant
sees; the portal checks nothing the API would not."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

LICENSE_ROWS = 4  # lines of a new or additional application on one form


@dataclass
class Filled:
    """A form as sent: the body for the API, and where each of its license lines came from."""

    body: dict[str, Any]
    rows: list[int] = field(default_factory=list)  # body line i is form row rows[i]

    def errors_by_field(self, errors: list[dict[str, str]]) -> dict[str, str]:
        """The API's errors keyed by form field name (a license line's own error, such as a
        usage that cannot take the license type, by `licenses.N`)."""
        shown: dict[str, str] = {}
        for error in errors:
            parts = error.get("field", "").split(".")
            if parts[0] == "licenses" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(self.rows):
                parts[1] = str(self.rows[int(parts[1])])
            name = ".".join(parts)
            shown[name] = f"{shown[name]}; {error['problem']}" if name in shown else error.get("problem", "")
        return shown


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(raw: str) -> int | str:
    """A whole number as a number; anything else (other scripts' digits, absurd lengths) as it
    was typed, for the API to name."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else raw


def _lines(form: FormData) -> tuple[list[dict[str, Any]], list[int]]:
    lines, rows = [], []
    for row in range(LICENSE_ROWS):
        quantity = _text(form, f"licenses.{row}.quantity")
        if not quantity:
            continue  # an unused row
        usage, license_type = _text(form, f"licenses.{row}.usage"), _text(form, f"licenses.{row}.license_type")
        line: dict[str, Any] = {"usage": usage, "license_type": license_type, "quantity": _number(quantity)}
        if vm_count := _text(form, f"licenses.{row}.vm_count"):
            line["vm_count"] = _number(vm_count)
        lines.append(line)
        rows.append(row)
    return lines, rows


def _contact(form: FormData) -> dict[str, str]:
    return {"email": _text(form, "contact.email"), "company_name": _text(form, "contact.company_name")}


def new(form: FormData) -> Filled:
    lines, rows = _lines(form)
    return Filled({"kind": "new", "product": _text(form, "product"), "contact": _contact(form), "licenses": lines}, rows)


def addition(form: FormData, contract_id: str) -> Filled:
    lines, rows = _lines(form)
    return Filled({"kind": "addition", "contract_id": contract_id, "licenses": lines}, rows)


def vm_count_increase(form: FormData, contract_id: str) -> Filled:
    return Filled({"kind": "vm_count_increase", "contract_id": contract_id, "license_id": _text(form, "license_id"),
                   "additional_vms": _number(_text(form, "additional_vms"))})


def contact_change(form: FormData, contract_id: str) -> Filled:
    return Filled({"kind": "contact_change", "contract_id": contract_id, "contact": _contact(form)})


def cancellation(form: FormData, contract_id: str) -> Filled:
    """`scope=all`, or the chosen keys; a choice of all hypervisor keys names each of them (R8)."""
    if _text(form, "scope") == "all":
        return Filled({"kind": "cancellation", "contract_id": contract_id, "scope": "all"})
    chosen: list[str] = []
    for value in form.getlist("license_ids"):
        for license_id in str(value).split(","):  # the hypervisor group carries all its ids
            if license_id and license_id not in chosen:
                chosen.append(license_id)
    return Filled({"kind": "cancellation", "contract_id": contract_id, "license_ids": chosen})
