"""`arcserve`, the tenants' command line (docs/architecture.md, "Portal and command line"): submit
applications, follow them, read contracts. Every command takes --json (the API's answer, unchanged).
Exit codes: 0 ok, 1 an API error (or a watched application rejected), 2 a usage error."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer
from rich.console import RenderableType
from rich.text import Text

from services.cli import render
from services.cli.apply import apply_app
from services.cli.client import DEFAULT_URL, KEY_ENV, URL_ENV, Answer, Settings
from services.cli.shell import JsonOption, WatchOption, print_json, session
from services.cli.watch import conclude, watch
from shared.contracts import labels

app = typer.Typer(
    name="arcserve",
    help="Arcserveライセンス: apply for license keys and follow your contracts (the tenants' command line).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(apply_app, name="apply")


def one_of(values: Iterable[str]) -> Callable[[str | None], str | None]:
    """A --status check: one of the API's own values (shared/contracts/labels.py), or a usage error naming them."""
    allowed = list(values)

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check


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


def _page(answer: Answer, as_json: bool, view: Callable[[list[dict[str, Any]]], RenderableType], empty: str) -> None:
    """A page of a list: the API's JSON, or its items as `view` draws them and where the next page starts."""
    if as_json:
        print_json(answer)
        return
    items = answer.data.get("items") or []
    out = render.console()
    out.print(view(items) if items else empty)
    if cursor := answer.data.get("next_cursor"):
        out.print(Text(f"more: --cursor {render.clean(cursor)}", style="dim"))


@app.command("contracts")
def contracts(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        "--status", metavar="|".join(labels.CONTRACT_STATUS), callback=one_of(labels.CONTRACT_STATUS),
        help="Only contracts in this status.",
    )] = None,
    product: Annotated[str | None, typer.Option("--product", metavar="CODE", help="Only contracts of this product code.")] = None,
    limit: LimitOption = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your contracts, newest first: the main menu (メインメニュー)."""
    with session(ctx, as_json) as api:
        answer = api.get("/v1/contracts", {"status": status, "product": product,
                                           "limit": limit, "cursor": cursor})
    _page(answer, as_json, render.contracts_view, "ご契約はまだありません no contracts yet: start with arcserve apply new")


@app.command("contract")
def contract(
    ctx: typer.Context,
    contract_id: Annotated[str, typer.Argument(metavar="CONTRACT_ID", help="The contract id.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """A contract's details (詳細): order ID, every key, the application history."""  # R11
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
    status: Annotated[str | None, typer.Option(
        "--status", metavar="|".join(labels.APPLICATION_STATUS), callback=one_of(labels.APPLICATION_STATUS),
        help="Only applications in this status.",
    )] = None,
    limit: LimitOption = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Your applications, newest first."""
    with session(ctx, as_json) as api:
        answer = api.get("/v1/applications", {"contract_id": contract_id, "status": status,
                                              "limit": limit, "cursor": cursor})
    _page(answer, as_json, render.applications_table, "申込はありません no applications")


def main() -> None:
    app()
