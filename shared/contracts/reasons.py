"""Reason codes of rejected applications (docs/architecture.md, "Rules"). Their values are public."""
from enum import StrEnum


class ReasonCode(StrEnum):
    INVALID_APPLICATION = "invalid_application"  # R4: fails the schema
    CONTRACT_EXISTS = "contract_exists"  # R2
    CONTRACT_PREPARING = "contract_preparing"  # R3
    CHANGE_IN_PROGRESS = "change_in_progress"  # R6
    NOT_DEDICATED_HYPERVISOR = "not_dedicated_hypervisor"  # R7
    HYPERVISOR_PARTIAL_CANCELLATION = "hypervisor_partial_cancellation"  # R8
    LICENSE_NOT_ACTIVE = "license_not_active"  # R8
    CONTRACT_CANCELLED = "contract_cancelled"  # R10
    NOT_FOUND = "not_found"
    TOO_MANY_LICENSES = "too_many_licenses"  # a contract's keys are bounded (docs/architecture.md, "Security")
    VENDOR_REFUSED = "vendor_refused"  # Arcserve refused what was accepted (fulfilment, docs/architecture.md)
