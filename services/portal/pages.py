"""The license main menu (docs/architecture.md, "Portal and command line"): server-rendered pages over the public
API, called with the signed-in tenant's key. Every form carries the session's CSRF token and an
Idempotency-Key, so a double click or a resent form applies once. Live parts of a page name a
fragment URL that static/portal.js fetches again while something is still pending."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.portal import forms
from services.portal.i18n import LANGUAGES, Words
from services.portal.upstream import Answer, Upstream
from shared.catalog import products
from shared.http import bearer
from shared.http.sessions import COOKIE, Session, SessionCodec

JST = timezone(timedelta(hours=9), "JST")
LANG_COOKIE = "arcserve_lang"
MENU_PAGE = 50
# How long after its 202 an application the status service has not recorded yet is shown as
# received rather than not found (it is normally recorded within milliseconds).
RECEIVED_GRACE_S = 60.0
LIVE = ("received", "processing")


def jst(value: str | None, *, date_only: bool = False) -> str:
    """An API time as tenants read it: Japan time."""
    if not value:
        return ""
    at = datetime.fromisoformat(value).astimezone(JST)
    return at.strftime("%Y-%m-%d") if date_only else at.strftime("%Y-%m-%d %H:%M JST")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.globals.update(jst=jst, license_rows=range(forms.LICENSE_ROWS))
    return env


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


class Visit:
    """One request's view of the tenant: language, session, and the answers it renders."""

    def __init__(self, request: Request, codec: SessionCodec, env: jinja2.Environment, secure_cookies: bool):
        self.request = request
        self._codec = codec
        self._env = env
        self._secure = secure_cookies or request.url.scheme == "https"
        self.words = Words(request.cookies.get(LANG_COOKIE, "ja"))
        found = codec.decode(request.cookies.get(COOKIE))
        self.expired = found is None and COOKIE in request.cookies
        self.session = found or Session.anonymous(time.time())
        self._write_session = found is None

    @property
    def api_key(self) -> str | None:
        return self.session.key

    def replace_session(self, session: Session) -> None:
        self.session, self._write_session = session, True

    def csrf_ok(self, form: FormData) -> bool:
        token = form.get("csrf")
        return self.session.accepts(token if isinstance(token, str) else None)

    def proof(self, application_id: str, since: int) -> str:
        """That this session was told 202 for the application at `since` (keyed by its CSRF
        token: worth nothing to another session)."""
        return hmac.new(self.session.csrf.encode(), f"{application_id}\n{since}".encode(), hashlib.sha256).hexdigest()[:32]

    def finish(self, response: Response) -> Response:
        if self._write_session:
            response.set_cookie(
                COOKIE, self._codec.encode(self.session), max_age=int(self._codec.max_age_s), path="/",
                httponly=True, samesite="strict", secure=self._secure,
            )
        return response

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        query = self.request.url.query
        context.setdefault("idempotency_key", secrets.token_urlsafe(24))
        html = self._env.get_template(template).render(
            t=self.words, lang=self.words.lang, csrf=self.session.csrf, signed_in=self.api_key is not None,
            here=self.request.url.path + (f"?{query}" if query else ""), **context,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, to: str) -> Response:
        return self.finish(RedirectResponse(to, status_code=303))

    def set_language(self, response: Response, lang: str) -> None:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="strict", secure=self._secure)


def router(upstream: Upstream, codec: SessionCodec, *, secure_cookies: bool = False) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    env = _environment()
    Render = Callable[[Visit, str], Awaitable[Response]]

    def visit(request: Request) -> Visit:
        return Visit(request, codec, env, secure_cookies)

    async def signed_in(request: Request, render: Render) -> Response:
        """The page for a signed-in tenant; the sign-in page, saying why, for anyone else."""
        v = visit(request)
        if v.api_key is None:
            return v.redirect("/?why=session_expired" if v.expired else "/")
        return await render(v, v.api_key)

    def trouble(v: Visit, answer: Answer) -> Response:
        """A page for an answer that is not the one asked for: a revoked key signs out."""
        if answer.status == 401:
            v.replace_session(Session.anonymous(time.time()))
            return v.redirect("/?why=bad_key")
        if answer.status == 404:
            return v.page("error.html", 404, message=v.words("not_found"))
        if answer.status == 429:
            return v.page("error.html", 429, message=v.words("rate_limited"))
        if answer.status == 422 and answer.body:
            return v.page("error.html", 422, message=answer.body.get("message", ""))
        return v.page("error.html", 503 if answer.status >= 500 else answer.status, message=v.words("unavailable"))

    async def contract(key: str, contract_id: str) -> Answer:
        ident = _uuid(contract_id)
        return await upstream.get(key, f"/v1/contracts/{ident}") if ident else Answer(404, None)

    # ---- sign-in, sign-out, language ---------------------------------------------------
    async def menu(v: Visit, key: str, template: str) -> Response:
        cursor = v.request.query_params.get("cursor")
        start = v.request.query_params.get("start", "1")
        answer = await upstream.get(key, "/v1/contracts", {"limit": str(MENU_PAGE), **({"cursor": cursor} if cursor else {})})
        if not answer.ok:
            return trouble(v, answer)
        items = answer.body["items"]
        live_products = {c["product"]["code"] for c in items if c["status"] != "cancelled"}  # R2
        return v.page(template, contracts=items, next_cursor=answer.body["next_cursor"], cursor=cursor or "",
                      start=int(start) if start.isdecimal() and len(start) < 7 else 1,
                      live_products=live_products, live=_live_menu(items))

    @pages.get("/")
    async def home(request: Request, why: str | None = None) -> Response:
        v = visit(request)
        if v.api_key is None:
            notice = "session_expired" if v.expired else why if why in ("bad_key", "signed_out", "session_expired") else None
            return v.page("signin.html", notice=notice and v.words(notice))
        return await menu(v, v.api_key, "menu.html")

    @pages.get("/menu/rows")
    async def menu_rows(request: Request) -> Response:
        return await signed_in(request, lambda v, key: menu(v, key, "_rows.html"))

    @pages.post("/signin")
    async def sign_in(request: Request) -> Response:
        v = visit(request)
        form = await request.form()
        if not v.csrf_ok(form):
            return v.page("signin.html", 403, notice=v.words("csrf"))
        key = form.get("api_key")
        key = key.strip() if isinstance(key, str) else ""
        answer = await upstream.get(key, "/v1/contracts", {"limit": "1"}) if bearer.well_formed(key) else Answer(401, None)
        if answer.status == 401:
            return v.page("signin.html", 401, notice=v.words("bad_key"))
        if answer.code == "too_many_failures":  # this client's wrong keys (shared/http/failures.py)
            page = v.page("signin.html", 429, notice=v.words("too_many_failures"))
            page.headers["Retry-After"] = answer.retry_after or "1"
            return page
        if not answer.ok:
            return trouble(v, answer)
        v.replace_session(v.session.signed_in(key, time.time()))
        return v.redirect("/")

    @pages.post("/signout")
    async def sign_out(request: Request) -> Response:
        v = visit(request)
        form = await request.form()
        if not v.csrf_ok(form):
            return v.page("error.html", 403, message=v.words("csrf"))
        v.replace_session(Session.anonymous(time.time()))
        return v.redirect("/?why=signed_out")

    @pages.get("/lang/{lang}")
    async def language(request: Request, lang: str, next: str = "/") -> Response:
        v = visit(request)
        response = v.redirect(next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/")
        if lang in LANGUAGES:
            v.set_language(response, lang)
        return response

    # ---- the detail view (R11) and an application's progress ---------------------------
    async def detail(v: Visit, key: str, contract_id: str, template: str) -> Response:
        answer = await contract(key, contract_id)
        if not answer.ok:
            return trouble(v, answer)
        return v.page(template, c=answer.body, live=_live_contract(answer.body))

    async def application(v: Visit, key: str, application_id: str, template: str) -> Response:
        ident = _uuid(application_id)
        answer = await upstream.get(key, f"/v1/applications/{ident}") if ident else Answer(404, None)
        since, proof = v.request.query_params.get("since", ""), v.request.query_params.get("proof", "")
        if answer.status == 404 and ident and since.isdecimal() and len(since) < 12 \
                and hmac.compare_digest(proof, v.proof(ident, int(since))) \
                and 0 <= time.time() - int(since) < RECEIVED_GRACE_S:
            # This session was told 202 a moment ago; the status service has not recorded it yet.
            received = {"application_id": ident, "kind": None, "status": "received", "reason": None,
                        "contract_id": None, "submitted_at": None, "expected_completion_at": None, "completed_at": None}
            return v.page(template, a=received, live=True, pending_query=f"?since={since}&proof={proof}")
        if not answer.ok:
            return trouble(v, answer)
        return v.page(template, a=answer.body, live=answer.body["status"] in LIVE, pending_query="")

    def with_live_part(path: str, template: str, render: Callable[[Visit, str, str, str], Awaitable[Response]]) -> None:
        """A page, and at `path/live` the part of it that portal.js fetches again: one render,
        the whole template (`x.html`) or its live part (`_x.html`)."""
        def route(name: str) -> Callable[[Request, str], Awaitable[Response]]:
            async def show(request: Request, ident: str) -> Response:
                return await signed_in(request, lambda v, key: render(v, key, ident, name))
            return show

        pages.add_api_route(path, route(template), methods=["GET"])
        pages.add_api_route(f"{path}/live", route(f"_{template}"), methods=["GET"])

    with_live_part("/contracts/{ident}", "detail.html", detail)
    with_live_part("/applications/{ident}", "application.html", application)

    # ---- the forms: one GET shows it, one POST applies --------------------------------
    def form_page(v: Visit, kind: str, c: dict[str, Any] | None, status: int = 200, **context: Any) -> Response:
        return v.page(f"form_{kind}.html", status, kind=kind, c=c, products=list(products().values()), **context)

    async def show_form(request: Request, kind: str, contract_id: str | None) -> Response:
        async def render(v: Visit, key: str) -> Response:
            c = None
            if contract_id is not None:
                answer = await contract(key, contract_id)
                if not answer.ok:
                    return trouble(v, answer)
                c = answer.body
            return form_page(v, kind, c, values=_initial(kind, c, request.query_params), errors={}, notice=None)

        return await signed_in(request, render)

    async def apply(request: Request, kind: str, contract_id: str | None,
                    fill: Callable[[FormData], forms.Filled]) -> Response:
        async def render(v: Visit, key: str) -> Response:
            form = await request.form()
            sent_key = form.get("idempotency_key")
            sent_key = sent_key if isinstance(sent_key, str) and 0 < len(sent_key) <= 255 else None

            async def again(status: int, errors: Mapping[str, str], notice: str | None, *,
                            same_key: bool = False) -> Response:
                """The form again, as it was sent. The contract it shows is read only now: a
                form that applies needs no read before it. After an answer that may not have
                been the last word (503, 429) the form keeps its Idempotency-Key: sending it
                again cannot apply twice."""
                c = None
                if contract_id is not None:
                    answer = await contract(key, contract_id)
                    if not answer.ok:
                        return trouble(v, answer)
                    c = answer.body
                keep = {"idempotency_key": sent_key} if same_key and sent_key else {}
                return form_page(v, kind, c, status, values=_values(form), errors=errors, notice=notice, **keep)

            if not v.csrf_ok(form):
                return await again(403, {}, v.words("csrf"), same_key=True)
            filled = fill(form)
            answer = await upstream.submit(key, filled.body, sent_key)
            if answer.status == 202:
                ident, since = answer.body["application_id"], int(time.time())
                return v.redirect(f"/applications/{ident}?since={since}&proof={v.proof(ident, since)}")
            if answer.status == 401:
                return trouble(v, answer)
            body = answer.body if isinstance(answer.body, dict) else {}
            if answer.status == 422:
                errors = body.get("errors") or []
                return await again(422, filled.errors_by_field(errors),
                                   v.words("form_errors") if errors else body.get("message"))
            if answer.status == 409:
                return await again(409, {}, body.get("message"))
            return await again(answer.status, {}, v.words("rate_limited" if answer.status == 429 else "unavailable"),
                               same_key=True)

        return await signed_in(request, render)

    @pages.get("/apply/new")
    async def new_form(request: Request) -> Response:
        return await show_form(request, "new", None)

    @pages.post("/apply/new")
    async def new_apply(request: Request) -> Response:
        return await apply(request, "new", None, forms.new)

    for kind, fill in (
        ("addition", forms.addition),
        ("vm_count_increase", forms.vm_count_increase),
        ("contact_change", forms.contact_change),
        ("cancellation", forms.cancellation),
    ):
        _contract_form(pages, kind, fill, show_form, apply)

    return pages


def _contract_form(pages: APIRouter, kind: str, fill: Callable[[FormData, str], forms.Filled],
                   show_form: Callable[..., Awaitable[Response]], apply: Callable[..., Awaitable[Response]]) -> None:
    path = f"/contracts/{{contract_id}}/{kind}"

    @pages.get(path, name=f"{kind}_form")
    async def form(request: Request, contract_id: str) -> Response:
        return await show_form(request, kind, contract_id)

    @pages.post(path, name=f"{kind}_apply")
    async def submit(request: Request, contract_id: str) -> Response:
        return await apply(request, kind, contract_id, lambda f: fill(f, contract_id))


def _values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items()
                              if isinstance(v, str) and k not in ("csrf", "api_key", "idempotency_key")}
    values["license_ids"] = [str(x) for x in form.getlist("license_ids")]
    return values


def _initial(kind: str, contract: dict[str, Any] | None, query: Mapping[str, str]) -> dict[str, Any]:
    """What a form starts with: the current contact for a change, the key a link named."""
    values: dict[str, Any] = {"license_ids": []}
    if kind == "new" and query.get("product") in products():
        values["product"] = query["product"]
    if kind == "contact_change" and contract is not None:
        values["contact.email"] = contract["contact"]["email"]
        values["contact.company_name"] = contract["contact"]["company_name"]
    if kind == "vm_count_increase" and query.get("license_id"):
        values["license_id"] = query["license_id"]
    return values


def _live_menu(items: list[dict[str, Any]]) -> bool:
    """Something on the menu is still on its way (a contract or keys being issued)."""
    return any(c["status"] == "preparing" or any(t["preparing"] for t in c["license_types"]) for c in items)


def _live_contract(contract: dict[str, Any]) -> bool:
    return (contract["status"] == "preparing" or any(lic["status"] == "preparing" for lic in contract["licenses"])
            or any(a["status"] in LIVE for a in contract["applications"]))
