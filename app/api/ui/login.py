"""Logging in with an API key, and out: the key is checked once and never kept by the browser.

The login form posts the key; a live key gets a session cookie (see `session.py`) and a
redirect to where the user was going (a path under /ui only: never another site). A
wrong key gets the form again with one sentence, the same for every kind of wrong.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.api.keys import authenticate
from app.api.ui.context import (
    Page,
    Services,
    check_origin,
    check_post,
    context_of,
    current_session,
    form_of,
    render,
)
from app.api.ui.session import COOKIE, SESSION_SECONDS


def register(router: APIRouter) -> None:
    router.add_api_route("/login", login_page, methods=["GET"])
    router.add_api_route("/login", log_in, methods=["POST"])
    router.add_api_route("/logout", log_out, methods=["POST"])


async def login_page(request: Request, services: Services, next: str = "/ui/runs") -> Response:
    session = await current_session(request, services)
    if session is not None:
        return RedirectResponse(_local(next), status_code=303)
    return render(request, "login.html", None, next=_local(next), error=None)


async def log_in(request: Request, services: Services) -> Response:
    check_origin(request)  # no other site logs a browser in to a session of its choosing
    form = await form_of(request)
    target = _local(form.get("next", "/ui/runs"))
    principal = await asyncio.to_thread(authenticate, services.store, form.get("key", "").strip())
    if principal is None:
        error = "That API key is not valid (unknown, malformed or revoked)."
        return render(request, "login.html", None, status_code=401, next=target, error=error)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        context_of(request).signer.issue(principal),
        max_age=SESSION_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def log_out(request: Request, session: Page) -> Response:
    check_post(request, session, await form_of(request))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


def _local(target: str) -> str:
    """Only a path of this dashboard: `next=https://evil.example` or `//evil` go home."""
    if target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/runs"
