"""Two radiologists claiming the same study at once: exactly one wins (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from sqlalchemy import select

from tests.builders.store import PASSWORD, add_users, seed_study
from tests.builders.web import live_server, make_app
from worklist.accounts.tokens import issue_token
from worklist.accounts.users import add_user
from worklist.db.engine import Database
from worklist.db.schema import Study


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
