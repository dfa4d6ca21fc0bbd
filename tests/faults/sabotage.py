"""Deliberate breakages, for the checker's own test (`make faults-selftest`): each is a bug
the fault checker must catch. They are test-only by construction: a service runs broken
only when the fault suite starts it through this module,

    python -m tests.faults.sabotage BREAKAGE -m services.status

which patches that one service in its own process and then runs it. Production code has no
switch to turn them on and never imports this module.
"""
from __future__ import annotations

import dataclasses
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Breakage:
    service: str  # the one it breaks (a services.<name> module)
    patch: Callable[[], None]
    fault: str = "none"  # the fault it needs to show, if any
    sql: str | None = None  # run on the stack's database once the services are up
    what: str = ""
    shows: str = "wrong"  # the checker's column that must count it: lost, duplicated or wrong


def _second_key() -> None:
    """The license issuer announces a second, different key for the licenses it issued, as a
    worker would that re-issues on every delivery instead of re-announcing what it stored."""
    from services.license_issuer.handlers import ISSUES, QUEUE
    from shared.contracts import catalogue, events
    from shared.issuance import simulated_license_key

    for entry in catalogue.entries(*ISSUES):
        route = QUEUE.routes[entry.type]
        issue = route.handler

        async def issue_twice(accepted, ctx, issue=issue):
            await issue(accepted, ctx)
            seal = ctx.deps.keyring.seal
            ctx.publish(events.LicenseKeys(
                application_id=accepted.application_id, contract_id=accepted.contract_id,
                keys=[events.SealedKey(license_id=lic.license_id,
                                       sealed_key=seal(simulated_license_key(), context=str(lic.license_id)))
                      for lic in accepted.licenses],
            ))

        QUEUE.routes[entry.type] = dataclasses.replace(route, handler=issue_twice)


def _skip_order_id_cancellation() -> None:
    """The order-ID service takes a full cancellation and does nothing with it (R9)."""
    from services.order_id.handlers import QUEUE
    from shared.contracts import catalogue, events

    async def ignore(accepted, ctx):
        return None

    [entry] = catalogue.entries(events.CancellationAccepted)
    QUEUE.routes[entry.type] = dataclasses.replace(QUEUE.routes[entry.type], handler=ignore)


def _spurious_rejection() -> None:
    """The status service rejects every contact change as if a change were in progress."""
    from services.status.domain.commands import Kind
    from services.status.domain.model import Contract, ReasonCode

    apply = Contract.apply

    def apply_or_reject(self, application, now):
        if application.kind is Kind.CONTACT_CHANGE:
            self.applications[application.application_id] = application
            application.reject(ReasonCode.CHANGE_IN_PROGRESS, "sabotage: a change is in progress", now)
            return
        apply(self, application, now)

    Contract.apply = apply_or_reject  # type: ignore[method-assign]


def _no_r2() -> None:
    """The status service never finds the tenant's live contract for the product (R2); with
    the database's backstop index dropped (`sql`), a second new opens a second contract."""
    from services.status.repository import PostgresRepository

    async def none(self, tenant_id, product):
        return None

    PostgresRepository.live_for_product = none  # type: ignore[method-assign]


def _late_result_applies() -> None:
    """The status service takes a license key whenever it comes, even for a key cancelled
    meanwhile, and makes it active again."""
    from services.status.domain.model import Contract, LicenseStatus

    def license_issued(self, license_id, license_key, now):
        lic = self.licenses.get(license_id)
        if lic is None:
            return
        lic.license_key, lic.issued_at, lic.status = license_key, now, LicenseStatus.ACTIVE
        self._complete_finished(now)

    Contract.license_issued = license_issued  # type: ignore[method-assign]


def _no_revocation() -> None:
    """The license issuer revokes the keys for the tenant and never asks Arcserve to: the keys
    stay live there, unpaid for."""
    from services.license_issuer.revocations import PostgresRevocations

    async def forget(self, revocation):
        return None

    PostgresRevocations.record = forget  # type: ignore[method-assign]


BREAKAGES: dict[str, Breakage] = {
    "second key": Breakage("license_issuer", _second_key, what="a worker issues a second key", shows="duplicated"),
    "order ID never cancelled": Breakage("order_id", _skip_order_id_cancellation,
                                         what="the order-ID cancellation is skipped", shows="lost"),
    "spurious rejection": Breakage("status", _spurious_rejection, what="contact changes rejected (change_in_progress)"),
    "R2 not enforced": Breakage("status", _no_r2, sql="DROP INDEX status.contracts_one_live_per_product",
                                what="a second new for a held product opens a second contract"),
    "revocation never asked": Breakage("license_issuer", _no_revocation, what="keys never revoked at Arcserve",
                                       shows="lost"),
    "late result applied": Breakage("status", _late_result_applies, fault="duplicates and reordering",
                                    what="license keys replayed after cancellation make the key active"),
}


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] not in BREAKAGES or argv[1] != "-m":
        raise SystemExit(f"usage: python -m tests.faults.sabotage BREAKAGE -m MODULE; breakages: {', '.join(BREAKAGES)}")
    breakage, module = BREAKAGES[argv[0]], argv[2]
    if module == f"services.{breakage.service}":
        breakage.patch()
    sys.argv = [module]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
