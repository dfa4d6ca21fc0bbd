"""Human output: rich tables and panels, the Japanese label beside each English value (as the API gives
them, `*_label`), times in JST. Everything the API says is shown as text, never as markup."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shared.contracts import labels

JST = timezone(timedelta(hours=9), "JST")  # Japan keeps no daylight saving time
PIPE_WIDTH = 160  # a pipe or a log has no terminal width: wide enough for ids not to fold
NONE = "—"
STYLES = {
    "active": "green", "preparing": "yellow", "cancelled": "red",
    "received": "cyan", "processing": "yellow", "completed": "green", "rejected": "bold red",
}
STEPS = ("received", "processing", "completed")


def console() -> Console:
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(highlight=False, width=width)


def clean(value: object) -> str:
    """A value of the API as plain text: no control characters (no terminal escapes)."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() or ch == "\n" else "\ufffd" for ch in text)


def jst(value: str | None, zone: bool = True) -> str:
    """An API time in Japan time: `2026-11-27 10:00 JST` (without the zone where a header says it)."""
    if not value:
        return NONE
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return clean(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(JST).strftime("%Y-%m-%d %H:%M" + (" JST" if zone else ""))


def status(value: str | None, label: str | None) -> Text:
    """`active 提供中`: the English value and its Japanese label."""
    return Text(both(value, label), style=STYLES.get(value or "", ""))


def both(value: str | None, label: str | None) -> str:
    return clean(value or NONE) + (f" {clean(label)}" if label else "")


def order_id(order: dict[str, Any] | None) -> Text:
    if not order:
        return Text(f"{NONE} (issuing 発行中)", style="yellow")
    state = str(order.get("status", ""))
    return Text.assemble(clean(order.get("value")), " (", status(state, labels.ORDER_ID_STATUS.get(state)), ")")


def _fields(rows: Iterable[tuple[str, RenderableType | str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for name, value in rows:
        grid.add_row(name, Text(value) if isinstance(value, str) else value)
    return grid


def _reason(reason: dict[str, Any] | None) -> str:
    return f"{clean(reason.get('code'))}: {clean(reason.get('message'))}" if reason else NONE


def _product(product: dict[str, Any] | None) -> str:
    if not product:
        return NONE
    return f"{clean(product.get('name'))} {clean(product.get('version'))} ({clean(product.get('code'))})".strip()


def _desk(desk: dict[str, Any] | None, keys: tuple[str, ...] = ("name", "phone", "url", "hours"),
          between: str = "\n") -> str:
    if not desk:
        return NONE
    return between.join(clean(desk.get(k)) for k in keys if desk.get(k))


def _usage_type(item: dict[str, Any]) -> Text:
    return Text.assemble(
        f"{clean(item.get('usage'))} / {clean(item.get('license_type'))}\n",
        (f"{clean(item.get('usage_label'))} / {clean(item.get('license_type_label'))}", "dim"),
    )


def _license_types(lines: list[dict[str, Any]]) -> Text:
    shown = Text()
    for number, line in enumerate(lines):
        counts = [status(state, labels.CONTRACT_STATUS[state]).append(f" ×{line.get(state)}")
                  for state in ("active", "preparing", "cancelled") if line.get(state)]
        shown.append_text(Text("\n" if number else "").append_text(_usage_type(line)))
        shown.append_text(Text("\n  ").append_text(Text(", ").join(counts) if counts else Text("0")))
    return shown if lines else Text(NONE)


def _charge(start: str | None, end: str | None) -> str:
    return f"{jst(start)} – {jst(end)}" if start or end else NONE


def contract_card(number: int, item: dict[str, Any]) -> Panel:
    """A row of the main menu (Arcserveライセンス メインメニュー), as a card: it fits any width."""
    ids = item.get("application_ids") or []
    total = item.get("applications_total", len(ids))
    rows: list[tuple[str, RenderableType | str]] = [
        ("ステータス status", status(item.get("status"), item.get("status_label"))),
        ("製品 product", _product(item.get("product"))),
        ("ライセンスタイプ license types", _license_types(item.get("license_types") or [])),
        ("サポート窓口 support desk", _desk(item.get("support_desk"), ("name", "phone"), "  ")),
        ("ArcserveオーダーID order ID", order_id(item.get("arcserve_order_id"))),
        ("申込ID application", f"{clean(ids[0])} (latest of {total})" if ids else NONE),
        ("申込日 applied", jst(item.get("applied_at"))),
        ("廃止日 cancelled", jst(item.get("cancelled_at"))),
        ("課金 charge start – end", _charge(item.get("charge_start_at"), item.get("charge_end_at"))),
    ]
    title = Text.assemble(f"No.{number}  ", ("契約ID contract ", "bold"), clean(item.get("contract_id")))
    return Panel(_fields(rows), title=title, title_align="left", expand=False)


def contracts_view(items: list[dict[str, Any]]) -> Group:
    heading = Text("Arcserveライセンス メインメニュー  contracts", style="bold")
    return Group(heading, *(contract_card(n, item) for n, item in enumerate(items, start=1)))


def applications_table(items: list[dict[str, Any]], title: str = "申込 applications") -> Table:
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("申込ID application\n契約ID contract", no_wrap=True, min_width=36)
    table.add_column("種別 kind\nステータス status\n理由 reason", overflow="fold")
    table.add_column("申込 submitted\n完了予定 expected\n完了 ended (JST)", no_wrap=True)
    for app in items:
        shown = Text.assemble(both(app.get("kind"), app.get("kind_label")), "\n",
                              status(app.get("status"), app.get("status_label")))
        if app.get("reason"):
            shown.append("\n" + _reason(app.get("reason")), style=STYLES["rejected"])
        table.add_row(
            f"{clean(app.get('application_id'))}\n{clean(app.get('contract_id') or NONE)}", shown,
            "\n".join(jst(app.get(k), zone=False) for k in ("submitted_at", "expected_completion_at", "completed_at")),
        )
    return table


def licenses_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="ライセンスキー licenses", title_justify="left", show_lines=True)
    table.add_column("ライセンスID license\nライセンスキー key", no_wrap=True, min_width=36)
    table.add_column("利用用途 usage / ライセンスタイプ type\nVM数 vm_count", overflow="fold")
    table.add_column("ステータス status\n課金 charge (JST)", no_wrap=True)
    for lic in items:
        usage = _usage_type(lic)
        if lic.get("vm_count") is not None:
            usage.append(f"\nVM {clean(lic.get('vm_count'))}")
        billable = "billable 課金対象" if lic.get("billable") else "not billable 課金対象外"
        table.add_row(
            f"{clean(lic.get('license_id'))}\n{clean(lic.get('license_key') or NONE + ' (issuing 発行中)')}", usage,
            Text.assemble(status(lic.get("status"), lic.get("status_label")), "\n", (billable, "dim"), "\n",
                          f"{jst(lic.get('charge_start_at'), zone=False)} –\n{jst(lic.get('charge_end_at'), zone=False)}"),
        )
    return table


def contract_detail(data: dict[str, Any]) -> Group:
    """R11: product and version, support desk, order ID and its status, every key, the history."""
    contact = data.get("contact") or {}
    head = _fields([
        ("契約ID contract", clean(data.get("contract_id"))),
        ("ステータス status", status(data.get("status"), data.get("status_label"))),
        ("製品 product", _product(data.get("product"))),
        ("サポート窓口 support desk", _desk(data.get("support_desk"))),
        ("連絡先 contact", f"{clean(contact.get('company_name'))} <{clean(contact.get('email'))}>"),
        ("ArcserveオーダーID order ID", order_id(data.get("arcserve_order_id"))),
        ("申込日 created", jst(data.get("created_at"))),
    ])
    history = data.get("applications") or []
    total = data.get("applications_total", len(history))
    return Group(
        Panel(head, title="契約の詳細 contract", title_align="left", expand=False),
        licenses_table(data.get("licenses") or []),
        applications_table(history, f"申込履歴 applications ({len(history)} of {total})"),
    )


def steps(current: str | None) -> Text:
    """received → processing → completed, the steps reached marked; a rejection ends the line after received."""
    if current == "rejected":
        return Text.assemble(("● " + both("received", labels.APPLICATION_STATUS["received"]), STYLES["received"]),
                             (" → ", "dim"), ("✗ " + both("rejected", labels.APPLICATION_STATUS["rejected"]),
                                              STYLES["rejected"]))
    line = Text()
    reached = STEPS.index(current) if current in STEPS else 0
    for number, step in enumerate(STEPS):
        if number:
            line.append(" → ", style="dim")
        done = number <= reached
        line.append(("● " if done else "○ ") + both(step, labels.APPLICATION_STATUS[step]),
                    style=STYLES[step] if done else "dim")
    return line


def application_panel(app: dict[str, Any], note: RenderableType | None = None) -> Panel:
    rows: list[tuple[str, RenderableType | str]] = [
        ("申込ID application", clean(app.get("application_id"))),
        ("種別 kind", both(app.get("kind"), app.get("kind_label"))),
        ("契約ID contract", clean(app.get("contract_id") or NONE)),
        ("ステータス status", status(app.get("status"), app.get("status_label"))),
        ("進捗 progress", steps(app.get("status"))),
        ("申込日時 submitted", jst(app.get("submitted_at"))),
        ("完了予定 expected", jst(app.get("expected_completion_at"))
         + ("  予定を過ぎています past the expected time" if app.get("overdue") else "")),
        ("完了日時 ended", jst(app.get("completed_at"))),
    ]
    if app.get("reason"):
        rows.insert(4, ("理由 reason", Text(_reason(app.get("reason")), style=STYLES["rejected"])))
    if note is not None:
        rows.append(("", note))
    return Panel(_fields(rows), title="申込 application", title_align="left", expand=False)


def received(answer: dict[str, Any]) -> Text:
    """What `apply` says without --watch: the application id and status."""
    state = str(answer.get("status", ""))
    return Text.assemble(
        "申込ID application ", (clean(answer.get("application_id")), "bold"), "  ",
        status(state, labels.APPLICATION_STATUS.get(state)),
    )
