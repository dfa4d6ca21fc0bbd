"""What every command shares: the API session, its failures said on stderr (and, with --json, the API's
error JSON on stdout), and the output of a JSON answer unchanged."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from services.cli.client import Answer, Api, CliError, Settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer unchanged (for scripts).")]
WatchOption = Annotated[bool, typer.Option(
    "--watch", "-w", help="Follow the application live until it is completed or rejected (exit 1 if rejected).",
)]


def settings(ctx: typer.Context) -> Settings:
    found = ctx.find_object(Settings)
    assert found is not None, "the callback sets the settings"
    return found


def fail(error: CliError, as_json: bool) -> typer.Exit:
    if as_json and error.body:
        typer.echo(error.body)
    for line in error.lines:
        typer.echo(line, err=True)
    return typer.Exit(error.exit_code)


@contextmanager
def session(ctx: typer.Context, as_json: bool) -> Iterator[Api]:
    """An API session for one command; a CliError inside ends the command with its exit code."""
    try:
        with Api(settings(ctx)) as api:
            yield api
    except CliError as error:
        raise fail(error, as_json) from None


def print_json(answer: Answer) -> None:
    typer.echo(answer.text)
