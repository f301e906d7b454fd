"""The site status page (radiographers) and the admin pages: users, models, audit log, exports."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from models.errors import TriageError
from worklist import exports
from worklist.accounts import users
from worklist.domain import Role
from worklist.reading import actions, queries
from worklist.reading.modelinfo import STATUSES, ModelInfo, list_models, set_model_status
from worklist.reading.sitestatus import site_status
from worklist.web.deps import (
    AdminPage,
    AuthCacheDep,
    DbDep,
    ModelAdminPage,
    ModelsSettingsDep,
    SitePage,
)
from worklist.web.routers.common import MAX_PAGE
from worklist.web.templating import render

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["pages"], include_in_schema=False)


def _to(url: str, message: str = "", error: str = "") -> RedirectResponse:
    params = {k: v for k, v in (("message", message), ("error", error)) if v}
    if params:
        url += "?" + urlencode(params)
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/site")
def site_page(request: Request, principal: SitePage, db: DbDep) -> Response:
    """Show what a site sent, where each study is in processing, and what was refused."""
    site = None if principal.user.role == Role.ADMIN else principal.user.site
    return render(request, "site.html", principal, site_status(db, site))


@router.get("/admin")
def admin_page(
    request: Request, principal: AdminPage, db: DbDep, message: str = "", error: str = ""
) -> Response:
    """Users: list, add, deactivate."""
    with db.read() as session:
        rows = users.list_users(session)
    return render(
        request,
        "admin.html",
        principal,
        {"users": rows, "roles": [str(r) for r in Role], "message": message, "error": error},
    )


@router.post("/admin/users")
def admin_add_user(
    principal: AdminPage,
    db: DbDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    site: Annotated[str, Form()] = "",
) -> Response:
    """Add a user (form); :func:`worklist.accounts.users.add_user` audits it."""
    try:
        with db.write() as session:
            users.add_user(
                session,
                username,
                password,
                role,
                site=site,
                actor=principal.user.username,
                source=principal.source,
            )
    except TriageError as exc:
        return _to("/admin", error=str(exc))
    return _to("/admin", message=f"user {username} added")


@router.post("/admin/users/{username}/deactivate")
def admin_deactivate_user(
    username: str, principal: AdminPage, db: DbDep, auth_cache: AuthCacheDep
) -> Response:
    """Deactivate a user (form); :func:`worklist.accounts.users.set_active` audits it."""
    try:
        with db.write() as session:
            users.set_active(
                session, username, False, actor=principal.user.username, source=principal.source
            )
    except TriageError as exc:
        return _to("/admin", error=str(exc))
    auth_cache.clear()  # after the commit: no request of this process honours the user now
    return _to("/admin", message=f"user {username} deactivated")


@router.get("/admin/models")
def models_page(
    request: Request,
    principal: ModelAdminPage,
    settings: ModelsSettingsDep,
    message: str = "",
    error: str = "",
) -> Response:
    """Show the registered models with buttons to enable, disable or shadow them."""
    rows: list[ModelInfo] = []
    try:
        rows = list_models(settings)
    except TriageError as exc:
        error = error or str(exc)
    return render(
        request,
        "models.html",
        principal,
        {"models": rows, "statuses": STATUSES, "message": message, "error": error},
    )


@router.post("/admin/models/{name}/status")
def models_set_status(
    name: str,
    principal: ModelAdminPage,
    settings: ModelsSettingsDep,
    db: DbDep,
    status_: Annotated[str, Form(alias="status")],
) -> Response:
    """Enable, disable or shadow a model (form)."""
    try:
        set_model_status(settings, name, status_)
    except TriageError as exc:
        return _to("/admin/models", error=str(exc))
    with db.write() as session:
        actions.audit(
            session, principal.actor, "model.status", details={"model": name, "status": status_}
        )
    return _to("/admin/models", message=f"{name} is now {status_}")


@router.get("/admin/audit")
def audit_page(
    request: Request,
    principal: AdminPage,
    db: DbDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    """Show the audit log, newest first, 100 per page."""
    with db.read() as session:
        rows, has_next = queries.audit_page(session, page=page, page_size=100)
        events = [
            {
                "at": e.at.strftime("%Y-%m-%d %H:%M:%S"),
                "actor": e.actor,
                "source": e.source,
                "action": e.action,
                "study_instance_uid": e.study_instance_uid,
                "outcome": e.outcome,
                "details": e.details,
            }
            for e in rows
        ]
    return render(
        request, "audit.html", principal, {"events": events, "page": page, "has_next": has_next}
    )


@router.get("/admin/exports")
def exports_page(
    request: Request, principal: AdminPage, db: DbDep, message: str = "", error: str = ""
) -> Response:
    """Show the exhausted exports, each with a button to queue it again."""
    with db.read() as session:
        rows = exports.exhausted_exports(session)
    return render(
        request,
        "exports.html",
        principal,
        {"exports": rows, "message": message, "error": error},
    )


@router.post("/admin/exports/{job_id}/requeue")
def exports_requeue(job_id: int, principal: AdminPage, db: DbDep) -> Response:
    """Queue an exhausted export again (form); :func:`worklist.exports.requeue_export` audits it."""
    try:
        with db.write() as session:
            exports.requeue_export(
                session, job_id, actor=principal.user.username, source=principal.source
            )
    except TriageError as exc:
        return _to("/admin/exports", error=str(exc))
    return _to("/admin/exports", message=f"export job {job_id} queued again")
