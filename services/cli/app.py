"""`arcserve`, the tenants' command line (docs/architecture.md, "Portal and command line"): submit
applications, follow them, read contracts. Every command takes --json (the API's answer, unchanged).
Exit codes: 0 ok, 1 an API error (or a watched application rejected), 2 a usage error."""
from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.text import Text

from services.cli import render
from services.cli.apply import apply_app
from services.cli.client import DEFAULT_URL, KEY_ENV, URL_ENV, Answer, Settings
from services.cli.shell import JsonOption, WatchOption, print_json, session
from services.cli.watch import conclude, watch

app = typer.Typer(
    name="arcserve",
    help="Arcserveライセンス: apply for license keys and follow your contracts (the tenants' command line).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(apply_app, name="apply")


class ContractStatus(StrEnum):
    preparing = "preparing"
    active = "active"
    cancelled = "cancelled"


class ApplicationStatus(StrEnum):
    received = "received"
    processing = "processing"
    completed = "completed"
    rejected = "rejected"


LimitOption = Annotated[int, typer.Option("--limit", min=1, max=100, metavar="N", help="Rows per page.")]
CursorOption = Annotated[str | None, typer.Option("--cursor", metavar="CURSOR", help="The next_cursor of a previous page.")]


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(
        "--url", envvar=URL_ENV, metavar="URL", help="The API's base URL (the portal's origin).",
    )] = DEFAULT_URL,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar=KEY_ENV, show_default=False, metavar="KEY",
        help="The tenant's API key (prefer the environment variable: a flag shows in the process list).",
    )] = None,
) -> None:
    ctx.obj = Settings(url, api_key)


def _more(answer: Answer) -> None:
    cursor = answer.data.get("next_cursor")
    if cursor:
        render.console().print(Text(f"more: --cursor {render.clean(cursor)}", style="dim"))


@app.command("contracts")
def contracts(
    ctx: typer.Context,
    status: Annotated[ContractStatus | None, typer.Option("--status", help="Only contracts in this status.")] = None,
    product: Annotated[str | None, typer.Option("--product", metavar="CODE", help="Only contracts of this product code.")] = None,
    limit: LimitOption = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your contracts, newest first: the main menu (メインメニュー)."""
    with session(ctx, as_json) as api:
        answer = api.get("/v1/contracts", {"status": status.value if status else None, "product": product,
                                           "limit": limit, "cursor": cursor})
    if as_json:
        print_json(answer)
        return
    items = answer.data.get("items") or []
    out = render.console()
    out.print(render.contracts_view(items) if items else
              "ご契約はまだありません no contracts yet: start with arcserve apply new")
    _more(answer)


@app.command("contract")
def contract(
    ctx: typer.Context,
    contract_id: Annotated[str, typer.Argument(metavar="CONTRACT_ID", help="The contract id.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """A contract's details (詳細): order ID, every key, the application history (R11)."""
    with session(ctx, as_json) as api:
        answer = api.get(f"/v1/contracts/{contract_id}")
    if as_json:
        print_json(answer)
    else:
        render.console().print(render.contract_detail(answer.data))


@app.command("application")
def application(
    ctx: typer.Context,
    application_id: Annotated[str, typer.Argument(metavar="APPLICATION_ID", help="The application id.", show_default=False)],
    watching: WatchOption = False,
    as_json: JsonOption = False,
) -> None:
    """An application's status; with --watch, live until it is completed or rejected."""
    with session(ctx, as_json) as api:
        answer = watch(api, application_id, as_json=as_json) if watching else api.get(
            f"/v1/applications/{application_id}")
        if as_json:
            print_json(answer)
        elif not watching:
            render.console().print(render.application_panel(answer.data))
        if watching:
            conclude(answer)


@app.command("applications")
def applications(
    ctx: typer.Context,
    contract_id: Annotated[str | None, typer.Option("--contract-id", metavar="ID", help="Only this contract's applications.")] = None,
    status: Annotated[ApplicationStatus | None, typer.Option("--status", help="Only applications in this status.")] = None,
    limit: LimitOption = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your applications, newest first."""
    with session(ctx, as_json) as api:
        answer = api.get("/v1/applications", {"contract_id": contract_id, "status": status.value if status else None,
                                              "limit": limit, "cursor": cursor})
    if as_json:
        print_json(answer)
        return
    items = answer.data.get("items") or []
    render.console().print(render.applications_table(items) if items else "申込はありません no applications")
    _more(answer)


def main() -> None:
    app()
