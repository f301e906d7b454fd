"""Local users of the web app and the API tokens of machine clients.

Passwords are stored as argon2id hashes (``argon2-cffi``); API tokens are random strings of which
only the sha256 hash is stored, so a leaked database does not leak tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.errors import TriageError
from worklist.db.schema import ApiToken, User
from worklist.domain import Role
from worklist.events import EventCategory, record_event

__all__ = [
    "HASH_PREFIX_LEN",
    "NewToken",
    "Revocation",
    "TokenView",
    "UserError",
    "UserView",
    "add_user",
    "authenticate",
    "create_token",
    "get_user",
    "hash_token",
    "issue_token",
    "list_tokens",
    "list_users",
    "revoke_token",
    "set_active",
    "user_for_token",
]

logger = logging.getLogger(__name__)

_HASHER = PasswordHasher()
# Verified against when the username is unknown, so that timing does not reveal which users exist.
_DUMMY_HASH = _HASHER.hash("not-a-real-password")
TOKEN_PREFIX = "wl_"
# How many hex characters of a token's stored sha256 are shown to tell tokens apart (not secret:
# the hash of a 256-bit random token reveals nothing about it).
HASH_PREFIX_LEN = 8


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


@dataclass(frozen=True)
class TokenView:
    """What may be shown about an API token: never the token, only a prefix of its hash."""

    id: int
    username: str
    hash_prefix: str
    created_at: datetime
    revoked: bool
    user_active: bool

    @property
    def state(self) -> str:
        """``revoked``, ``user inactive`` (the token is refused with its user) or ``active``."""
        if self.revoked:
            return "revoked"
        return "active" if self.user_active else "user inactive"


@dataclass(frozen=True)
class NewToken:
    """A token just created: the secret (shown once, never stored or logged) and its view."""

    secret: str = field(repr=False)
    view: TokenView


@dataclass(frozen=True)
class Revocation:
    """The outcome of :func:`revoke_token`: the token and whether this call revoked it."""

    token: TokenView
    changed: bool


def _token_view(token: ApiToken, user: User) -> TokenView:
    return TokenView(
        id=token.id,
        username=user.username,
        hash_prefix=token.token_hash[:HASH_PREFIX_LEN],
        created_at=token.created_at,
        revoked=token.revoked,
        user_active=user.active,
    )


def issue_token(session: Session, username: str) -> NewToken:
    """Create a new API token for a user; only its sha256 is stored.

    Parameters
    ----------
    session
        An open write session; the caller commits.
    username
        An active user.

    Returns
    -------
    NewToken
        The token (to show once) and its view (id and hash prefix, to tell it apart later).

    Raises
    ------
    UserError
        No such active user.
    """
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise UserError(f"no active user {username!r}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, token_hash=hash_token(secret))
    session.add(token)
    session.flush()
    view = _token_view(token, user)
    logger.info("API token %d (%s) created for %s", view.id, view.hash_prefix, username)
    return NewToken(secret=secret, view=view)


def create_token(session: Session, username: str) -> str:
    """Create a new API token for a user and return it (it is shown once, never stored).

    Raises
    ------
    UserError
        No such active user.
    """
    return issue_token(session, username).secret


def list_tokens(session: Session, username: str | None = None) -> list[TokenView]:
    """Return the API tokens (revoked ones too) of one user or of everyone, by user then id.

    Parameters
    ----------
    session
        An open session.
    username
        Only this user's tokens; ``None`` for all.

    Returns
    -------
    list of TokenView
        Views without the secret, which is never stored.

    Raises
    ------
    UserError
        ``username`` names no user.
    """
    query = select(ApiToken, User).join(User, ApiToken.user_id == User.id)
    if username is not None:
        if session.scalars(select(User.id).where(User.username == username)).first() is None:
            raise UserError(f"no user {username!r}")
        query = query.where(User.username == username)
    rows = session.execute(query.order_by(User.username, ApiToken.id))
    return [_token_view(token, user) for token, user in rows]


def revoke_token(
    session: Session, token_id: int, *, actor: str = "", source: str = ""
) -> Revocation:
    """Revoke an API token for good and audit it (``token.revoke``) in the caller's transaction.

    One conditional ``UPDATE``: revoking a revoked token changes nothing and records no second
    event, even when two revocations race. Web processes may honour the token for up to their
    auth cache's TTL after the commit (see :mod:`worklist.web.authcache`).

    Parameters
    ----------
    session
        An open write session; the caller commits.
    token_id
        The id shown by :func:`list_tokens`.
    actor, source
        Who revokes it and from where, for the audit event.

    Returns
    -------
    Revocation
        The token, and whether this call revoked it (``False``: it already was).

    Raises
    ------
    UserError
        No token has this id.
    """
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked.is_(False))
        .values(revoked=True)
        .execution_options(synchronize_session=False)
    )
    changed = getattr(result, "rowcount", 0) == 1
    row = session.execute(
        select(ApiToken, User)
        .join(User, ApiToken.user_id == User.id)
        .where(ApiToken.id == token_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise UserError(f"no API token with id {token_id}")
    view = _token_view(*row)
    if changed:
        record_event(
            session,
            EventCategory.AUDIT,
            "token.revoke",
            actor=actor,
            source=source,
            details={
                "token_id": view.id,
                "username": view.username,
                "hash_prefix": view.hash_prefix,
            },
        )
        logger.info("API token %d (%s) of %s revoked", view.id, view.hash_prefix, view.username)
    return Revocation(token=view, changed=changed)


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
