"""Administering the API tokens of machine clients: issue, list, revoke.

A token is a random string of which only the sha256 hash is stored (:func:`worklist.accounts.users.
hash_token`), so a leaked database does not leak tokens. Issuing and revoking a token are changes
to who can reach the worklist: each is audited (``token.create``, ``token.revoke``) in the
caller's transaction, by whichever door it came (the command line or the web app), and no event
ever holds the token. Checking a presented token is authentication and lives in
:func:`worklist.accounts.users.user_for_token`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.errors import NotFound
from worklist.accounts.users import (
    InactiveUserError,
    UserError,
    UserNotFoundError,
    hash_token,
)
from worklist.audit import EventCategory, record_event
from worklist.db.schema import ApiToken, User

__all__ = [
    "HASH_PREFIX_LEN",
    "TOKEN_PREFIX",
    "NewToken",
    "Revocation",
    "TokenNotFoundError",
    "TokenView",
    "issue_token",
    "list_tokens",
    "record_token_uses",
    "revoke_token",
]

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "wl_"
# How many hex characters of a token's stored sha256 are shown to tell tokens apart (not secret:
# the hash of a 256-bit random token reveals nothing about it).
HASH_PREFIX_LEN = 8


class TokenNotFoundError(UserError, NotFound):
    """No API token has this id."""


@dataclass(frozen=True)
class TokenView:
    """What may be shown about an API token: never the token, only a prefix of its hash."""

    id: int
    username: str
    hash_prefix: str
    created_at: datetime
    revoked: bool
    user_active: bool
    last_used_at: datetime | None = None
    """When the web app last accepted it (to the minute at best: see :func:`record_token_uses`)."""

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
        last_used_at=token.last_used_at,
    )


def _audit(session: Session, action: str, view: TokenView, actor: str, source: str) -> None:
    """Record a token change: its id, user and hash prefix, never the token."""
    details = {"token_id": view.id, "username": view.username, "hash_prefix": view.hash_prefix}
    record_event(session, EventCategory.AUDIT, action, actor=actor, source=source, details=details)


def issue_token(session: Session, username: str, *, actor: str = "", source: str = "") -> NewToken:
    """Create a new API token for a user and audit it (``token.create``); only its sha256 is stored.

    The one way a token is made, whichever door asks (the command line, the web app, tests).

    Parameters
    ----------
    session
        An open write session; the caller commits.
    username
        An active user.
    actor, source
        Who creates it and from where (an OS login name and ``cli``, or a web user and the
        client's address), for the audit event, which holds the token's id and hash prefix only.

    Returns
    -------
    NewToken
        The token (``.secret``, to show once) and its view (id and hash prefix, to tell it apart
        later).

    Raises
    ------
    UserNotFoundError
        No such user.
    InactiveUserError
        The user is deactivated.
    """
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise UserNotFoundError(f"no user {username!r}")
    if not user.active:
        raise InactiveUserError(f"user {username!r} is inactive")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, token_hash=hash_token(secret))
    session.add(token)
    session.flush()
    view = _token_view(token, user)
    _audit(session, "token.create", view, actor, source)
    logger.info("API token %d (%s) created for %s", view.id, view.hash_prefix, username)
    return NewToken(secret=secret, view=view)


def record_token_uses(session: Session, uses: Mapping[str, datetime]) -> None:
    """Stamp ``last_used_at`` on tokens the web app accepted, in the caller's transaction.

    Parameters
    ----------
    session
        An open write session; the caller commits.
    uses
        Token sha256 hash -> when it was last accepted. A stamp never moves back in time.
    """
    for token_hash, when in uses.items():
        session.execute(
            update(ApiToken)
            .where(
                ApiToken.token_hash == token_hash,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < when),
            )
            .values(last_used_at=when)
            .execution_options(synchronize_session=False)
        )


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
    UserNotFoundError
        ``username`` names no user.
    """
    query = select(ApiToken, User).join(User, ApiToken.user_id == User.id)
    if username is not None:
        if session.scalars(select(User.id).where(User.username == username)).first() is None:
            raise UserNotFoundError(f"no user {username!r}")
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
    TokenNotFoundError
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
        raise TokenNotFoundError(f"no API token with id {token_id}")
    view = _token_view(*row)
    if changed:
        _audit(session, "token.revoke", view, actor, source)
        logger.info("API token %d (%s) of %s revoked", view.id, view.hash_prefix, view.username)
    return Revocation(token=view, changed=changed)
