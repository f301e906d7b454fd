"""Local users of the web app, and how a user is recognised (by password or by API token).

Passwords are stored as argon2id hashes (``argon2-cffi``); of an API token only the sha256 hash is
stored (issuing, listing and revoking tokens is :mod:`worklist.accounts.tokens`). Every change to
who can reach the worklist (a user added, deactivated or activated) is audited here, in the caller's
transaction, whichever door it came through (the command line or the web app): exactly one event
per change, never holding a password.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.errors import Conflict, Invalid, NotFound, TriageError
from worklist.audit import EventCategory, record_event
from worklist.db.schema import ApiToken, User
from worklist.domain import Role

__all__ = [
    "DuplicateUserError",
    "InactiveUserError",
    "InvalidUserError",
    "LastAdminError",
    "UserError",
    "UserNotFoundError",
    "UserView",
    "add_user",
    "authenticate",
    "get_user",
    "hash_token",
    "list_users",
    "set_active",
    "user_for_token",
]

logger = logging.getLogger(__name__)

_HASHER = PasswordHasher()
# Verified against when the username is unknown, so that timing does not reveal which users exist.
_DUMMY_HASH = _HASHER.hash("not-a-real-password")


class UserError(TriageError):
    """A user cannot be created, found or changed as asked (the base; it carries no meaning)."""


class UserNotFoundError(UserError, NotFound):
    """No user has this name."""


class DuplicateUserError(UserError, Conflict):
    """A user with this name already exists."""


class InactiveUserError(UserError, Conflict):
    """The user exists but is deactivated, and what was asked needs an active user."""


class InvalidUserError(UserError, Invalid):
    """A new user's name, password or role breaks the rules."""


class LastAdminError(UserError, Conflict):
    """The change would leave no active admin (nobody could manage users any more)."""


@dataclass(frozen=True)
class UserView:
    """What the web app and the command line need to know about a user."""

    id: int
    username: str
    role: Role
    site: str
    active: bool


def _view(user: User) -> UserView:
    return UserView(
        id=user.id, username=user.username, role=Role(user.role), site=user.site, active=user.active
    )


def _audit(
    session: Session, action: str, actor: str, source: str, details: Mapping[str, str]
) -> None:
    """Record a change to a user (never a password) in the caller's transaction."""
    record_event(
        session, EventCategory.AUDIT, action, actor=actor, source=source, details=dict(details)
    )


def add_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    *,
    site: str = "",
    actor: str = "",
    source: str = "",
) -> UserView:
    """Create a local user and audit it (``user.add``) in the caller's transaction.

    Parameters
    ----------
    session
        An open write session; the caller commits.
    username
        1 to 64 characters, unique.
    password
        At least 8 characters; stored as an argon2id hash (and never in the audit event).
    role
        One of :class:`worklist.domain.Role`.
    site
        The user's site (the sending AE title), used for radiographers.
    actor, source
        Who adds the user and from where (an OS login name and ``cli``, or a web user and the
        client's address), for the audit event.

    Returns
    -------
    UserView
        The new user.

    Raises
    ------
    DuplicateUserError
        The name is taken.
    InvalidUserError
        The name is invalid, the password too short or the role unknown.
    """
    username = username.strip()
    if not username or len(username) > 64:
        raise InvalidUserError("a username has 1 to 64 characters")
    if len(password) < 8:
        raise InvalidUserError("a password has at least 8 characters")
    try:
        role = Role(role)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidUserError(f"unknown role {role!r}; use one of {allowed}") from exc
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise DuplicateUserError(f"user {username!r} already exists")
    user = User(username=username, password_hash=_HASHER.hash(password), role=str(role), site=site)
    session.add(user)
    session.flush()
    details = {"username": username, "role": str(role), "site": site}
    _audit(session, "user.add", actor, source, details)
    logger.info("user %s added with role %s", username, role)
    return _view(user)


def list_users(session: Session) -> list[UserView]:
    """Return every user, by name."""
    return [_view(u) for u in session.scalars(select(User).order_by(User.username))]


def get_user(session: Session, user_id: int) -> UserView | None:
    """Return the active user with this id, or ``None`` (one core SELECT: every request asks)."""
    row = session.execute(
        select(User.username, User.role, User.site).where(User.id == user_id, User.active.is_(True))
    ).first()
    if row is None:
        return None
    return UserView(
        id=user_id, username=row.username, role=Role(row.role), site=row.site, active=True
    )


def set_active(
    session: Session, username: str, active: bool, *, actor: str = "", source: str = ""
) -> UserView:
    """Activate or deactivate a user and audit it (``user.activate`` or ``user.deactivate``).

    A deactivated user cannot log in and its tokens stop working. One conditional ``UPDATE``:
    setting the state a user already has changes nothing and records no event, even when two
    such calls race. Web processes may honour the user for up to their auth cache's TTL after the
    commit (see :mod:`worklist.web.authcache`).

    Parameters
    ----------
    session
        An open write session; the caller commits.
    username
        The user.
    active
        The new state.
    actor, source
        Who changes it and from where, for the audit event.

    Returns
    -------
    UserView
        The user as it is now.

    Raises
    ------
    UserNotFoundError
        No such user.
    LastAdminError
        Deactivating the last active admin (refused: nobody could manage users afterwards).
    """
    if not active:
        _keep_an_admin(session, username)
    result = session.execute(
        update(User)
        .where(User.username == username, User.active.is_(not active))
        .values(active=active)
        .execution_options(synchronize_session=False)
    )
    changed = getattr(result, "rowcount", 0) == 1
    user = session.scalars(
        select(User).where(User.username == username).execution_options(populate_existing=True)
    ).first()
    if user is None:
        raise UserNotFoundError(f"no user {username!r}")
    if changed:
        action = "user.activate" if active else "user.deactivate"
        _audit(session, action, actor, source, {"username": username})
        logger.info("user %s %s", username, "activated" if active else "deactivated")
    return _view(user)


def _keep_an_admin(session: Session, username: str) -> None:
    """Raise :class:`LastAdminError` if ``username`` is the only active admin.

    The active admins' rows are locked (``FOR UPDATE`` on PostgreSQL; SQLite writers hold the
    write lock already), so two admins deactivating each other at once cannot both succeed.
    Called before any change that takes a user out of the active admins (deactivation; a role
    change, should one be added, must call it too).
    """
    admins = session.scalars(
        select(User.username)
        .where(User.role == str(Role.ADMIN), User.active.is_(True))
        .with_for_update()
    ).all()
    if list(admins) == [username]:
        raise LastAdminError(
            f"{username!r} is the last active admin: add or activate another admin first"
        )


def authenticate(session: Session, username: str, password: str) -> UserView | None:
    """Return the active user if the password matches, else ``None``.

    A hash made with outdated parameters is upgraded in the caller's transaction.
    """
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_DUMMY_HASH, password)
        return None
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    return _view(user)


def hash_token(token: str) -> str:
    """Return the hex sha256 of an API token (what the store keeps)."""
    return hashlib.sha256(token.encode()).hexdigest()


def user_for_token(session: Session, token: str) -> UserView | None:
    """Return the active user holding this (unrevoked) token, or ``None``."""
    row = session.execute(
        select(User.id, User.username, User.role, User.site, User.active)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    ).first()
    if row is None or not row.active:
        return None
    return UserView(
        id=row.id, username=row.username, role=Role(row.role), site=row.site, active=True
    )
