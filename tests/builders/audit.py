"""Reading the audit log back: events by action, user and token events, no secret in them."""

from __future__ import annotations

import json

from sqlalchemy import select

from worklist.accounts.users import hash_token
from worklist.db.engine import Database
from worklist.db.schema import Event

USER_ACTIONS = ("user.add", "user.deactivate", "user.activate", "token.create")
"""The actions of a change to who can reach the worklist."""

UserEvent = tuple[str, str, str, str, dict[str, object]]
"""``(action, category, actor, source, details)`` of one event."""


def audit_events(db: Database, action: str) -> list[Event]:
    """Return the events with this action, detached from their session, oldest first.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    action : str
        The action, e.g. ``"token.revoke"``.

    Returns
    -------
    list of worklist.db.schema.Event
        The rows.
    """
    with db.read() as session:
        query = select(Event).where(Event.action == action).order_by(Event.id)
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def user_events(db: Database, username: str) -> list[UserEvent]:
    """Return the user and token events about ``username``, oldest first.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    username : str
        Whose events.

    Returns
    -------
    list of UserEvent
        ``(action, category, actor, source, details)`` per event of :data:`USER_ACTIONS`.
    """
    with db.read() as session:
        rows = session.scalars(
            select(Event).where(Event.action.in_(USER_ACTIONS)).order_by(Event.id)
        )
        return [
            (e.action, e.category, e.actor, e.source, dict(e.details))
            for e in rows
            if e.details.get("username") == username
        ]


def assert_no_secret(found: list[UserEvent], *secrets: str) -> None:
    """Assert that no secret, nor the whole sha256 of one, is in the events.

    Parameters
    ----------
    found : list of UserEvent
        Events from :func:`user_events`.
    *secrets : str
        Passwords and tokens.
    """
    dumped = json.dumps(found)
    for secret in secrets:
        assert secret not in dumped
        assert hash_token(secret) not in dumped  # a prefix of the hash at most
