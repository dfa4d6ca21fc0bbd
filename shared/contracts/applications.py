"""Application bodies (docs/architecture.md, "Public contract"), validated the same way at intake (HTTP) and at the
status service (AMQP submissions). R4: unknown fields, including any wished-for date, are
refused; so is every value outside the limits below."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.catalog import products
from shared.contracts import limits
from shared.contracts.vocabulary import Kind, LicenseType, Usage

__all__ = ["Kind", "LicenseType", "Usage"]  # with the models below: the vocabulary they use

# Size limits (docs/architecture.md, "Security"): every list and string is bounded.
MAX_LICENSE_LINES = 20
MAX_QUANTITY = 100
MAX_VM_COUNT = 10_000
MAX_LICENSE_IDS = 500
MAX_COMPANY_NAME = 200
MAX_KEYS_PER_APPLICATION = 100  # the sum of the quantities: one key per unit (R1, R5)


VALID_USAGE_TYPES = frozenset(
    {
        (Usage.VIRTUAL_SERVER, LicenseType.PER_SERVER),
        (Usage.BARE_METAL, LicenseType.PER_SERVER),
        (Usage.HYPERVISOR, LicenseType.PER_SERVER),
        (Usage.HYPERVISOR, LicenseType.DEDICATED_HYPERVISOR),
    }
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Contact(_Body):
    email: EmailStr = Field(max_length=254)
    company_name: Annotated[str, AfterValidator(limits.no_control_characters)] = Field(
        min_length=1, max_length=MAX_COMPANY_NAME
    )


class LicenseLine(_Body):
    usage: Usage
    license_type: LicenseType
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)
    vm_count: StrictInt | None = Field(default=None, ge=1, le=MAX_VM_COUNT)

    @model_validator(mode="after")
    def _usage_type_and_vm_count(self) -> LicenseLine:
        if (self.usage, self.license_type) not in VALID_USAGE_TYPES:
            raise ValueError(
                f"usage {self.usage.value!r} cannot take license_type {self.license_type.value!r}"
            )
        dedicated = self.license_type is LicenseType.DEDICATED_HYPERVISOR
        if dedicated and self.vm_count is None:
            raise ValueError("vm_count is required for a dedicated_hypervisor license")
        if not dedicated and self.vm_count is not None:
            raise ValueError("vm_count is only allowed for a dedicated_hypervisor license")
        return self


def _within_keys_per_application(lines: list[LicenseLine]) -> list[LicenseLine]:
    keys = sum(line.quantity for line in lines)
    if keys > MAX_KEYS_PER_APPLICATION:
        raise ValueError(f"{keys} license keys in one application; the limit is {MAX_KEYS_PER_APPLICATION}")
    return lines


Lines = Annotated[
    list[LicenseLine],
    Field(min_length=1, max_length=MAX_LICENSE_LINES),
    AfterValidator(_within_keys_per_application),
]


class NewApplication(_Body):
    """R1: a product, a contact and one or more license lines."""

    kind: Literal["new"]
    product: str = Field(max_length=64)
    contact: Contact
    licenses: Lines

    @field_validator("product")
    @classmethod
    def _known_product(cls, code: str, info: ValidationInfo) -> str:
        if info.context and info.context.get("stored"):
            return code  # accepted when the product was sold; a later catalog change must not undo it
        if code not in products():
            raise ValueError(f"unknown product code {code!r}; known: {', '.join(sorted(products()))}")
        return code


class AdditionApplication(_Body):
    """R5: more keys on an active contract."""

    kind: Literal["addition"]
    contract_id: UUID
    licenses: Lines


class VmCountIncreaseApplication(_Body):
    """R7: more VMs on an active dedicated hypervisor license."""

    kind: Literal["vm_count_increase"]
    contract_id: UUID
    license_id: UUID
    additional_vms: StrictInt = Field(ge=1, le=MAX_VM_COUNT)


class CancellationApplication(_Body):
    """R8: `scope: "all"`, or a list of license ids (exactly one of the two)."""

    kind: Literal["cancellation"]
    contract_id: UUID
    scope: Literal["all"] | None = None
    license_ids: Annotated[list[UUID], Field(min_length=1, max_length=MAX_LICENSE_IDS)] | None = None

    @model_validator(mode="after")
    def _scope_or_ids(self) -> CancellationApplication:
        if (self.scope is None) == (self.license_ids is None):
            raise ValueError('give either scope "all" or license_ids, not both and not neither')
        if self.license_ids is not None and len(set(self.license_ids)) != len(self.license_ids):
            raise ValueError("license_ids must not repeat an id")
        return self


class ContactChangeApplication(_Body):
    kind: Literal["contact_change"]
    contract_id: UUID
    contact: Contact


Application = Annotated[
    NewApplication | AdditionApplication | VmCountIncreaseApplication | CancellationApplication | ContactChangeApplication,
    Field(discriminator="kind"),
]
_application_adapter: TypeAdapter[Application] = TypeAdapter(Application)


Submission = Union["NewSubmission", "AdditionSubmission", "VmCountIncreaseSubmission", "CancellationSubmission",
                   "ContactChangeSubmission"]


# Submissions (`arcserve.application.<kind>` on `arcserve.applications`): the body plus the
# application id its publisher chose. As strict as the bodies (R4).
class NewSubmission(NewApplication):
    application_id: UUID


class AdditionSubmission(AdditionApplication):
    application_id: UUID


class VmCountIncreaseSubmission(VmCountIncreaseApplication):
    application_id: UUID


class CancellationSubmission(CancellationApplication):
    application_id: UUID


class ContactChangeSubmission(ContactChangeApplication):
    application_id: UUID


SUBMISSIONS: dict[Kind, type[Submission]] = {
    Kind.NEW: NewSubmission,
    Kind.ADDITION: AdditionSubmission,
    Kind.VM_COUNT_INCREASE: VmCountIncreaseSubmission,
    Kind.CANCELLATION: CancellationSubmission,
    Kind.CONTACT_CHANGE: ContactChangeSubmission,
}


def submission_of(body: Application, application_id: UUID) -> Submission:
    """The message intake publishes for a validated body."""
    return SUBMISSIONS[Kind(body.kind)](**dict(body), application_id=application_id)


class InvalidApplication(ValueError):
    """A body that breaks the schema. `errors` name each offending field (R4)."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['problem']}" for e in errors))


def describe(error: Any) -> dict[str, str]:
    loc = list(error["loc"])
    if loc and loc[0] in Kind.__members__.values():
        loc = loc[1:]  # pydantic prefixes the discriminator's tag; the field path is what helps
    if error["type"].startswith("union_tag"):
        loc = ["kind"]
    field = ".".join(limits.printable(str(part)) for part in loc) or "(body)"
    problem = error["msg"]
    if error["type"] == "extra_forbidden":
        problem = "unknown field (wished-for dates and other extra fields are not accepted)"  # R4
    elif problem.startswith("Value error, "):
        problem = problem.removeprefix("Value error, ")
    return {"field": field, "problem": problem}


def parse_application(body: Any, *, stored: bool = False) -> Application:
    """Validate an application body; raise InvalidApplication naming each bad field.
    `stored`: a body validated before, read back (the catalog may have changed since)."""
    if not isinstance(body, dict):
        raise InvalidApplication([{"field": "(body)", "problem": "must be a JSON object"}])
    try:
        return _application_adapter.validate_python(body, context={"stored": stored})
    except ValidationError as exc:
        raise InvalidApplication([describe(e) for e in exc.errors()]) from None


def application_json_schema() -> dict[str, Any]:
    return _application_adapter.json_schema()
