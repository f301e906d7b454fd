"""Listing and revoking API tokens with the store functions: hash prefixes, never secrets."""

from __future__ import annotations

import pytest

from tests.builders.audit import audit_events
from tests.builders.store import add_users
from worklist.accounts.tokens import HASH_PREFIX_LEN, issue_token, list_tokens, revoke_token
from worklist.accounts.users import UserError, hash_token, set_active
from worklist.db.engine import Database


def test_list_tokens_shows_hash_prefixes_never_secrets(db: Database) -> None:
    tokens = add_users(db)
    with db.write() as session:
        second = issue_token(session, "radiologist")
        set_active(session, "ml_engineer", False)
    assert second.view.hash_prefix == hash_token(second.secret)[:HASH_PREFIX_LEN]
    assert second.secret not in repr(second)
    with db.read() as session:
        everyone = list_tokens(session)
        mine = list_tokens(session, "radiologist")
        with pytest.raises(UserError, match="no user 'nobody'"):
            list_tokens(session, "nobody")
    assert [t.username for t in everyone] == [
        "admin",
        "ml_engineer",
        "radiographer",
        "radiologist",
        "radiologist",
    ]
    assert [t.hash_prefix for t in mine] == [
        hash_token(tokens["radiologist"])[:HASH_PREFIX_LEN],
        second.view.hash_prefix,
    ]
    assert [t.id for t in mine] == sorted(t.id for t in mine)
    assert all(len(t.hash_prefix) == HASH_PREFIX_LEN for t in everyone)
    assert all(t.created_at.tzinfo is not None and not t.revoked for t in everyone)
    assert {t.username: t.state for t in everyone}["ml_engineer"] == "user inactive"
    shown = repr(everyone)
    for secret in [*tokens.values(), second.secret]:
        assert secret not in shown
        assert hash_token(secret) not in shown  # only a prefix of the hash, never all of it


def test_revoke_token_is_audited_once_and_unknown_ids_fail(db: Database) -> None:
    add_users(db)
    with db.read() as session:
        target = list_tokens(session, "radiologist")[0]
    with db.write() as session:
        done = revoke_token(session, target.id, actor="alice", source="cli")
    assert done.changed and done.token.revoked and done.token.state == "revoked"
    assert done.token.hash_prefix == target.hash_prefix
    with db.write() as session:
        again = revoke_token(session, target.id, actor="alice", source="cli")
    assert not again.changed and again.token.revoked
    events = audit_events(db, "token.revoke")
    assert [(e.category, e.actor, e.source, e.outcome) for e in events] == [
        ("audit", "alice", "cli", "success")
    ]
    assert events[0].details == {
        "token_id": target.id,
        "username": "radiologist",
        "hash_prefix": target.hash_prefix,
    }
    with db.write() as session, pytest.raises(UserError, match="no API token with id 9999"):
        revoke_token(session, 9999)
    with db.read() as session:
        states = {t.id: t.revoked for t in list_tokens(session)}
    assert [tid for tid, revoked in states.items() if revoked] == [target.id]
