"""What every dashboard page shares: the templates, the session signer, the login check,
and the headers that keep pages from being framed, sniffed, cached or scripted from elsewhere.

`UiContext` is built once per router (`ui_router()`) and handed to each request through
a router dependency, so two apps in one process keep their own signing secrets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import URL

from app.api.services import ApiServices, services_of
from app.api.ui.session import COOKIE, SessionSigner, UiSession, csrf_matches

PACKAGE_DIR = Path(__file__).parent
#: Every page: scripts and styles from this server only, never framed, never cached.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class UiContext:
    signer: SessionSigner
    templates: Jinja2Templates

    async def bind(self, request: Request) -> None:
        request.state.ui = self


def new_context(signer: SessionSigner | None = None) -> UiContext:
    templates = Jinja2Templates(directory=str(PACKAGE_DIR / "templates"))  # autoescapes .html
    templates.env.filters["usd"] = usd
    templates.env.filters["ms"] = milliseconds
    templates.env.filters["utc"] = utc_text
    templates.env.filters["count"] = lambda n: "–" if n is None else f"{int(n):,}"
    return UiContext(signer or SessionSigner(), templates)


def context_of(request: Request) -> UiContext:
    context: UiContext = request.state.ui
    return context


async def current_session(request: Request, services: Annotated[ApiServices, Depends(services_of)]) -> UiSession | None:
    context = context_of(request)
    return await asyncio.to_thread(context.signer.read, request.cookies.get(COOKIE), services.store)


async def require_session(
    request: Request, session: Annotated[UiSession | None, Depends(current_session)]
) -> UiSession:
    """The page's session; without one, off to the login page (which brings the user back)."""
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "log in first", headers={"Location": f"/ui/login?next={quote(target, safe='')}"})
    return session


async def require_json_session(session: Annotated[UiSession | None, Depends(current_session)]) -> UiSession:
    if session is None:
        raise HTTPException(401, "log in first")
    return session


Page = Annotated[UiSession, Depends(require_session)]
JsonSession = Annotated[UiSession, Depends(require_json_session)]
Services = Annotated[ApiServices, Depends(services_of)]


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form body, first value of each field (forms here are small and flat)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}


def check_origin(request: Request) -> None:
    """A form posted from another site's page is refused (browsers send `Origin` on POSTs)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request.url):
        raise HTTPException(403, "this form was sent from another site")


def check_post(request: Request, session: UiSession, form: dict[str, str]) -> None:
    """A state-changing form must carry the session's CSRF token and come from this site."""
    check_origin(request)
    if not csrf_matches(session, form.get("csrf")):
        raise HTTPException(403, "the form's token is missing or stale: reload the page and try again")


def render(
    request: Request, template: str, session: UiSession | None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    context = context_of(request)
    response = context.templates.TemplateResponse(
        request, template, {"session": session, "path": request.url.path, **values}, status_code=status_code
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value >= 0.01 else f"${value:.6f}"


def milliseconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def utc_text(value: Any) -> str:
    if value is None:
        return "–"
    return str(value.strftime("%Y-%m-%d %H:%M:%S"))


def _own_origin(url: URL) -> str:
    default = {"http": 80, "https": 443}.get(url.scheme)
    port = f":{url.port}" if url.port and url.port != default else ""
    return f"{url.scheme}://{url.hostname}{port}"
