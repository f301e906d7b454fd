"""FastAPI dependencies of the web app, as ``Annotated`` aliases.

Settings, the store and the limiter live on ``app.state`` (set by
:func:`worklist.web.app.create_app`) and reach routes through the ``get_*`` functions, which
tests may replace with ``app.dependency_overrides`` (they are ``async`` so that FastAPI does not
send each to the thread pool).

Who may call what is decided here, by role group (see the access table in the README):

* API routes: no credentials -> 401; wrong role -> 403; a cookie-authenticated request that
  changes something must carry the session's CSRF token in ``X-CSRF-Token`` (bearer-token
  requests need none).
* Page routes: no session -> 303 to ``/login``; wrong role -> 403; every POST carries the
  session's CSRF token in the form field ``csrf_token``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from models.settings import ModelsSettings
from worklist.accounts.users import UserView, get_user, hash_token, user_for_token
from worklist.db.engine import Database
from worklist.domain import Role
from worklist.reading.actions import Actor
from worklist.settings import WorklistSettings
from worklist.web.auditsink import AuditSink
from worklist.web.authcache import AuthCache
from worklist.web.listcache import ListCache
from worklist.web.security import LoginLimiter, new_csrf_token, tokens_match

__all__ = [
    "ADMINS",
    "MODEL_ADMINS",
    "READERS",
    "REPORTERS",
    "SITE_VIEWERS",
    "AdminApi",
    "AdminPage",
    "AnyUserPage",
    "AuditDep",
    "AuthCacheDep",
    "DbDep",
    "LimiterDep",
    "ListCacheDep",
    "LoginRequired",
    "ModelAdminApi",
    "ModelAdminPage",
    "ModelsSettingsDep",
    "Principal",
    "ReaderApi",
    "ReaderPage",
    "ReporterApi",
    "ReporterPage",
    "SiteApi",
    "SitePage",
    "WorklistSettingsDep",
    "authenticate",
    "cached_principal",
    "client_ip",
    "csrf_token",
]

logger = logging.getLogger(__name__)

READERS = (Role.RADIOLOGIST, Role.ADMIN, Role.ML_ENGINEER)
REPORTERS = (Role.RADIOLOGIST, Role.ADMIN)
SITE_VIEWERS = (Role.RADIOGRAPHER, Role.ADMIN)
ADMINS = (Role.ADMIN,)
MODEL_ADMINS = (Role.ADMIN, Role.ML_ENGINEER)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):  # noqa: N818  (a control-flow signal, not an error)
    """Raised by page dependencies without a session; the app answers 303 to ``/login``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request, how they authenticated and from where."""

    user: UserView
    via: Literal["session", "token"]
    source: str

    @property
    def actor(self) -> Actor:
        """The user as an :class:`~worklist.reading.actions.Actor` for audit."""
        return Actor(user=self.user, source=self.source)


async def get_worklist_settings(request: Request) -> WorklistSettings:
    """Return the worklist settings the app was created with."""
    settings: WorklistSettings = request.app.state.worklist_settings
    return settings


async def get_models_settings(request: Request) -> ModelsSettings:
    """Return the models settings the app was created with."""
    settings: ModelsSettings = request.app.state.models_settings
    return settings


async def get_db(request: Request) -> Database:
    """Return the store the app was created with."""
    db: Database = request.app.state.db
    return db


async def get_limiter(request: Request) -> LoginLimiter:
    """Return the app's login rate limiter."""
    limiter: LoginLimiter = request.app.state.limiter
    return limiter


WorklistSettingsDep = Annotated[WorklistSettings, Depends(get_worklist_settings)]
ModelsSettingsDep = Annotated[ModelsSettings, Depends(get_models_settings)]
DbDep = Annotated[Database, Depends(get_db)]
LimiterDep = Annotated[LoginLimiter, Depends(get_limiter)]


def client_ip(request: Request) -> str:
    """Return the client's IP address as the server saw it."""
    return request.client.host if request.client else ""


def csrf_token(request: Request) -> str:
    """Return the session's CSRF token, creating one for a new session."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _auth_key(request: Request) -> tuple[str, str | int] | None:
    token = _bearer(request)
    if token is not None:
        return ("token", hash_token(token))
    uid = request.session.get("uid")
    return ("session", uid) if isinstance(uid, int) else None


def _cache(request: Request) -> AuthCache | None:
    cache: AuthCache | None = getattr(request.app.state, "auth_cache", None)
    return cache


def cached_principal(request: Request) -> Principal | None:
    """Return who sent the request if the process' auth cache knows them (no store access)."""
    cache = _cache(request)
    key = _auth_key(request)
    if cache is None or key is None:
        return None
    user = cache.get(key)
    if user is None:
        return None
    return Principal(user, "token" if key[0] == "token" else "session", client_ip(request))


def authenticate(request: Request, db: Database) -> Principal | None:
    """Return who sent the request: a bearer token first, then the session cookie."""
    found = cached_principal(request)
    if found is not None:
        return found
    source = client_ip(request)
    cache = _cache(request)
    generation = cache.generation() if cache is not None else 0
    token = _bearer(request)
    if token is not None:
        with db.read() as session:
            user = user_for_token(session, token)
        if user is None:
            return None
        token_hash = hash_token(token)
        if cache is not None:
            cache.put(("token", token_hash), user, generation)
        sink: AuditSink | None = getattr(request.app.state, "audit", None)
        if sink is not None:
            sink.token_used(token_hash)
        return Principal(user, "token", source)
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    with db.read() as session:
        user = get_user(session, uid)
    if user is None:
        request.session.clear()
        return None
    if cache is not None:
        cache.put(("session", uid), user, generation)
    return Principal(user, "session", source)


def _api_user(*roles: Role) -> Callable[[Request, Database], Awaitable[Principal]]:
    async def dependency(request: Request, db: DbDep) -> Principal:
        principal = cached_principal(request) or await run_in_threadpool(authenticate, request, db)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "authentication required (session cookie or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
        if (
            principal.via == "session"
            and request.method not in SAFE_METHODS
            and not tokens_match(request.session.get("csrf"), request.headers.get("x-csrf-token"))
        ):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong X-CSRF-Token")
        return principal

    return dependency


def _page_user(*roles: Role) -> Callable[[Request, Database], Awaitable[Principal]]:
    async def dependency(request: Request, db: DbDep) -> Principal:
        principal = cached_principal(request) or await run_in_threadpool(authenticate, request, db)
        if principal is None or principal.via != "session":
            target = request.url.path
            if request.url.query:  # e.g. the viewer's ?StudyInstanceUIDs=... survives the login
                target += "?" + request.url.query
            raise LoginRequired(target)
        if principal.user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not see this page")
        if request.method not in SAFE_METHODS:
            await check_form_csrf(request)
        return principal

    return dependency


async def check_form_csrf(request: Request) -> None:
    """Refuse (403) a form POST whose ``csrf_token`` field is not the session's token."""
    form = await request.form()
    given = form.get("csrf_token")
    if not tokens_match(request.session.get("csrf"), given if isinstance(given, str) else None):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


ReaderApi = Annotated[Principal, Depends(_api_user(*READERS))]
ReporterApi = Annotated[Principal, Depends(_api_user(*REPORTERS))]
SiteApi = Annotated[Principal, Depends(_api_user(*SITE_VIEWERS))]
AdminApi = Annotated[Principal, Depends(_api_user(*ADMINS))]
ModelAdminApi = Annotated[Principal, Depends(_api_user(*MODEL_ADMINS))]
AnyUserPage = Annotated[Principal, Depends(_page_user(*Role))]
ReaderPage = Annotated[Principal, Depends(_page_user(*READERS))]
ReporterPage = Annotated[Principal, Depends(_page_user(*REPORTERS))]
SitePage = Annotated[Principal, Depends(_page_user(*SITE_VIEWERS))]
AdminPage = Annotated[Principal, Depends(_page_user(*ADMINS))]
ModelAdminPage = Annotated[Principal, Depends(_page_user(*MODEL_ADMINS))]


async def get_audit(request: Request) -> AuditSink:
    """Return the app's batched audit writer (views)."""
    sink: AuditSink = request.app.state.audit
    return sink


AuditDep = Annotated[AuditSink, Depends(get_audit)]


async def get_list_cache(request: Request) -> ListCache:
    """Return the app's worklist page cache."""
    cache: ListCache = request.app.state.list_cache
    return cache


ListCacheDep = Annotated[ListCache, Depends(get_list_cache)]


async def get_auth_cache(request: Request) -> AuthCache:
    """Return the app's cache of authenticated users."""
    cache: AuthCache = request.app.state.auth_cache
    return cache


AuthCacheDep = Annotated[AuthCache, Depends(get_auth_cache)]
