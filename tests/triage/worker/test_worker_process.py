"""The worker as a process: ``python -m triage worker``, SIGKILLed mid-job; ``run_worker``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.builders import REPO
from tests.builders.onnx import write_worker_model
from tests.builders.store import add_study
from triage.settings_load import load_config
from triage.worker import run_worker
from worklist.db.engine import Database
from worklist.db.schema import Event, Finding, Job, Study
from worklist.domain import JobKind, JobState, StudyState


def _env(tmp_path: Path, models_dir: Path, lease_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.update(
        {
            "TRIAGE_WORKLIST_DATA_DIR": str(tmp_path / "var"),
            "TRIAGE_WORKLIST_JOB_LEASE_S": str(lease_s),
            "TRIAGE_MODELS_MODELS_DIR": str(models_dir),
            "TRIAGE_MODELS_PROVIDERS": '["CPUExecutionProvider"]',
            "TRIAGE_MODELS_INTRA_OP_THREADS": "1",
            "TRIAGE_TRIAGE_WORKER_POLL_S": "0.05",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'var' / 'triage.db'}")
    yield db
    db.dispose()


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _job(db: Database) -> Job:
    with db.read() as s:
        job = s.scalars(select(Job).where(Job.kind == JobKind.TRIAGE)).one()
        s.expunge(job)
        return job


def _start(tmp_path: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "triage", "worker", "--worker-id", name],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    finally:
        log.close()


def _log(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.log").read_text(errors="replace")[-4000:]


@pytest.mark.slow
def test_worker_killed_mid_job_is_retried_and_the_study_triaged_once(
    tmp_path: Path, store: Database
) -> None:
    archive = tmp_path / "var" / "archive"
    models_dir = tmp_path / "models"
    # About 2 s per image on one core: long enough to be killed in the middle.
    write_worker_model(models_dir, "slow", "slow", size=384, slow_layers=40, channels=32)
    sid, uid = add_study(store, archive, brights=(0.9,))
    env = _env(tmp_path, models_dir, lease_s=1.0)
    victim = _start(tmp_path, env, "victim")
    rescuer: subprocess.Popen[bytes] | None = None
    try:
        _wait(
            lambda: victim.poll() is not None or _job(store).lease_owner == "victim",
            90,
            "the worker to claim the job",
        )
        if victim.poll() is not None:
            pytest.fail(f"the worker exited with {victim.returncode}:\n{_log(tmp_path, 'victim')}")
        # Hold on past one lease length: the heartbeat must keep the lease alive meanwhile.
        time.sleep(1.3)
        job = _job(store)
        assert victim.poll() is None, _log(tmp_path, "victim")
        assert job.state == JobState.RUNNING and job.lease_owner == "victim"
        rescuer = _start(tmp_path, env, "rescuer")  # starts up while the victim dies
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        with store.read() as s:
            assert s.scalars(select(Finding)).all() == []
            assert s.get(Study, sid).state == StudyState.QUEUED  # type: ignore[union-attr]
        _wait(
            lambda: rescuer.poll() is not None or _job(store).state == JobState.DONE,
            120,
            "the retry to finish",
        )
        assert rescuer.poll() is None, _log(tmp_path, "rescuer")
        # SIGTERM stops a worker cleanly.
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=30) == 0, _log(tmp_path, "rescuer")
        assert "worker rescuer stopped" in _log(tmp_path, "rescuer")
    finally:
        for proc in (victim, rescuer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    job = _job(store)
    assert job.attempts == 2
    with store.read() as s:
        study = s.get(Study, sid)
        assert study is not None
        assert (study.state, study.ai_status) == (StudyState.TRIAGED, "done")
        rows = s.scalars(select(Finding)).all()
        assert len(rows) == 1 and rows[0].job_id == job.id  # one image x one label, once
        triaged = s.scalars(select(Event).where(Event.action == "study.triaged")).all()
        assert [e.actor for e in triaged] == ["rescuer"] and triaged[0].study_instance_uid == uid


def test_run_worker_with_the_model_registry(
    tmp_path: Path, store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "var" / "archive"
    models_dir = tmp_path / "models"
    write_worker_model(models_dir, "chest")
    write_worker_model(models_dir, "candidate", status="shadow")
    write_worker_model(models_dir, "retired", status="disabled")
    hot, _ = add_study(store, archive, brights=(0.9,))
    for key, value in _env(tmp_path, models_dir, lease_s=5.0).items():
        if key.startswith("TRIAGE_"):
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    config = load_config()
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(config, stop), daemon=True)
    thread.start()
    try:
        _wait(lambda: _job(store).state == JobState.DONE, 60, "the triage job")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with store.read() as s:
        study = s.get(Study, hot)
        assert study is not None and study.priority == "P1" and study.ai_status == "done"
        got = {(f.model_name, f.shadow) for f in s.scalars(select(Finding))}
        assert got == {("chest", False), ("candidate", True)}
