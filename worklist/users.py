"""Local users of the web app and the API tokens of machine clients.

Passwords are stored as argon2id hashes (``argon2-cffi``); API tokens are random strings of which
only the sha256 hash is stored, so a leaked database does not leak tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.errors import TriageError
from worklist.db.schema import ApiToken, User
from worklist.domain import Role

__all__ = [
    "UserError",
    "UserView",
    "add_user",
    "authenticate",
    "create_token",
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
TOKEN_PREFIX = "wl_"


class UserError(TriageError):
    """A user cannot be created, found or changed as asked."""


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


def add_user(
    session: Session, username: str, password: str, role: Role | str, *, site: str = ""
) -> UserView:
    """Create a local user.

    Parameters
    ----------
    session
        An open write session; the caller commits.
    username
        1 to 64 characters, unique.
    password
        At least 8 characters; stored as an argon2id hash.
    role
        One of :class:`worklist.domain.Role`.
    site
        The user's site (the sending AE title), used for radiographers.

    Returns
    -------
    UserView
        The new user.

    Raises
    ------
    UserError
        The name is taken or invalid, the password too short or the role unknown.
    """
    username = username.strip()
    if not username or len(username) > 64:
        raise UserError("a username has 1 to 64 characters")
    if len(password) < 8:
        raise UserError("a password has at least 8 characters")
    try:
        role = Role(role)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {role!r}; use one of {allowed}") from exc
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(username=username, password_hash=_HASHER.hash(password), role=str(role), site=site)
    session.add(user)
    session.flush()
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


def set_active(session: Session, username: str, active: bool) -> UserView:
    """Activate or deactivate a user (a deactivated user cannot log in; its tokens stop working).

    Raises
    ------
    UserError
        No such user.
    """
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise UserError(f"no user {username!r}")
    user.active = active
    return _view(user)


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


def create_token(session: Session, username: str) -> str:
    """Create a new API token for a user and return it (it is shown once, never stored).

    Raises
    ------
    UserError
        No such active user.
    """
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise UserError(f"no active user {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    session.flush()
    logger.info("API token created for %s", username)
    return token


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
