"""`arcserve apply new|addition|vm|contact|cancel`: one application body each (docs/architecture.md §4,
"Application bodies"), submitted with `POST /v1/applications`."""
from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from services.cli import render
from services.cli.client import CliError, Unreachable
from services.cli.licenses import HELP as LICENSE_HELP
from services.cli.licenses import license_callback, parse_line
from services.cli.shell import JsonOption, WatchOption, print_json, session
from services.cli.watch import conclude, watch

apply_app = typer.Typer(
    help="Submit an application (申込). It is processed asynchronously: the answer is its id; --watch follows it.",
    no_args_is_help=True,
)

IdempotencyOption = Annotated[str | None, typer.Option(
    "--idempotency-key", metavar="KEY",
    help="Sent as Idempotency-Key (a new one by default): a retry with the same key returns the same application.",
)]
LicenseOption = Annotated[list[str], typer.Option("--license", "-l", metavar="SPEC", help=LICENSE_HELP, callback=license_callback)]
ContractArg = Annotated[str, typer.Argument(metavar="CONTRACT_ID", help="The contract id (arcserve contracts).", show_default=False)]
EmailOption = Annotated[str, typer.Option("--email", metavar="EMAIL", help="The contact e-mail address (連絡先メールアドレス).")]
CompanyOption = Annotated[str, typer.Option("--company", metavar="NAME", help="The company name (会社名).")]


def submit(ctx: typer.Context, body: dict[str, Any], idempotency_key: str | None, watching: bool,
           as_json: bool) -> None:
    # Always sent with a key: when no answer (or a 503, 429) leaves it unknown whether the
    # application was taken, the same command with this key is safe to run again.
    key = idempotency_key or str(uuid.uuid4())
    with session(ctx, as_json) as api:
        try:
            accepted = api.submit(body, key)
        except CliError as error:
            if isinstance(error, Unreachable) or getattr(error, "status", None) in (429, 502, 503, 504):
                error.lines.append(f"it may have been taken: run the same command with --idempotency-key {key} "
                                   "to apply once whatever happened")
            raise
        if not watching:
            if as_json:
                print_json(accepted)
            else:
                render.console().print(render.received(accepted.data))
            return
        final = watch(api, str(accepted.data["application_id"]), as_json=as_json, exists=True)
        if as_json:
            print_json(final)
        conclude(final)


@apply_app.command("new")
def new(
    ctx: typer.Context,
    product: Annotated[str, typer.Option("--product", metavar="CODE", help="The product code, e.g. arcserve-udp-10.")],
    email: EmailOption,
    company: CompanyOption,
    licenses: LicenseOption,
    idempotency_key: IdempotencyOption = None,
    watching: WatchOption = False,
    as_json: JsonOption = False,
) -> None:
    """新規申込: a new contract for a product: the first keys and a new Arcserve order ID."""  # R1
    body = {"kind": "new", "product": product, "contact": {"email": email, "company_name": company},
            "licenses": [parse_line(spec) for spec in licenses]}
    submit(ctx, body, idempotency_key, watching, as_json)


@apply_app.command("addition")
def addition(
    ctx: typer.Context,
    contract_id: ContractArg,
    licenses: LicenseOption,
    idempotency_key: IdempotencyOption = None,
    watching: WatchOption = False,
    as_json: JsonOption = False,
) -> None:
    """追加申込: more keys on an active contract."""  # R5
    body = {"kind": "addition", "contract_id": contract_id, "licenses": [parse_line(spec) for spec in licenses]}
    submit(ctx, body, idempotency_key, watching, as_json)


@apply_app.command("vm")
def vm(
    ctx: typer.Context,
    contract_id: ContractArg,
    license_id: Annotated[str, typer.Argument(metavar="LICENSE_ID", help="The dedicated hypervisor license's id (arcserve contract ID).",
                                              show_default=False)],
    add: Annotated[int, typer.Option("--add", min=1, metavar="N", help="How many VMs to add (仮想サーバー数追加).")],
    idempotency_key: IdempotencyOption = None,
    watching: WatchOption = False,
    as_json: JsonOption = False,
) -> None:
    """仮想サーバー数追加: raise the VM count of a dedicated hypervisor license."""  # R7
    body = {"kind": "vm_count_increase", "contract_id": contract_id, "license_id": license_id, "additional_vms": add}
    submit(ctx, body, idempotency_key, watching, as_json)


@apply_app.command("contact")
def contact(
    ctx: typer.Context,
    contract_id: ContractArg,
    email: EmailOption,
    company: CompanyOption,
    idempotency_key: IdempotencyOption = None,
    watching: WatchOption = False,
    as_json: JsonOption = False,
) -> None:
    """連絡先変更: change the contact e-mail address and company name."""
    body = {"kind": "contact_change", "contract_id": contract_id, "contact": {"email": email, "company_name": company}}
    submit(ctx, body, idempotency_key, watching, as_json)


@apply_app.command("cancel")
def cancel(
    ctx: typer.Context,
    contract_id: ContractArg,
    everything: Annotated[bool, typer.Option("--all", help="Cancel every key; the contract ends.")] = False,  # R9
    license_ids: Annotated[list[str] | None, typer.Option(
        "--license-id", metavar="ID", help="A key to cancel (repeatable). Hypervisor keys go all together.",  # R8
    )] = None,
    idempotency_key: IdempotencyOption = None,
    watching: WatchOption = False,
    as_json: JsonOption = False,
) -> None:
    """廃止申込: cancel all keys (--all) or some (--license-id), at once."""  # R8, R9
    if everything == bool(license_ids):
        raise typer.BadParameter("give either --all or one or more --license-id, not both and not neither",
                                 param_hint="'--all' / '--license-id'")
    target: dict[str, Any] = {"scope": "all"} if everything else {"license_ids": license_ids}
    submit(ctx, {"kind": "cancellation", "contract_id": contract_id, **target}, idempotency_key, watching, as_json)
