"""`--license usage:type:quantity[:vm_count]`: one license line of a `new` or `addition` body. The syntax is
checked here (a usage error naming the problem); the rules on the values (which usage takes
which type, the limits) are the API's, which answers 422 naming the field."""
from __future__ import annotations

from typing import Any

import typer

from shared.contracts.vocabulary import LicenseType, Usage

SYNTAX = "usage:type:quantity[:vm_count]"
HELP = (f"A license line, {SYNTAX} (repeatable), e.g. virtual_server:per_server:2 or "
        f"hypervisor:dedicated_hypervisor:1:10. Usages: {', '.join(Usage)}; types: {', '.join(LicenseType)}.")


def _count(raw: str, what: str, spec: str) -> int:
    if not raw.isdigit():
        raise typer.BadParameter(f"{spec!r}: {what} must be a whole number, not {raw!r}")
    return int(raw)


def parse_line(spec: str) -> dict[str, Any]:
    parts = spec.strip().split(":")
    if len(parts) not in (3, 4):
        raise typer.BadParameter(f"{spec!r}: expected {SYNTAX} ({len(parts)} part(s) given)")
    usage, license_type = parts[0].strip(), parts[1].strip()
    if usage not in {u.value for u in Usage}:
        raise typer.BadParameter(f"{spec!r}: unknown usage {usage!r}; one of {', '.join(Usage)}")
    if license_type not in {t.value for t in LicenseType}:
        raise typer.BadParameter(f"{spec!r}: unknown license type {license_type!r}; one of {', '.join(LicenseType)}")
    line: dict[str, Any] = {"usage": usage, "license_type": license_type,
                            "quantity": _count(parts[2].strip(), "quantity", spec)}
    if len(parts) == 4:
        line["vm_count"] = _count(parts[3].strip(), "vm_count", spec)
    return line



def license_callback(specs: list[str] | None) -> list[str] | None:
    """Checks the syntax while the command line is parsed, so that the usage error names the option."""
    for spec in specs or []:
        parse_line(spec)
    return specs
