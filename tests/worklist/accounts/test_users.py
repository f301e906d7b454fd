"""Every change to a user or a token by the domain functions is audited exactly once.

The domain functions (``worklist.accounts.users``, ``worklist.accounts.tokens``) record the
events; a change that fails records nothing. No event ever holds a password or a token.
"""

from __future__ import annotations

import pytest

from models.errors import Conflict
from tests.builders.audit import assert_no_secret, user_events
from tests.builders.store import PASSWORD
from worklist.accounts.tokens import HASH_PREFIX_LEN, issue_token
from worklist.accounts.users import (
    LastAdminError,
    UserError,
    add_user,
    hash_token,
    set_active,
)
from worklist.db.engine import Database


def test_domain_functions_audit_each_change_once(db: Database) -> None:
    with db.write() as session:
        add_user(session, "carol", PASSWORD, "radiographer", site="CDC1", actor="root", source="x")
    with db.write() as session:
        new = issue_token(session, "carol", actor="root", source="x")
        other = issue_token(session, "carol", actor="root", source="x").secret
    with db.write() as session:
        set_active(session, "carol", False, actor="root", source="x")
    with db.write() as session:
        again = set_active(session, "carol", False, actor="root", source="x")  # no change
    assert not again.active
    with db.write() as session:
        back = set_active(session, "carol", True, actor="root", source="x")
    assert back.active
    with db.write() as session, pytest.raises(UserError, match="no user 'nobody'"):
        set_active(session, "nobody", False, actor="root", source="x")
    events = user_events(db, "carol")
    assert [(a, c, who, src) for a, c, who, src, _ in events] == [
        ("user.add", "audit", "root", "x"),
        ("token.create", "audit", "root", "x"),
        ("token.create", "audit", "root", "x"),
        ("user.deactivate", "audit", "root", "x"),
        ("user.activate", "audit", "root", "x"),
    ]
    assert events[0][4] == {"username": "carol", "role": "radiographer", "site": "CDC1"}
    assert events[1][4] == {
        "token_id": new.view.id,
        "username": "carol",
        "hash_prefix": new.view.hash_prefix,
    }
    assert events[2][4]["hash_prefix"] == hash_token(other)[:HASH_PREFIX_LEN]
    assert events[3][4] == events[4][4] == {"username": "carol"}
    assert_no_secret(events, PASSWORD, new.secret, other)


def test_failed_changes_record_nothing(db: Database) -> None:
    with db.write() as session:
        add_user(session, "dave", PASSWORD, "radiologist", actor="root", source="x")
    for bad in (
        lambda s: add_user(s, "dave", PASSWORD, "radiologist", actor="root", source="x"),
        lambda s: add_user(s, "erin", "short", "radiologist", actor="root", source="x"),
        lambda s: issue_token(s, "nobody", actor="root", source="x"),
    ):
        with pytest.raises(UserError), db.write() as session:
            bad(session)
    assert [e[0] for e in user_events(db, "dave")] == ["user.add"]
    assert user_events(db, "erin") == []


def test_the_last_active_admin_cannot_be_deactivated(db: Database) -> None:
    with db.write() as session:
        add_user(session, "root1", PASSWORD, "admin", actor="cli", source="cli")
    with db.write() as session, pytest.raises(LastAdminError, match="last active admin"):
        set_active(session, "root1", False, actor="root1", source="x")
    with db.write() as session:
        add_user(session, "root2", PASSWORD, "admin", actor="cli", source="cli")
    with db.write() as session:  # another admin is active now: allowed
        assert not set_active(session, "root1", False, actor="root2", source="x").active
    with db.write() as session, pytest.raises(LastAdminError):
        set_active(session, "root2", False, actor="root2", source="x")
    assert isinstance(LastAdminError("x"), Conflict)
    assert [a for a, *_ in user_events(db, "root2")] == ["user.add"]  # refusal recorded nothing
