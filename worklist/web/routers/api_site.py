"""JSON API of the site status (radiographers) and the health check."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from worklist.domain import Role
from worklist.reading.sitestatus import site_status
from worklist.web.deps import DbDep, SiteApi
from worklist.web.errors import API_ERRORS

__all__ = ["health_router", "router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/site", tags=["site"], responses=API_ERRORS)
health_router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/status")
def status(principal: SiteApi, db: DbDep) -> dict[str, Any]:
    """Studies sent from your site (all sites for admins) and refused instances with reasons."""
    site = None if principal.user.role == Role.ADMIN else principal.user.site
    return site_status(db, site)


@health_router.get("/health")
def health(db: DbDep) -> dict[str, str]:
    """Say whether the app and its store answer (no login needed)."""
    with db.read() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}
