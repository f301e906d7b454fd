"""JSON API of administration: users, models, the audit log, exhausted exports."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field

from worklist import exports
from worklist.accounts import users
from worklist.domain import Role
from worklist.reading import actions, queries
from worklist.reading.modelinfo import list_models, set_model_status
from worklist.web.deps import AdminApi, AuthCacheDep, DbDep, ModelAdminApi, ModelsSettingsDep
from worklist.web.errors import API_ERRORS
from worklist.web.routers.common import MAX_PAGE

__all__ = ["router"]

logger = logging.getLogger(__name__)

MAX_ROW_ID = 2**63 - 1
"""The largest row id a store holds (a 64-bit signed integer); beyond it: 422, not a 500."""

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=API_ERRORS)


class UserIn(BaseModel):
    """A new user."""

    username: str
    password: str = Field(min_length=8)
    role: Role
    site: str = ""


class ModelStatusIn(BaseModel):
    """A model's new status."""

    status: Literal["enabled", "disabled", "shadow"]


def _user_doc(user: users.UserView) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": str(user.role),
        "site": user.site,
        "active": user.active,
    }


@router.get("/users")
def list_users(principal: AdminApi, db: DbDep) -> list[dict[str, Any]]:
    """List every user."""
    with db.read() as session:
        return [_user_doc(u) for u in users.list_users(session)]


@router.post("/users", status_code=status.HTTP_201_CREATED)
def add_user(body: UserIn, principal: AdminApi, db: DbDep) -> dict[str, Any]:
    """Add a user (audited by :func:`worklist.accounts.users.add_user`); 409 if it exists."""
    with db.write() as session:
        user = users.add_user(
            session,
            body.username,
            body.password,
            body.role,
            site=body.site,
            actor=principal.user.username,
            source=principal.source,
        )
    return _user_doc(user)


@router.post("/users/{username}/deactivate")
def deactivate_user(
    username: str, principal: AdminApi, db: DbDep, auth_cache: AuthCacheDep
) -> dict[str, Any]:
    """Deactivate a user: no more logins, sessions or tokens (audited by ``set_active``)."""
    with db.write() as session:
        user = users.set_active(
            session, username, False, actor=principal.user.username, source=principal.source
        )
    auth_cache.clear()  # after the commit: no request of this process honours the user now
    return _user_doc(user)


@router.get("/models")
def models(principal: ModelAdminApi, settings: ModelsSettingsDep) -> list[dict[str, Any]]:
    """List the registered models with their status (503 if the registry cannot be read)."""
    return [asdict(m) for m in list_models(settings)]


@router.post("/models/{name}/status")
def model_status(
    name: str,
    body: ModelStatusIn,
    principal: ModelAdminApi,
    settings: ModelsSettingsDep,
    db: DbDep,
) -> dict[str, str]:
    """Enable, disable or shadow a model (404 if no model has this name)."""
    info = set_model_status(settings, name, body.status)
    with db.write() as session:
        actions.audit(
            session,
            principal.actor,
            "model.status",
            details={"model": info.ref, "status": body.status},
        )
    return {"ref": info.ref, "status": info.status}


@router.get("/audit")
def audit_log(
    principal: AdminApi,
    db: DbDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Page through the audit log, newest first."""
    with db.read() as session:
        rows, has_next = queries.audit_page(session, page=page, page_size=page_size)
        items = [
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "actor": e.actor,
                "source": e.source,
                "study_instance_uid": e.study_instance_uid,
                "outcome": e.outcome,
                "details": e.details,
            }
            for e in rows
        ]
    return {"items": items, "page": page, "has_next": has_next}


@router.get("/exports")
def exhausted_exports(principal: AdminApi, db: DbDep) -> list[dict[str, Any]]:
    """List the exports that ran out of attempts, newest first."""
    with db.read() as session:
        return [x.as_dict() for x in exports.exhausted_exports(session)]


@router.post("/exports/{job_id}/requeue")
def requeue_export(
    job_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], principal: AdminApi, db: DbDep
) -> dict[str, Any]:
    """Queue an exhausted export again (404 if no such export, 409 if it is not exhausted)."""
    with db.write() as session:
        view = exports.requeue_export(
            session, job_id, actor=principal.user.username, source=principal.source
        )
    return view.as_dict()
