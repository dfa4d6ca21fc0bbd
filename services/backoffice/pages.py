"""The console's pages, in Japanese and English (docs/portal-and-cli.md, "The back-office
console"): an operator signs in with their operator key (held in the sealed session cookie,
shared/http/sessions.py, as the portal holds a tenant's key), lists the open tasks due first,
overdue ones marked, filtered by tenant and kind, and on a task's page types in the order ID
and each key as Arcserve delivered them, every field's problem shown beside it, or rejects the
task with the reason the tenant will read; and lists the revocations at Arcserve that
cancellations asked for, each confirmed once done there. Every form carries the session's CSRF token. The
pages call the console's service layer (services/backoffice/console.py), as its JSON API does;
the key is checked on every page, so a revoked one signs out at once."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from services.backoffice.console import Console, Refused, read_body
from services.backoffice.cursor import Cursor
from services.backoffice.i18n import LANG_COOKIE, LANGUAGES, Words, jst
from services.backoffice.operators import OperatorAuth
from services.backoffice.revocations import STATES as REVOCATION_STATES
from services.backoffice.tasks import STATES, Filters, Task
from shared.contracts import fulfilment, limits
from shared.contracts.applications import Kind
from shared.http.errors import ApiError
from shared.http.sessions import COOKIE, Session, SessionCodec
from shared.tenancy.operators import Operator

PAGE = 50


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.globals.update(jst=jst, kinds=[k.value for k in Kind], states=[*STATES, "all"])
    return env


class Visit:
    """One request's view of the operator: language, session, and the page it renders."""

    def __init__(self, request: Request, codec: SessionCodec, env: jinja2.Environment, secure_cookies: bool):
        self.request = request
        self._codec, self._env = codec, env
        self._secure = secure_cookies or request.url.scheme == "https"
        self.words = Words(request.cookies.get(LANG_COOKIE, "ja"))
        found = codec.decode(request.cookies.get(COOKIE))
        self.session = found or Session.anonymous(time.time())
        self._write_session = found is None
        self.operator: Operator | None = None

    @property
    def address(self) -> str:
        return self.request.client.host if self.request.client else "-"

    def replace_session(self, session: Session) -> None:
        self.session, self._write_session = session, True

    def csrf_ok(self, form: FormData) -> bool:
        token = form.get("csrf")
        return self.session.accepts(token if isinstance(token, str) else None)

    def finish(self, response: Response) -> Response:
        if self._write_session:
            response.set_cookie(COOKIE, self._codec.encode(self.session), max_age=int(self._codec.max_age_s), path="/",
                                httponly=True, samesite="strict", secure=self._secure)
        return response

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        query = self.request.url.query
        html = self._env.get_template(template).render(
            t=self.words, lang=self.words.lang, csrf=self.session.csrf, operator=self.operator,
            here=self.request.url.path + (f"?{query}" if query else ""), **context)
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, to: str) -> Response:
        return self.finish(RedirectResponse(to, status_code=303))


def delivered_from(form: FormData, task: Task) -> dict[str, Any]:
    """The fulfil form as the API's body: `arcserve_order_id`, and `key.<license id>` per license."""
    body: dict[str, Any] = {"license_keys": [
        {"license_id": str(lic.license_id), "license_key": str(form.get(f"key.{lic.license_id}") or "")}
        for lic in task.needs.licenses]}
    if task.needs.arcserve_order_id:
        body["arcserve_order_id"] = str(form.get("arcserve_order_id") or "")
    return body


def beside_fields(errors: list[dict[str, str]], task: Task) -> dict[str, str]:
    """The API's field names as the form's: `license_keys.N.license_key` is `key.<license id>`."""
    ordered = [str(lic.license_id) for lic in task.needs.licenses]
    shown: dict[str, str] = {}
    for error in errors:
        parts = error["field"].split(".")
        if parts[0] == "license_keys" and len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(ordered):
            name = f"key.{ordered[int(parts[1])]}"
        elif parts[0] in ("arcserve_order_id", "reason"):
            name = parts[0]
        else:
            name = "form"
        shown[name] = f"{shown[name]} {error['problem']}" if name in shown else error["problem"]
    return shown


def router(console: Console, auth: OperatorAuth, codec: SessionCodec, *, secure_cookies: bool = False) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    env = _environment()

    async def signed_in(request: Request, render: Callable[[Visit, Operator], Awaitable[Response]]) -> Response:
        """The page for a signed-in operator; the sign-in page, saying why, for anyone else."""
        v = Visit(request, codec, env, secure_cookies)
        try:
            if (proxied := await auth.proxied(request)) is not None:  # signed in at the proxy
                v.operator = proxied
                return await render(v, proxied)
        except ApiError as exc:
            return v.page("signin.html", status=exc.status, error=v.words("unavailable" if exc.status == 503 else
                                                                         "no_such_operator"))
        if v.session.key is None:
            return v.page("signin.html")
        try:
            v.operator = await auth.operator(v.session.key, v.address)
        except ApiError as exc:
            if exc.status != 401:
                return v.page("signin.html", status=exc.status, error=v.words("unavailable"))
            v.replace_session(Session.anonymous(time.time()))  # revoked meanwhile: signed out
            return v.page("signin.html", status=401, error=v.words("signed_out"))
        return await render(v, v.operator)

    async def form_of(request: Request) -> FormData:
        return await request.form(max_fields=300)  # its bytes bounded before: shared/http/form_limit.py

    @pages.get("/")
    async def home(request: Request) -> Response:
        async def render(v: Visit, _: Operator) -> Response:
            return v.redirect("/tasks")
        return await signed_in(request, render)

    @pages.post("/signin")
    async def sign_in(request: Request) -> Response:
        v = Visit(request, codec, env, secure_cookies)
        form = await form_of(request)
        if not v.csrf_ok(form):
            return v.page("signin.html", status=403, error=v.words("expired_form"))
        key = str(form.get("operator_key") or "").strip()
        try:
            v.operator = await auth.operator(key, v.address)
        except ApiError as exc:
            why = "wrong_key" if exc.status == 401 else "too_many" if exc.status == 429 else "unavailable"
            return v.page("signin.html", status=exc.status, error=v.words(why))
        v.replace_session(v.session.signed_in(key, time.time()))
        return v.redirect("/tasks")

    @pages.post("/signout")
    async def sign_out(request: Request) -> Response:
        v = Visit(request, codec, env, secure_cookies)
        if v.csrf_ok(await form_of(request)):
            v.replace_session(Session.anonymous(time.time()))
        return v.redirect("/")

    @pages.get("/lang/{lang}")
    async def language(request: Request, lang: str, next: str = "/") -> Response:
        v = Visit(request, codec, env, secure_cookies)
        response = v.redirect(next if next.startswith("/") and not next.startswith("//") else "/")
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="strict",
                                secure=secure_cookies or request.url.scheme == "https")
        return response

    @pages.get("/tasks")
    async def tasks(request: Request, state: str = "open", tenant: str = "", kind: str = "", overdue: str = "",
                    cursor: str = "") -> Response:
        async def render(v: Visit, _: Operator) -> Response:
            chosen_state = state if state in (*STATES, "all") else "open"
            chosen_kind = kind if kind in {k.value for k in Kind} else ""
            tenant_ = "" if limits.has_control_characters(tenant) else tenant[:128]
            filters = Filters(chosen_state, tenant_ or None, Kind(chosen_kind) if chosen_kind else None,  # type: ignore[arg-type]
                              overdue == "true")
            chosen = {"state": chosen_state, "tenant": tenant_, "kind": chosen_kind,
                      "overdue": "true" if filters.overdue else ""}
            try:
                after = Cursor.decode(cursor) if cursor else None
            except ValueError:
                after = None
            found, following = await console.page(filters, after, PAGE)
            more = None
            if following is not None:
                more = "/tasks?" + urlencode({**{k: val for k, val in chosen.items() if val},
                                              "cursor": following.encode()})
            return v.page("tasks.html", tasks=found, now=console.clock(), chosen=chosen, more=more)
        return await signed_in(request, render)

    async def task_page(v: Visit, task: Task, status: int = 200, **context: Any) -> Response:
        context.setdefault("errors", {})
        context.setdefault("values", {})
        return v.page("task.html", status=status, task=task, now=console.clock(), **context)

    @pages.get("/tasks/{tenant}/{application_id}")
    async def show(request: Request, tenant: str, application_id: str) -> Response:
        async def render(v: Visit, _: Operator) -> Response:
            try:
                task = await console.task(application_id, tenant)
            except Refused:
                return v.page("missing.html", status=404)
            return await task_page(v, task, notice=request.query_params.get("done"))
        return await signed_in(request, render)

    def closing(action: str) -> None:
        @pages.post(f"/tasks/{{tenant}}/{{application_id}}/{action}")
        async def close(request: Request, tenant: str, application_id: str) -> Response:
            async def render(v: Visit, operator: Operator) -> Response:
                form = await form_of(request)
                try:
                    task = await console.task(application_id, tenant)
                except Refused:
                    return v.page("missing.html", status=404)
                if not v.csrf_ok(form):
                    return await task_page(v, task, 403, errors={"form": v.words("expired_form")})
                values = {k: str(val) for k, val in form.items() if k != "csrf"}
                try:
                    if action == "fulfil":
                        body = read_body(fulfilment.Fulfilment, delivered_from(form, task))
                        await console.fulfil(operator, application_id, tenant, body)
                    else:
                        body = read_body(fulfilment.Refusal, {"reason": str(form.get("reason") or "").strip()})
                        await console.reject(operator, application_id, tenant, body)
                except Refused as refused:
                    status = {"forbidden": 403, "not_open": 409, "unavailable": 503}.get(refused.code, 422)
                    errors = beside_fields(refused.errors or [], task) if refused.errors else {
                        "form": v.words(refused.code) if refused.code in ("forbidden", "not_open", "unavailable")
                        else refused.message}
                    return await task_page(v, await console.task(application_id, tenant), status, errors=errors,
                                           values=values, action=action)
                return v.redirect(f"/tasks/{tenant}/{application_id}?done={action}")
            return await signed_in(request, render)

    closing("fulfil")
    closing("reject")

    async def revocations_page(v: Visit, state: str, cursor: str, status: int = 200, **context: Any) -> Response:
        chosen = state if state in (*REVOCATION_STATES, "all") else "open"
        try:
            after = Cursor.decode(cursor) if cursor else None
        except ValueError:
            after = None
        found, following = await console.revocations(chosen, None, after, PAGE)  # type: ignore[arg-type]
        more = "/revocations?" + urlencode({"state": chosen, "cursor": following.encode()}) if following else None
        return v.page("revocations.html", status=status, revocations=found, chosen=chosen, more=more, **context)

    @pages.get("/revocations")
    async def revocations(request: Request, state: str = "open", cursor: str = "", done: str = "") -> Response:
        async def render(v: Visit, _: Operator) -> Response:
            return await revocations_page(v, state, cursor, notice=done == "confirm", error=None)
        return await signed_in(request, render)

    @pages.post("/revocations/{tenant}/{application_id}/confirm")
    async def confirm(request: Request, tenant: str, application_id: str) -> Response:
        async def render(v: Visit, operator: Operator) -> Response:
            if not v.csrf_ok(await form_of(request)):
                return await revocations_page(v, "open", "", 403, notice=False, error=v.words("expired_form"))
            try:
                await console.confirm(operator, application_id, tenant)
            except Refused as refused:
                status = {"forbidden": 403, "not_open": 409, "unavailable": 503}.get(refused.code, 404)
                word = refused.code if refused.code in ("forbidden", "not_open", "unavailable") else "missing"
                return await revocations_page(v, "open", "", status, notice=False,
                                              error=v.words(f"revocation_{word}" if word in ("forbidden", "not_open")
                                                            else word))
            return v.redirect("/revocations?done=confirm")
        return await signed_in(request, render)

    return pages
