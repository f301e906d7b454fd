"""Issue 12: a study raised by waiting is read before the studies of its new class not yet due.

Before ``order_at`` the worklist ordered a class by ``due_at`` (arrival plus the target of the
class before waiting), so a routine study raised to P2 after three weeks kept a due time two
weeks ahead and went to the bottom of P2, behind every P2 study due sooner.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from models.card import ModelStatus
from tests.builders.onnx import write_worker_model
from tests.builders.store import add_study, study
from tests.builders.worker import WorkerFactory, drain, load
from triage.policy import load_policy
from triage.worker.sweep import sweep
from worklist.db.engine import Database
from worklist.db.schema import Study
from worklist.db.types import utcnow
from worklist.reading.queries import WorklistFilter, worklist_page


def _order(db: Database) -> list[int]:
    with db.read() as s:
        return [row.id for row in worklist_page(s, WorklistFilter()).studies]


def test_an_escalated_study_is_read_before_a_later_due_study_of_its_new_class(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    routine, _ = add_study(db, archive, brights=(0.1,), referral="ROUTINE")
    soon, _ = add_study(db, archive, brights=(0.1,), referral="HIGH")
    drain(make_worker(db, [(model, ModelStatus.ENABLED)]))
    arrived = utcnow() - timedelta(weeks=4)
    with db.write() as s:
        s.execute(update(Study).where(Study.id == routine).values(first_received_at=arrived))
    policy = load_policy()
    assert sweep(db, policy, utcnow()) == 1
    raised, native = study(db, routine), study(db, soon)
    assert (raised.priority, native.priority) == ("P2", "P2")
    # The due time keeps its meaning; the order counts the study due since it was raised.
    assert raised.due_at == arrived + timedelta(weeks=6)
    assert raised.order_at == arrived + timedelta(weeks=3)
    assert native.order_at == native.due_at
    assert native.due_at is not None and native.due_at < raised.due_at
    assert _order(db) == [routine, soon]
    result = raised.priority_explanation[-1]
    assert result["rule"] == "result" and result["order_at"] == raised.order_at.isoformat()


def test_the_sweep_corrects_the_order_of_a_study_raised_before_order_at_existed(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest"))
    routine, _ = add_study(db, archive, brights=(0.1,), referral="ROUTINE")
    urgent, _ = add_study(db, archive, brights=(0.1,), referral="HIGH")
    drain(make_worker(db, [(model, ModelStatus.ENABLED)]))
    policy = load_policy()
    now = utcnow()
    four_weeks_ago, day_ago = now - timedelta(weeks=4), now - timedelta(hours=13)
    with db.write() as s:
        s.execute(update(Study).where(Study.id == routine).values(first_received_at=four_weeks_ago))
        s.execute(update(Study).where(Study.id == urgent).values(first_received_at=day_ago))
    assert sweep(db, policy, now) == 2
    assert study(db, urgent).priority == "P1"  # P2 raised to P1 after 12 h
    # What migration 0003 leaves on rows raised before it: order_at = due_at.
    with db.write() as s:
        s.execute(update(Study).values(order_at=Study.due_at))
    assert sweep(db, policy, now) == 2
    assert study(db, routine).order_at == four_weeks_ago + timedelta(weeks=3)
    assert study(db, urgent).order_at == day_ago + timedelta(hours=12)
    assert sweep(db, policy, now) == 0
