"""`--watch`: poll the application every half second, with no deadline, until it is completed or rejected,
showing its progress live. A passing outage (no answer, 429, 502-504) is waited out once the
application is known to exist; so is the short time before the status service has recorded an
application just submitted (404)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import typer
from rich.live import Live
from rich.spinner import Spinner

from services.cli import render
from services.cli.client import Answer, Api, ApiFailure, CliError, Unreachable

POLL_S = 0.5
ENDED = ("completed", "rejected")
PASSING = (429, 502, 503, 504)
INTERRUPTED = 130  # as a shell reports SIGINT


def _poll(api: Api, application_id: str, exists: bool) -> tuple[Answer | None, str]:
    """The application now, or None and why not (when the wait should go on)."""
    try:
        return api.get(f"/v1/applications/{application_id}"), ""
    except ApiFailure as failure:
        if failure.status == 404 and exists:
            return None, "not recorded yet, waiting"
        if failure.status in PASSING and exists:
            return None, f"{failure.code}, retrying"
        raise
    except Unreachable:
        if exists:
            return None, "no answer, retrying"
        raise


def follow(api: Api, application_id: str, exists: bool, show: Callable[[Answer | None, str], None]) -> Answer:
    """Polls until the application ended; `exists`: it was just accepted (so a 404 is only a delay)."""
    while True:
        answer, why = _poll(api, application_id, exists)
        show(answer, why)
        if answer is not None:
            exists = True
            if answer.data.get("status") in ENDED:
                return answer
        time.sleep(POLL_S)


def watch(api: Api, application_id: str, *, as_json: bool, exists: bool = False) -> Answer:
    """Follows the application (live on stdout unless `as_json`) and answers its final state."""
    try:
        if as_json:
            return follow(api, application_id, exists, lambda _answer, _why: None)
        return _live(api, application_id, exists)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching; application {application_id} goes on "
                   f"(arcserve application {application_id} --watch)", err=True)
        raise typer.Exit(INTERRUPTED) from None


def _live(api: Api, application_id: str, exists: bool) -> Answer:
    started = time.monotonic()
    last: dict[str, Any] = {"application_id": application_id, "status": "received", "status_label": "受付済"}
    with Live(render.application_panel(last), console=render.console(), refresh_per_second=8) as live:

        def show(answer: Answer | None, why: str) -> None:
            nonlocal last
            if answer is not None:
                last = answer.data
            if last.get("status") in ENDED:
                live.update(render.application_panel(last))
                return
            note = f"watching, {time.monotonic() - started:.0f} s" + (f" ({why})" if why else "")
            live.update(render.application_panel(last, Spinner("dots", text=note, style="cyan")))

        return follow(api, application_id, exists, show)


def conclude(answer: Answer) -> None:
    """A rejected application ends the command with exit 1, its reason on stderr."""
    if answer.data.get("status") == "rejected":
        reason = answer.data.get("reason") or {}
        raise CliError([f"rejected: {reason.get('code', '?')}: {reason.get('message', '')}"])
