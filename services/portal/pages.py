"""The license main menu (docs/architecture.md, "Portal and command line"): server-rendered pages over the public
API, called with the signed-in tenant's key. Every form carries the session's CSRF token and an
Idempotency-Key, so a double click or a resent form applies once. Live parts of a page name a
fragment URL that static/portal.js fetches again while something is still pending."""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from services.portal import forms
from services.portal.i18n import LANGUAGES, Words
from services.portal.sessions import COOKIE, Session, SessionCodec
from services.portal.upstream import Answer, Upstream
from shared.catalog import products
from shared.contracts.applications import VALID_USAGE_TYPES

JST = timezone(timedelta(hours=9), "JST")
LANG_COOKIE = "arcserve_lang"
MENU_PAGE = 50
# How long after its 202 an application the status service has not recorded yet is shown as
# received rather than not found (it is normally recorded within milliseconds).
RECEIVED_GRACE_S = 60.0


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
    env.globals.update(jst=jst, usage_types=sorted(VALID_USAGE_TYPES), license_rows=range(forms.LICENSE_ROWS))
    return env


class Visit:
    """One request's view of the tenant: language, session, and the answers it renders."""

    def __init__(self, request: Request, codec: SessionCodec, env: jinja2.Environment):
        self.request = request
        self._codec = codec
        self._env = env
        lang = request.cookies.get(LANG_COOKIE, "ja")
        self.words = Words(lang)
        found = codec.decode(request.cookies.get(COOKIE))
        self.expired = found is None and COOKIE in request.cookies
        self.session = found or Session.anonymous(time.time())
        self._write_session = found is None

    @property
    def api_key(self) -> str | None:
        return self.session.api_key

    def replace_session(self, session: Session) -> None:
        self.session, self._write_session = session, True

    def csrf_ok(self, form: FormData) -> bool:
        token = form.get("csrf")
        return self.session.accepts(token if isinstance(token, str) else None)

    def finish(self, response: Response) -> Response:
        if self._write_session:
            response.set_cookie(
                COOKIE, self._codec.encode(self.session), max_age=int(self._codec.max_age_s), path="/",
                httponly=True, samesite="strict", secure=self.request.url.scheme == "https",
            )
        return response

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self._env.get_template(template).render(
            t=self.words, lang=self.words.lang, csrf=self.session.csrf, signed_in=self.api_key is not None,
            path=self.request.url.path, idempotency_key=secrets.token_urlsafe(24), **context,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, to: str) -> Response:
        return self.finish(RedirectResponse(to, status_code=303))


def router(upstream: Upstream, codec: SessionCodec) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    env = _environment()

    def visit(request: Request) -> Visit:
        return Visit(request, codec, env)

    def trouble(v: Visit, answer: Answer) -> Response:
        """A page for an answer that is not the one asked for: a revoked key signs out."""
        if answer.status == 401:
            v.replace_session(Session.anonymous(time.time()))
            return v.redirect("/?why=bad_key")
        if answer.status == 404:
            return v.page("error.html", 404, message=v.words("not_found"))
        if answer.status == 429:
            return v.page("error.html", 429, message=v.words("rate_limited"))
        return v.page("error.html", 503 if answer.status >= 500 else answer.status, message=v.words("unavailable"))

    async def contracts_page(v: Visit, key: str, cursor: str | None) -> Answer:
        params = {"limit": str(MENU_PAGE), **({"cursor": cursor} if cursor else {})}
        return await upstream.get(key, "/v1/contracts", params)

    # ---- sign-in, sign-out, language ---------------------------------------------------
    @pages.get("/")
    async def home(request: Request, cursor: str | None = None, why: str | None = None) -> Response:
        v = visit(request)
        if v.api_key is None:
            notice = "session_expired" if v.expired else why if why in ("bad_key", "signed_out") else None
            return v.page("signin.html", notice=notice and v.words(notice))
        answer = await contracts_page(v, v.api_key, cursor)
        if not answer.ok:
            return trouble(v, answer)
        return v.page("menu.html", contracts=answer.body["items"], next_cursor=answer.body["next_cursor"],
                      cursor=cursor or "", live=_live_menu(answer.body["items"]))

    @pages.get("/menu/rows")
    async def menu_rows(request: Request, cursor: str | None = None) -> Response:
        v = visit(request)
        if v.api_key is None:
            return v.page("error.html", 401, message=v.words("session_expired"))
        answer = await contracts_page(v, v.api_key, cursor)
        if not answer.ok:
            return trouble(v, answer)
        return v.page("_rows.html", contracts=answer.body["items"], cursor=cursor or "",
                      live=_live_menu(answer.body["items"]))

    @pages.post("/signin")
    async def sign_in(request: Request) -> Response:
        v = visit(request)
        form = await request.form()
        if not v.csrf_ok(form):
            return v.page("signin.html", 403, notice=v.words("csrf"))
        key = form.get("api_key")
        key = key.strip() if isinstance(key, str) else ""
        answer = await upstream.get(key, "/v1/contracts", {"limit": "1"}) if key else Answer(401, None)
        if answer.status == 401:
            return v.page("signin.html", 401, notice=v.words("bad_key"))
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
        target = next if next.startswith("/") and not next.startswith("//") else "/"  # never off-site
        response = v.redirect(target)
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    # ---- the detail view (R11) and an application's progress ---------------------------
    async def signed_in(request: Request, render: Callable[[Visit, str], Any]) -> Response:
        v = visit(request)
        if v.api_key is None:
            return v.redirect("/")
        result: Response = await render(v, v.api_key)
        return result

    @pages.get("/contracts/{contract_id}")
    async def detail(request: Request, contract_id: str) -> Response:
        return await signed_in(request, lambda v, key: _detail(v, key, contract_id, "detail.html"))

    @pages.get("/contracts/{contract_id}/live")
    async def detail_live(request: Request, contract_id: str) -> Response:
        return await signed_in(request, lambda v, key: _detail(v, key, contract_id, "_detail.html"))

    async def _detail(v: Visit, key: str, contract_id: str, template: str) -> Response:
        answer = await upstream.get(key, f"/v1/contracts/{quote(contract_id, safe='')}")
        if not answer.ok:
            return trouble(v, answer)
        return v.page(template, c=answer.body, live=_live_contract(answer.body))

    @pages.get("/applications/{application_id}")
    async def application(request: Request, application_id: str, since: float | None = None) -> Response:
        return await signed_in(request, lambda v, key: _application(v, key, application_id, since, "application.html"))

    @pages.get("/applications/{application_id}/live")
    async def application_live(request: Request, application_id: str, since: float | None = None) -> Response:
        return await signed_in(request, lambda v, key: _application(v, key, application_id, since, "_application.html"))

    async def _application(v: Visit, key: str, application_id: str, since: float | None, template: str) -> Response:
        answer = await upstream.get(key, f"/v1/applications/{quote(application_id, safe='')}")
        if answer.status == 404 and since is not None and 0 <= time.time() - since < RECEIVED_GRACE_S:  # `since` is whole seconds, rounded down
            # Intake has it (202), the status service has not recorded it yet: it is on its way.
            received = {"application_id": application_id, "kind": None, "status": "received", "reason": None,
                        "contract_id": None, "submitted_at": None, "expected_completion_at": None, "completed_at": None}
            return v.page(template, a=received, live=True, since=since)
        if not answer.ok:
            return trouble(v, answer)
        return v.page(template, a=answer.body, live=answer.body["status"] in ("received", "processing"), since=None)

    # ---- the forms: one GET shows it, one POST applies --------------------------------
    async def show_form(request: Request, kind: str, contract_id: str | None) -> Response:
        v = visit(request)
        if v.api_key is None:
            return v.redirect("/")
        contract = None
        if contract_id is not None:
            answer = await upstream.get(v.api_key, f"/v1/contracts/{quote(contract_id, safe='')}")
            if not answer.ok:
                return trouble(v, answer)
            contract = answer.body
        values = _initial(kind, contract, request.query_params)
        return v.page(f"form_{kind}.html", kind=kind, c=contract, values=values, errors={}, notice=None,
                      products=list(products().values()))

    async def apply(request: Request, kind: str, contract_id: str | None,
                    fill: Callable[[FormData], forms.Filled]) -> Response:
        v = visit(request)
        if v.api_key is None:
            return v.redirect("/")
        form = await request.form()
        contract = None
        if contract_id is not None:
            answer = await upstream.get(v.api_key, f"/v1/contracts/{quote(contract_id, safe='')}")
            if not answer.ok:
                return trouble(v, answer)
            contract = answer.body

        def again(status: int, errors: Mapping[str, str], notice: str | None) -> Response:
            return v.page(f"form_{kind}.html", status, kind=kind, c=contract, values=_values(form), errors=errors,
                          notice=notice, products=list(products().values()))

        if not v.csrf_ok(form):
            return again(403, {}, v.words("csrf"))
        filled = fill(form)
        idempotency_key = form.get("idempotency_key")
        answer = await upstream.submit(v.api_key, filled.body, idempotency_key if isinstance(idempotency_key, str) else None)
        if answer.status == 202:
            return v.redirect(f"/applications/{answer.body['application_id']}?since={int(time.time())}")
        if answer.status == 422 and isinstance(answer.body, dict):
            return again(422, filled.errors_by_field(answer.body.get("errors") or []),
                         answer.body.get("message") if not answer.body.get("errors") else v.words("form_errors"))
        if answer.status == 401:
            return trouble(v, answer)
        return again(answer.status, {}, v.words("rate_limited") if answer.status == 429 else
                     (answer.body or {}).get("message") if answer.status == 409 else v.words("unavailable"))

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
                   show_form: Callable[..., Any], apply: Callable[..., Any]) -> None:
    path = f"/contracts/{{contract_id}}/{kind}"

    @pages.get(path, name=f"{kind}_form")
    async def form(request: Request, contract_id: str) -> Response:
        result: Response = await show_form(request, kind, contract_id)
        return result

    @pages.post(path, name=f"{kind}_apply")
    async def submit(request: Request, contract_id: str) -> Response:
        result: Response = await apply(request, kind, contract_id, lambda f: fill(f, contract_id))
        return result


def _values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k not in ("csrf", "api_key")}
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
    if kind == "cancellation" and query.get("license_id"):
        values["scope"] = "some"
        values["license_ids"] = [query["license_id"]]
    return values


def _live_menu(items: list[dict[str, Any]]) -> bool:
    """Something on the menu is still on its way (a contract or keys being issued)."""
    return any(c["status"] == "preparing" or any(t["preparing"] for t in c["license_types"]) for c in items)


def _live_contract(contract: dict[str, Any]) -> bool:
    return (contract["status"] == "preparing" or any(lic["status"] == "preparing" for lic in contract["licenses"])
            or any(a["status"] in ("received", "processing") for a in contract["applications"]))
