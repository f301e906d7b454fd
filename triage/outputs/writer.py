"""Build a triaged study's DICOM outputs and store them as instances of the study.

After a study's triage is committed, the worker hands its :class:`StudyWork` to
:meth:`OutputWriter.write`. For each enabled model that scored the study (shadow models never
produce outputs) it builds the TID 1500 SR (:mod:`triage.outputs.sr`) and the Secondary Capture
key image (:mod:`triage.outputs.keyimage`) and stores both through the same durable door as a
received instance (:class:`worklist.ingest.recorder.Ingestor`: archive write with fsync, then
the instance's row), without reopening the study for another triage. Every door that serves
the study's instances then serves them too.

A failure is confined to the model run it concerns: it is logged and recorded as an
``outputs.failed`` system event, and never reaches the triage itself.
"""

from __future__ import annotations

import io
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydicom
from pydicom import Dataset
from sqlalchemy import func, select

from triage.outputs.keyimage import SCOptions, build_key_image, render_key_image
from triage.outputs.runs import (
    ModelRun,
    key_finding,
    model_runs,
    output_series_uid,
    with_type2,
)
from triage.outputs.sr import SROptions, build_sr
from worklist.audit import EventCategory, record_event
from worklist.db.engine import Database
from worklist.db.schema import Event, Instance, Series, Study
from worklist.ingest.header import parse_instance
from worklist.ingest.recorder import Ingestor, IngestResult

if TYPE_CHECKING:  # the worker imports this package: no import back at run time
    from triage.worker.inference import StudyWork

__all__ = ["OUTPUTS_SOURCE", "OutputWriter", "RunOutputs", "encode"]

logger = logging.getLogger(__name__)

OUTPUTS_SOURCE = "triage-outputs"
"""The ``source`` of the outputs' ingest and of their events."""


@dataclass(frozen=True)
class RunOutputs:
    """What was stored for one model run, and why anything was not (``error``)."""

    model: str
    sr: IngestResult | None = None
    key_image: IngestResult | None = None
    error: str = ""


def encode(ds: Dataset) -> bytes:
    """Return a dataset as a DICOM Part 10 file in memory."""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


class OutputWriter:
    """Build and store the SR and key image of each enabled model run of a triaged study.

    Parameters
    ----------
    db
        The store.
    ingestor
        The door into the archive and the store (the one received instances go through), made
        with ``reopen=False`` so that the outputs do not start another triage of their study.
    actor
        Who writes the events (the worker's lease owner).
    """

    def __init__(self, db: Database, ingestor: Ingestor, *, actor: str = OUTPUTS_SOURCE) -> None:
        self.db, self.ingestor, self.actor = db, ingestor, actor

    @property
    def archive_dir(self) -> Path:
        """The archive root."""
        return self.ingestor.archive.root

    def write(self, work: StudyWork, job_id: int | None = None) -> list[RunOutputs]:
        """Build and store the outputs of every enabled model run of one triaged study.

        A run whose outputs were already stored for the same triage job (an earlier attempt of
        the same publish job, cut short) is not stored again.

        Parameters
        ----------
        work
            The study as the worker triaged it, with its findings.
        job_id
            The triage job, for the events.

        Returns
        -------
        list of RunOutputs
            One per enabled model with findings still to store; a failed run carries its
            ``error``.
        """
        with self.db.read() as session:
            study = session.scalar(
                select(Study.id).where(Study.study_instance_uid == work.study_uid)
            )
        if study is None:  # deleted meanwhile: storing would bring it back
            logger.warning("study %s is gone; no outputs", work.study_uid)
            return []
        done = self.stored_runs(work.study_uid, job_id) if job_id is not None else set()
        return [
            self._write_run(work, run, job_id)
            for run in model_runs(work.study_uid, work.findings)
            if run.ref not in done
        ]

    def stored_runs(self, study_uid: str, job_id: int) -> set[str]:
        """Return the model runs of triage job ``job_id`` whose outputs are stored already.

        Parameters
        ----------
        study_uid
            The study.
        job_id
            The triage job.

        Returns
        -------
        set of str
            The runs' model references (``outputs.stored`` events of that job).
        """
        with self.db.read() as session:
            rows = session.scalars(
                select(Event.details).where(
                    Event.study_instance_uid == study_uid, Event.action == "outputs.stored"
                )
            ).all()
        return {str(d.get("model")) for d in rows if d.get("job_id") == job_id}

    def _write_run(self, work: StudyWork, run: ModelRun, job_id: int | None) -> RunOutputs:
        """Store one run's SR and key image, each on its own: one failing keeps the other."""
        stored: dict[str, IngestResult] = {}
        errors: dict[str, str] = {}
        try:
            paths = {image.sop_instance_uid: image.path for image in work.images}
            evidence = {uid: self._header(paths[uid]) for uid in run.source_uids}
        except Exception as exc:
            errors["sr"] = errors["key_image"] = self._describe(work, run, "sources", exc)
        else:
            steps = (("sr", self._write_sr), ("key_image", self._write_key_image))
            for kind, step in steps:
                try:
                    stored[kind] = step(run, paths, evidence)
                except Exception as exc:
                    errors[kind] = self._describe(work, run, kind, exc)
        if stored:
            paths_stored = {kind: result.path for kind, result in stored.items()}
            self._event(work, "outputs.stored", run, job_id, paths_stored)
        if errors:
            self._event(work, "outputs.failed", run, job_id, {"errors": errors})
        return RunOutputs(
            run.ref,
            stored.get("sr"),
            stored.get("key_image"),
            "; ".join(f"{kind}: {text}" for kind, text in errors.items()),
        )

    def _describe(self, work: StudyWork, run: ModelRun, what: str, exc: BaseException) -> str:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        logger.error(
            "study %s: %s of %s not stored: %s", work.study_uid, what, run.ref, text, exc_info=exc
        )
        return text[:2000]

    def _write_sr(
        self, run: ModelRun, paths: dict[str, str], evidence: dict[str, Dataset]
    ) -> IngestResult:
        series = output_series_uid(run, "sr")
        count, latest = self._series_state(series)
        options = SROptions(
            series_uid=series,
            sop_uid=pydicom.uid.generate_uid(),
            instance_number=count + 1,
            predecessor=self._header(latest) if latest else None,
        )
        return self._store(build_sr(run, list(evidence.values()), options))

    def _write_key_image(
        self, run: ModelRun, paths: dict[str, str], evidence: dict[str, Dataset]
    ) -> IngestResult:
        finding = key_finding(run.findings)
        pixels = render_key_image(self.archive_dir, paths[finding.sop_instance_uid], run, finding)
        series = output_series_uid(run, "sc")
        count, _ = self._series_state(series)
        options = SCOptions(series, pydicom.uid.generate_uid(), count + 1)
        return self._store(
            build_key_image(run, finding, evidence[finding.sop_instance_uid], pixels, options)
        )

    def _header(self, path: str) -> Dataset:
        return with_type2(pydicom.dcmread(self.archive_dir / path, stop_before_pixels=True))

    def _series_state(self, series_uid: str) -> tuple[int, str]:
        """Return how many instances a series holds and the path of its latest one."""
        with self.db.read() as session:
            series_id = session.scalar(
                select(Series.id).where(Series.series_instance_uid == series_uid)
            )
            if series_id is None:
                return 0, ""
            count = session.scalar(
                select(func.count()).select_from(Instance).where(Instance.series_id == series_id)
            )
            latest = session.scalar(
                select(Instance.path)
                .where(Instance.series_id == series_id)
                .order_by(Instance.id.desc())
                .limit(1)
            )
        return int(count or 0), latest or ""

    def _store(self, ds: Dataset) -> IngestResult:
        data = encode(ds)
        header, _ = parse_instance(data)
        return self.ingestor.store(data, header, source=OUTPUTS_SOURCE)

    def _event(
        self,
        work: StudyWork,
        action: str,
        run: ModelRun,
        job_id: int | None,
        details: dict[str, Any],
    ) -> None:
        try:
            with self.db.write() as session:
                record_event(
                    session,
                    EventCategory.SYSTEM,
                    action,
                    actor=self.actor[:64],
                    source=OUTPUTS_SOURCE,
                    study_instance_uid=work.study_uid,
                    outcome="failure" if action.endswith("failed") else "success",
                    details={"model": run.ref, "job_id": job_id, **details},
                )
        except Exception:
            logger.exception("study %s: event %s not recorded", work.study_uid, action)
