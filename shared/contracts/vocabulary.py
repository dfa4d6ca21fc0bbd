"""The public vocabulary (docs/architecture.md, "Rules"): the kinds of application, the
usages and license types. Plain values, no schema: the message models use them, and so
does the status service's domain, which owns its rules but speaks the same words."""
from enum import StrEnum


class Kind(StrEnum):
    NEW = "new"
    ADDITION = "addition"
    VM_COUNT_INCREASE = "vm_count_increase"
    CANCELLATION = "cancellation"
    CONTACT_CHANGE = "contact_change"


class Usage(StrEnum):
    VIRTUAL_SERVER = "virtual_server"
    BARE_METAL = "bare_metal"
    HYPERVISOR = "hypervisor"


class LicenseType(StrEnum):
    PER_SERVER = "per_server"
    DEDICATED_HYPERVISOR = "dedicated_hypervisor"
