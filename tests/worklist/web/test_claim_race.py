"""Two radiologists claiming the same study at once: exactly one wins (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from sqlalchemy import select

from tests.worklist.web.support import PASSWORD, add_users, live_server, make_app, seed_study
from worklist.accounts.tokens import issue_token
from worklist.accounts.users import UserView, add_user
from worklist.db.engine import Database
from worklist.db.schema import Study
from worklist.domain import Role
from worklist.reading.actions import Actor, ConflictError, claim


def test_two_radiologists_claim_at_once_over_http(db: Database, tmp_path: Path) -> None:
    add_users(db)
    tokens: list[str] = []
    with db.write() as session:
        for name in ("rad_a", "rad_b"):
            add_user(session, name, PASSWORD, "radiologist")
            tokens.append(issue_token(session, name).secret)
    uids = [seed_study(db, tmp_path / "archive", crossed=True, with_image=False) for _ in range(5)]
    with make_app(db, tmp_path) as (app, _), live_server(app) as base:
        for uid in uids:
            barrier = threading.Barrier(2)
            codes: dict[str, int] = {}

            def go(
                name: str,
                token: str,
                uid: str = uid,
                barrier: threading.Barrier = barrier,
                codes: dict[str, int] = codes,
            ) -> None:
                with httpx.Client(base_url=base, timeout=30) as client:
                    barrier.wait()
                    resp = client.post(
                        f"/api/v1/studies/{uid}/claim",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    codes[name] = resp.status_code

            threads = [
                threading.Thread(target=go, args=(n, t))
                for n, t in zip(("rad_a", "rad_b"), tokens, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(codes.values()) == [200, 409], codes
            winner = next(n for n, c in codes.items() if c == 200)
            with db.read() as session:
                study = session.scalars(select(Study).where(Study.study_instance_uid == uid)).one()
                assert (study.read_status, study.claimed_by) == ("claimed", winner)


def test_claim_action_race_in_threads(db: Database, tmp_path: Path) -> None:
    uid = seed_study(db, tmp_path / "archive", with_image=False)
    rounds = 8
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(rounds)

    def go(i: int) -> None:
        actor = Actor(UserView(i, f"r{i}", Role.RADIOLOGIST, "", True), "127.0.0.1")
        barrier.wait()
        try:
            with db.write() as session:
                claim(session, actor, uid)
            outcome = "won"
        except ConflictError:
            outcome = "lost"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(rounds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost"] * (rounds - 1) + ["won"]
