"""Login and logout pages."""

from __future__ import annotations

import logging
import math
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from worklist.accounts.users import authenticate
from worklist.audit import EventCategory, record_event
from worklist.domain import Role
from worklist.web.deps import AnyUserPage, DbDep, LimiterDep, client_ip
from worklist.web.security import new_csrf_token, tokens_match
from worklist.web.templating import render

__all__ = ["home_for", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["pages"], include_in_schema=False)


def home_for(role: Role) -> str:
    """Return the page a role lands on after login."""
    if role == Role.RADIOGRAPHER:
        return "/site"
    if role == Role.ML_ENGINEER:
        return "/admin/models"
    return "/"


def _safe_next(next_url: str) -> str:
    """Return ``next_url`` when it is a path on this site, else ``""`` (no open redirect).

    Browsers read a backslash as a slash (a slash then a backslash then a host goes to that host,
    like ``//evil.example``) and ignore tabs and newlines inside a URL, so any of those, a scheme
    or a host make the value unsafe.
    """
    if not next_url.startswith("/") or next_url.startswith("//"):
        return ""
    if "\\" in next_url or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in next_url):
        return ""
    parts = urlsplit(next_url)
    return next_url if not parts.scheme and not parts.netloc else ""


@router.get("/login")
def login_page(request: Request, next: str = "") -> Response:
    """Show the login form."""
    return render(request, "login.html", None, {"next": _safe_next(next), "error": ""})


@router.post("/login")
def login(
    request: Request,
    db: DbDep,
    limiter: LimiterDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the password; 429 after too many failures per username or per IP."""
    source = client_ip(request)
    ctx = {"next": _safe_next(next), "error": ""}
    if not tokens_match(request.session.get("csrf"), csrf_token):
        ctx["error"] = "The form expired; please try again."
        return render(request, "login.html", None, ctx, status_code=status.HTTP_403_FORBIDDEN)
    keys = (f"user:{username.lower()}", f"ip:{source}")
    wait = limiter.blocked(*keys)
    if wait > 0:
        logger.warning("login for user %s from %s blocked for %.0f s", username, source, wait)
        with db.write() as session:
            record_event(
                session,
                EventCategory.AUDIT,
                "login.blocked",
                actor=username,
                source=source,
                outcome="failure",
            )
        ctx["error"] = f"Too many failed logins; try again in {math.ceil(wait)} s."
        response = render(request, "login.html", None, ctx, status_code=429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    with db.write() as session:
        user = authenticate(session, username, password)
        record_event(
            session,
            EventCategory.AUDIT,
            "login" if user else "login.failed",
            actor=username,
            source=source,
            outcome="success" if user else "failure",
        )
    if user is None:
        # For log watchers (fail2ban and the like); the user name is the client's text, which
        # the log filter escapes (worklist.logsafe) in this process and in every worker.
        logger.warning("failed login for user %s from %s", username, source)
        limiter.failed(*keys)
        ctx["error"] = "Wrong username or password."
        return render(request, "login.html", None, ctx, status_code=status.HTTP_401_UNAUTHORIZED)
    limiter.succeeded(keys[0])
    request.session.clear()
    request.session["uid"] = user.id
    request.session["csrf"] = new_csrf_token()
    target = _safe_next(next) or home_for(user.role)
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


@router.post("/logout")
def logout(request: Request, principal: AnyUserPage, db: DbDep) -> Response:
    """End the session."""
    with db.write() as session:
        record_event(
            session,
            EventCategory.AUDIT,
            "logout",
            actor=principal.user.username,
            source=principal.source,
        )
    request.session.clear()
    return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
