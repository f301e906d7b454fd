"""Reading actions in the store: claims race in threads and exactly one wins."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.builders.store import seed_study
from worklist.accounts.users import UserView
from worklist.db.engine import Database
from worklist.domain import Role
from worklist.reading.actions import Actor, ConflictError, claim


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
