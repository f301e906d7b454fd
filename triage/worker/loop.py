"""The worker loop: claim jobs, keep their leases alive, run the models, commit, sweep."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from triage.exports import ExportDestination
from triage.exports.exporter import Exporter
from triage.outputs.writer import OutputWriter
from triage.policy import Policy
from triage.routing import RoutingRules
from triage.settings import HeatmapPolicy
from triage.webhooks import Webhook
from triage.webhooks.notifier import Notifier
from triage.worker.inference import StudyWork, run_models
from triage.worker.pool import ModelPool
from triage.worker.publish import Publisher
from triage.worker.store import commit_triage, leave_on_worklist, load_work, reprioritise
from triage.worker.sweep import sweep
from worklist.archive import Archive
from worklist.db.engine import Database
from worklist.db.outage import OutageLog
from worklist.db.types import utcnow
from worklist.domain import JobKind, JobState
from worklist.ingest.recorder import Ingestor
from worklist.jobs import ClaimedJob, any_claimable, claim, fail, heartbeat

__all__ = ["LeaseKeeper", "Worker", "WorkerOptions", "default_owner"]

logger = logging.getLogger(__name__)

_ERROR_BACKOFF_S = 1.0


def default_owner() -> str:
    """Return a lease owner name unique to this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs (from ``TriageSettings``, ``WorklistSettings``, ``ModelsSettings``)."""

    archive_dir: Path
    lease_s: float = 60.0
    poll_s: float = 0.15
    batch_jobs: int = 8
    batch_size: int = 8
    sweep_s: float = 60.0
    heatmaps: HeatmapPolicy = HeatmapPolicy.CROSSED
    outputs: bool = True
    """Store a TID 1500 SR and a key image per enabled model run (:mod:`triage.outputs`)."""
    archive_quota_bytes: int | None = None
    archive_min_free_bytes: int = 0
    exports: tuple[ExportDestination, ...] = ()
    """Where triaged studies are exported (:mod:`triage.exports`); empty: no exports."""
    webhooks: tuple[Webhook, ...] = ()
    """Who is notified of AI-decided P1 studies (:mod:`triage.webhooks`); empty: nobody."""


class LeaseKeeper:
    """A thread that extends the leases of the jobs being worked on (every ``lease_s / 3``).

    Parameters
    ----------
    db
        The store.
    owner
        The lease owner.
    lease_s
        The lease length.
    """

    def __init__(self, db: Database, owner: str, lease_s: float) -> None:
        self._db, self._owner, self._lease_s = db, owner, lease_s
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self.lost: set[int] = set()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def hold(self, ids: Sequence[int]) -> None:
        """Keep these jobs' leases alive."""
        with self._lock:
            self._ids.update(ids)

    def release(self, job_id: int) -> None:
        """Stop extending one job's lease."""
        with self._lock:
            self._ids.discard(job_id)

    def _run(self) -> None:
        interval = max(self._lease_s / 3.0, 0.05)
        while not self._stop.wait(interval):
            with self._lock:
                ids = sorted(self._ids)
            if not ids:
                continue
            try:
                held = set(heartbeat(self._db, ids, self._owner, self._lease_s))
            except Exception as exc:
                logger.warning("heartbeat failed: %s", exc)
                continue
            for job_id in set(ids) - held:
                logger.warning("job %d: lease lost", job_id)
                self.lost.add(job_id)
                self.release(job_id)


class Worker:
    """Claims triage and reprioritise jobs and carries them out.

    Parameters
    ----------
    db
        The store.
    pool
        The models.
    routing
        The routing rules.
    policy
        The priority policy.
    options
        Lease, polling, batching and sweep settings.
    owner
        The lease owner name; default :func:`default_owner`.
    clock
        Returns the current aware UTC time (tests pass a fixed clock).
    """

    def __init__(
        self,
        db: Database,
        pool: ModelPool,
        routing: RoutingRules,
        policy: Policy,
        options: WorkerOptions,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.pool, self.routing, self.policy = db, pool, routing, policy
        self.options = options
        self.owner = owner or default_owner()
        self.clock = clock
        self._last_sweep = -float("inf")
        self.outputs: OutputWriter | None = None
        if options.outputs:
            archive = Archive(
                options.archive_dir,
                quota_bytes=options.archive_quota_bytes,
                min_free_bytes=options.archive_min_free_bytes,
            )
            self.outputs = OutputWriter(db, Ingestor(db, archive, reopen=False), actor=self.owner)
        self.exporter: Exporter | None = None
        if options.exports:
            self.exporter = Exporter(db, options.archive_dir, options.exports, owner=self.owner)
        self.notifier: Notifier | None = None
        if options.webhooks:
            self.notifier = Notifier(db, options.webhooks, owner=self.owner)
        self.publisher = Publisher(db, self.owner, self.outputs, self.exporter, self.notifier)
        self.published = 0
        """Publish jobs claimed so far (for tests and diagnostics)."""

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set: claim, process, sweep; sleep ``poll_s`` when idle."""
        logger.info("worker %s started (%d models)", self.owner, len(self.pool.active))
        outage = OutageLog(logger, "the worker loop")
        while not stop.is_set():
            try:
                handled = self.run_once()
                self.maybe_sweep()
            except Exception as exc:  # the store may be briefly unreachable: back off, go on
                outage.failed(exc)
                stop.wait(_ERROR_BACKOFF_S)
                continue
            outage.succeeded()
            if not handled:
                stop.wait(self.options.poll_s)
        logger.info("worker %s stopped", self.owner)

    def maybe_sweep(self) -> int:
        """Run the escalation sweep if ``sweep_s`` has passed since the last one."""
        now = time.monotonic()
        if now - self._last_sweep < self.options.sweep_s:
            return 0
        self._last_sweep = now
        return sweep(self.db, self.policy, self.clock(), actor=self.owner)

    def run_once(self) -> int:
        """Claim up to ``batch_jobs`` jobs and carry them out; return how many were handled."""
        self.pool.refresh()
        got = claim(
            self.db,
            self.owner,
            kinds=[JobKind.TRIAGE, JobKind.REPRIORITISE],
            limit=self.options.batch_jobs,
            lease_s=self.options.lease_s,
        )
        for job in got.exhausted:
            reason = (
                f"AI not available: triage gave up after {job.attempts} attempts "
                "(the worker stopped each time)"
            )
            self._give_up(job, reason)
        if got.jobs:
            with LeaseKeeper(self.db, self.owner, self.options.lease_s) as keeper:
                keeper.hold([j.id for j in got.jobs])
                self._process(got.jobs, keeper)
        # Publishing right after the commit (the outputs never delay the worklist), then sending.
        handled = len(got.jobs) + len(got.exhausted) + self.run_publish()
        return handled + self.run_exports()

    def run_publish(self) -> int:
        """Claim publish jobs (P1 studies' first) and publish each study.

        Returns
        -------
        int
            How many jobs were handled (claimed, or found exhausted by a dead worker).
        """
        kinds = [str(JobKind.PUBLISH)]
        if not any_claimable(self.db, kinds):  # a read: no write lock taken for nothing
            return 0
        return self._claim_and_run(
            kinds,
            self._publish,
            "the study stays on the worklist without its outputs, exports and notifications",
        )

    def run_exports(self) -> int:
        """Claim export and webhook jobs (P1 studies' first) and carry out one attempt of each.

        Returns
        -------
        int
            How many jobs were handled (claimed, or found exhausted by a dead worker).
        """
        kinds = [str(JobKind.EXPORT)] if self.exporter is not None else []
        kinds += [str(JobKind.WEBHOOK)] if self.notifier is not None else []
        if not kinds:
            return 0
        return self._claim_and_run(kinds, self._send, "listed for an administrator to re-queue")

    def _publish(self, job: ClaimedJob) -> None:
        self.published += 1
        self.publisher.run(job)

    def _send(self, job: ClaimedJob) -> None:
        if job.kind == JobKind.WEBHOOK and self.notifier is not None:
            self.notifier.run(job)
        elif self.exporter is not None:
            self.exporter.run(job)

    def _claim_and_run(
        self, kinds: list[str], carry_out: Callable[[ClaimedJob], object], exhausted: str
    ) -> int:
        """Claim jobs of ``kinds`` and carry out each under its lease; a failure is retried."""
        got = claim(
            self.db,
            self.owner,
            kinds=kinds,
            limit=self.options.batch_jobs,
            lease_s=self.options.lease_s,
        )
        for job in got.exhausted:
            logger.error(
                "%s job %d (study %s): exhausted (the worker stopped each time); %s",
                job.kind,
                job.id,
                job.study_id,
                exhausted,
            )
        with LeaseKeeper(self.db, self.owner, self.options.lease_s) as keeper:
            for job in got.jobs:
                keeper.hold([job.id])
                try:
                    carry_out(job)
                except Exception as exc:  # a bug, a broken file, the store briefly gone: retry
                    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    logger.exception("%s job %d (study %s) failed", job.kind, job.id, job.study_id)
                    fail(self.db, job.id, self.owner, text)
                finally:
                    keeper.release(job.id)
        return len(got.jobs) + len(got.exhausted)

    def _give_up(self, job: ClaimedJob, reason: str) -> None:
        logger.error("job %d (%s, study %s): %s", job.id, job.kind, job.study_id, reason)
        if job.kind == JobKind.TRIAGE:
            # It queues the study's publish job too: "AI not available" studies are exported.
            leave_on_worklist(self.db, job.study_id, reason, self.policy, self.clock(), self.owner)

    def _failed(self, job: ClaimedJob, exc: BaseException) -> None:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        logger.error("job %d failed: %s", job.id, text, exc_info=exc)
        state = fail(self.db, job.id, self.owner, text)
        if state == JobState.FAILED:
            self._give_up(job, f"triage failed after {job.attempts} attempts: {text}")

    def _process(self, jobs: Sequence[ClaimedJob], keeper: LeaseKeeper) -> None:
        """Carry out a claimed batch: reprioritise, load, run the models, commit each job."""
        triage = self._load(jobs, keeper)
        if self._run(triage, keeper):
            for job, work in triage:  # each commit queues its study's publish job
                self._commit(job, work, keeper)

    def _load(
        self, jobs: Sequence[ClaimedJob], keeper: LeaseKeeper
    ) -> list[tuple[ClaimedJob, StudyWork | None]]:
        """Carry out the reprioritise jobs; load the study of each triage job for the models."""
        triage: list[tuple[ClaimedJob, StudyWork | None]] = []
        for job in jobs:
            if job.kind == JobKind.REPRIORITISE:
                try:
                    reprioritise(
                        self.db, self.owner, job.id, job.study_id, self.policy, self.clock()
                    )
                except Exception as exc:
                    self._failed(job, exc)
                keeper.release(job.id)
                continue
            try:
                with self.db.read() as session:
                    work = load_work(session, job.study_id) if job.study_id else None
            except Exception as exc:
                self._failed(job, exc)
                keeper.release(job.id)
                continue
            triage.append((job, work))
        return triage

    def _run(self, triage: list[tuple[ClaimedJob, StudyWork | None]], keeper: LeaseKeeper) -> bool:
        """Run the models over the loaded studies; False when it failed and the jobs were failed."""
        works = [w for _, w in triage if w is not None]
        if not works:
            return True
        try:
            run_models(
                works,
                self.pool,
                self.routing,
                self.options.archive_dir,
                batch_size=self.options.batch_size,
                heatmaps=self.options.heatmaps,
            )
        except Exception as exc:  # a bug, not a model failure: retry the jobs later
            for job, _ in triage:
                self._failed(job, exc)
                keeper.release(job.id)
            return False
        return True

    def _commit(self, job: ClaimedJob, work: StudyWork | None, keeper: LeaseKeeper) -> bool:
        """Commit one triage job's results unless its lease was lost; release it either way.

        Returns whether this worker committed them.
        """
        try:
            if job.id in keeper.lost:
                logger.warning("job %d: lease lost while working; not committing", job.id)
                return False
            done = work if work is not None else StudyWork(0, "", [])
            return commit_triage(self.db, self.owner, job.id, done, self.policy, self.clock())
        except Exception as exc:
            self._failed(job, exc)
            return False
        finally:
            keeper.release(job.id)
