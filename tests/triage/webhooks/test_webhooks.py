"""Webhooks of AI-decided P1 studies: a real HTTP receiver on a loopback port gets the signed
JSON notification, a receiver that fails twice gets it once, other studies send nothing, and
the secret never shows in logs, events or job rows."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from models.card import ModelStatus
from tests.builders.audit import audit_events
from tests.builders.onnx import write_worker_model
from tests.builders.peers import free_port
from tests.builders.store import add_study, study
from tests.builders.webhooks import Received, webhook_receiver
from tests.builders.worker import WorkerFactory, drain, load
from triage.webhooks import Webhook
from triage.worker import Worker
from worklist import exports as store_exports
from worklist.db.engine import Database
from worklist.db.schema import Event, Job
from worklist.domain import JobKind

ENABLED = ModelStatus.ENABLED
SECRET = "s3cr3t-pager-gateway-key-0123456789"


def _hook(url: str, **extra: Any) -> Webhook:
    fields: dict[str, Any] = {
        "name": "pager",
        "url": url,
        "secret_env": "TRIAGE_TEST_HOOK_SECRET",
        "first_delay_s": 0.1,
        "backoff": 2.0,
        "timeout_s": 5.0,
        **extra,
    }
    return Webhook.model_validate(fields)


def _worker(db: Database, make_worker: WorkerFactory, models_dir: Path, *hooks: Webhook) -> Worker:
    model = load(write_worker_model(models_dir, "chest", n_labels=2))
    return make_worker(db, [(model, ENABLED)], webhooks=hooks)


def _webhook_jobs(db: Database) -> list[Job]:
    with db.read() as s:
        rows = list(s.scalars(select(Job).where(Job.kind == JobKind.WEBHOOK).order_by(Job.id)))
        s.expunge_all()
        return rows


def _verify(request: Received, secret: bytes) -> bool:
    """Check the signature as a receiver would: HMAC-SHA256 of ``timestamp "." body``."""
    timestamp = request.headers["x-triage-timestamp"]
    expected = hmac.new(secret, timestamp.encode() + b"." + request.body, hashlib.sha256)
    given = request.headers["x-triage-signature"]
    return hmac.compare_digest("sha256=" + expected.hexdigest(), given)


def _until_delivered(worker: Worker, n: int, got: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(got.delivered()) < n and time.monotonic() < deadline:
        drain(worker)
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_TEST_HOOK_SECRET", SECRET)


def test_ai_p1_sends_a_signed_notification_that_verifies(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    hot, hot_uid = add_study(db, archive, brights=(0.9,))
    with webhook_receiver() as got:
        worker = _worker(db, make_worker, models_dir, _hook(got.url))
        _until_delivered(worker, 1, got)
        drain(worker)
        (request,) = got.requests
    assert request.path == "/hooks/triage" and request.status == 204
    assert request.headers["content-type"] == "application/json"
    assert _verify(request, SECRET.encode())
    assert not _verify(request, b"another secret")
    assert abs(int(request.headers["x-triage-timestamp"]) - time.time()) < 60
    tampered = Received(request.path, request.headers, request.body.replace(b"P1", b"P2"), 204)
    assert not _verify(tampered, SECRET.encode())

    event = json.loads(request.body)
    row = study(db, hot)
    assert event["event"] == "study.ai_p1"
    assert event["event_id"] == request.headers["x-triage-event-id"]
    assert event["study_instance_uid"] == hot_uid
    assert (event["priority"], event["clinical_priority"], event["site"]) == ("P1", "P3", "CDC_A")
    assert event["decided_at"] == row.triaged_at.isoformat()  # type: ignore[union-attr]
    (finding,) = event["findings"]
    assert finding["label"] == "pneumothorax" and finding["category"] == "P1"
    assert finding["probability"] >= 0.5 and finding["threshold"] == 0.5
    assert finding["model"]["name"] == "chest" and finding["model"]["version"] == "1.0"
    assert len(finding["model"]["sha256"]) == 64
    assert "not a diagnosis" in event["notice"]
    assert "patient_name" not in event and "patient_id" not in event
    (job,) = _webhook_jobs(db)
    assert (job.state, job.attempts, job.priority) == ("done", 1, 1)
    (attempt,) = audit_events(db, "webhook.attempt")
    assert attempt.outcome == "success" and attempt.details["http_status"] == 204
    assert attempt.study_instance_uid == hot_uid
    assert row.priority == "P1"


def test_a_receiver_that_fails_twice_gets_the_event_once(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    add_study(db, archive, brights=(0.9,))
    with webhook_receiver(fail_first=(500, 500)) as got:
        worker = _worker(db, make_worker, models_dir, _hook(got.url))
        _until_delivered(worker, 1, got)
        time.sleep(0.5)  # beyond any retry the schedule could still make
        drain(worker)
        requests = list(got.requests)
    assert [r.status for r in requests] == [500, 500, 204]
    assert len({r.headers["x-triage-event-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1  # the same event each time
    assert all(_verify(r, SECRET.encode()) for r in requests)
    (job,) = _webhook_jobs(db)
    assert (job.state, job.attempts) == ("done", 3)
    attempts = audit_events(db, "webhook.attempt")
    assert [a.details["state"] for a in attempts] == ["queued", "queued", "done"]
    assert [a.details["retry_in_s"] for a in attempts] == [0.1, 0.2, None]
    assert [a.details["http_status"] for a in attempts] == [500, 500, 204]
    assert "HTTP 500" in attempts[0].details["error"]


def test_studies_the_ai_did_not_raise_to_p1_send_nothing(
    sqlite_db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    db = sqlite_db
    cold, _ = add_study(db, archive, brights=(0.1,))  # the AI raises it, but only to P2
    stat, _ = add_study(db, archive, brights=(0.9,), referral="STAT")  # P1 by the referrer
    with webhook_receiver() as got:
        worker = _worker(db, make_worker, models_dir, _hook(got.url))
        assert drain(worker) >= 2
        time.sleep(0.2)
        drain(worker)
        assert got.requests == []
    assert (study(db, cold).priority, study(db, stat).priority) == ("P2", "P1")
    assert _webhook_jobs(db) == []


def test_failures_never_touch_triage_nor_reveal_the_secret(
    sqlite_db: Database,
    archive: Path,
    models_dir: Path,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    db = sqlite_db
    caplog.set_level(logging.DEBUG)
    hot, hot_uid = add_study(db, archive, brights=(0.9,))
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET + "\n")
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    hooks = (
        _hook(closed, attempts=2),
        _hook(closed, name="paging-file", secret_file=secret_file, secret_env=None, attempts=2),
    )
    assert SECRET not in repr(hooks) and SECRET not in str(hooks[1].model_dump())
    worker = _worker(db, make_worker, models_dir, *hooks)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        drain(worker)
        if (jobs := _webhook_jobs(db)) and all(j.state == "failed" for j in jobs):
            break
        time.sleep(0.05)
    jobs = _webhook_jobs(db)
    assert [(j.state, j.attempts) for j in jobs] == [("failed", 2), ("failed", 2)]
    assert all("ConnectError" in j.last_error for j in jobs)
    row = study(db, hot)
    assert (row.priority, row.state, row.ai_status) == ("P1", "triaged", "done")
    assert len(audit_events(db, "webhook.exhausted")) == 2
    with db.read() as s:
        listed = store_exports.exhausted_exports(s)
        events = list(s.scalars(select(Event)))
        s.expunge_all()
    assert sorted((x.kind, x.destination) for x in listed) == [
        ("webhook", "pager"),
        ("webhook", "paging-file"),
    ]
    assert all(x.study_instance_uid == hot_uid for x in listed)
    with db.write() as s:
        again = store_exports.requeue_export(s, jobs[0].id, actor="admin", source="test")
    assert (again.kind, again.state) == ("webhook", "queued")
    first = _webhook_jobs(db)[0]
    assert (first.state, first.attempts) == ("queued", 0)
    assert caplog.text and SECRET not in caplog.text
    assert all(SECRET not in json.dumps(e.details) for e in events)
    assert all(SECRET not in j.last_error + json.dumps(j.payload) for j in jobs)


def test_a_webhook_needs_exactly_one_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Webhook(name="x", url="http://127.0.0.1/", secret_env="A", secret_file=Path("b"))
    with pytest.raises(ValidationError, match="exactly one"):
        Webhook(name="x", url="http://127.0.0.1/")
    with pytest.raises(ValidationError):
        Webhook(name="x", url="ftp://host/", secret_env="A")
    monkeypatch.delenv("TRIAGE_TEST_HOOK_SECRET")
    hook = _hook("http://127.0.0.1/")
    with pytest.raises(Exception, match=r"TRIAGE_TEST_HOOK_SECRET is not set"):
        hook.secret_bytes()
