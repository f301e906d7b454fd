"""Production monitoring of models: score drift, positive rates per site, agreement, alerts.

For each model (``name@version``) seen in the store's findings within the last
``monitoring_window_days`` days (shadow findings included: watching a model in shadow is what
shadow is for):

* **Drift**, per label: the window's scores against the model's reference scores, by the PSI and
  the two-sample KS test (:mod:`worklist.reading.drift`). The reference is, in this order,

  1. ``reference_predictions.csv`` beside the model's card
     (``models_dir/<name>/<version>/``): a benchmark's ``predictions.csv`` copied there, of
     which the ``<label>_score`` columns are read (blank cells skipped);
  2. otherwise the model's own first ``monitoring_reference_days`` days in production (from its
     first finding in the store), when those days end before the window starts; otherwise there
     is no reference and drift is not judged.

  A label is judged once both samples hold ``monitoring_min_n`` scores; it raises an alert when
  its PSI exceeds ``monitoring_psi_bound`` or its KS p-value is below ``monitoring_ks_p_bound``.
* **Positive rate per site**, per UTC day (or ISO week): the share of the studies the model ran on
  where at least one of its findings crossed its threshold, with a Wilson 95% interval.
* **Agreement** with radiologists' feedback in the window: ``agree / (agree + disagree +
  missed)`` with a Wilson 95% interval. Feedback on a finding counts for that finding's model;
  feedback without a finding (and every ``missed``) counts for each model that ran on the study.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.errors import NotFound
from models.settings import ModelsSettings
from worklist.db.engine import Database
from worklist.db.schema import Feedback, Finding, Study
from worklist.db.types import utcnow
from worklist.reading import drift
from worklist.reading.drift import Alert, LabelDrift
from worklist.reading.reference import (
    REFERENCE_FILE,
    MonitoringRefError,
    ReferenceFileError,
    load_reference,
    split_ref,
)
from worklist.settings import WorklistSettings

__all__ = [
    "REFERENCE_FILE",
    "AgreementStats",
    "Bucket",
    "ModelReport",
    "MonitoringRefError",
    "NoFindingsError",
    "ReferenceFileError",
    "SiteRate",
    "all_reports",
    "load_reference",
    "model_report",
    "monitored_models",
]

logger = logging.getLogger(__name__)

Bucket = Literal["day", "week"]


class NoFindingsError(NotFound):
    """The model made no finding in the monitoring window."""


@dataclass(frozen=True)
class SiteRate:
    """The share of a site's studies in one period where the model found something."""

    site: str
    period: str
    studies: int
    positives: int
    rate: float | None
    low: float
    high: float


@dataclass(frozen=True)
class AgreementStats:
    """Radiologists' feedback on the model in the window."""

    agree: int
    disagree: int
    missed: int
    rate: float | None
    low: float
    high: float


@dataclass(frozen=True)
class ModelReport:
    """Everything monitoring shows of one model."""

    model: str
    since: str
    until: str
    window_days: int
    findings: int
    studies: int
    reference_source: str
    drift: list[LabelDrift]
    positive_rate: list[SiteRate]
    agreement: AgreementStats
    alerts: list[Alert]


def monitored_models(
    db: Database,
    settings: WorklistSettings,
    *,
    now: datetime | None = None,
    days: int | None = None,
) -> list[str]:
    """Return ``NAME@VERSION`` of every model with a finding in the window, sorted."""
    since = (now or utcnow()) - timedelta(days=days or settings.monitoring_window_days)
    with db.read() as session:
        rows = session.execute(
            select(Finding.model_name, Finding.model_version)
            .where(Finding.created_at >= since)
            .distinct()
        ).all()
    return sorted(f"{name}@{version}" for name, version in rows)


def _scores(
    session: Session, name: str, version: str, since: datetime, until: datetime
) -> dict[str, list[float]]:
    rows = session.execute(
        select(Finding.label, Finding.probability).where(
            Finding.model_name == name,
            Finding.model_version == version,
            Finding.created_at >= since,
            Finding.created_at < until,
        )
    ).all()
    scores: dict[str, list[float]] = defaultdict(list)
    for label, probability in rows:
        scores[label].append(float(probability))
    return dict(scores)


def _period(at: datetime, bucket: Bucket) -> str:
    if bucket == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    return at.date().isoformat()


def _site_rates(
    session: Session, name: str, version: str, since: datetime, until: datetime, bucket: Bucket
) -> tuple[list[SiteRate], int]:
    rows = session.execute(
        select(Finding.study_id, Study.site, Finding.crossed, Finding.created_at)
        .join(Study, Study.id == Finding.study_id)
        .where(
            Finding.model_name == name,
            Finding.model_version == version,
            Finding.created_at >= since,
            Finding.created_at < until,
        )
    ).all()
    studies: dict[int, tuple[str, str, bool]] = {}
    for study_id, site, crossed, at in rows:
        key = (site or "(unknown)", _period(at, bucket))
        known = studies.get(study_id)
        studies[study_id] = (*key, bool(crossed) or (known is not None and known[2]))
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for site, period, positive in studies.values():
        counts[(site, period)][0] += 1
        counts[(site, period)][1] += int(positive)
    rates = []
    for (site, period), (n, k) in sorted(counts.items()):
        rate, low, high = drift.wilson(k, n)
        rates.append(SiteRate(site, period, n, k, rate, low, high))
    return rates, len(studies)


def _agreement(
    session: Session, name: str, version: str, since: datetime, until: datetime
) -> AgreementStats:
    ran_on = (
        select(Finding.study_id)
        .where(Finding.model_name == name, Finding.model_version == version)
        .distinct()
    )
    linked = select(Finding.id).where(Finding.model_name == name, Finding.model_version == version)
    rows = session.execute(
        select(Feedback.kind, func.count())
        .where(
            Feedback.created_at >= since,
            Feedback.created_at < until,
            (Feedback.finding_id.in_(linked))
            | (Feedback.finding_id.is_(None) & Feedback.study_id.in_(ran_on)),
        )
        .group_by(Feedback.kind)
    ).all()
    counts = {str(kind): int(n) for kind, n in rows}
    agree, disagree, missed = (counts.get(k, 0) for k in ("agree", "disagree", "missed"))
    rate, low, high = drift.wilson(agree, agree + disagree + missed)
    return AgreementStats(agree, disagree, missed, rate, low, high)


def _reference(
    session: Session,
    settings: WorklistSettings,
    models: ModelsSettings,
    ref: str,
    window_start: datetime,
) -> tuple[dict[str, list[float]], str]:
    try:
        from_file = load_reference(models, ref)
    except ReferenceFileError as exc:
        logger.warning("monitoring %s without a reference: %s", ref, exc)
        return {}, f"none: {exc}"
    if from_file is not None:
        return from_file, f"file: {REFERENCE_FILE} beside the model's card"
    name, version = split_ref(ref)
    first = session.scalar(
        select(func.min(Finding.created_at)).where(
            Finding.model_name == name, Finding.model_version == version
        )
    )
    if first is None:
        return {}, "none"
    end = first + timedelta(days=settings.monitoring_reference_days)
    if end > window_start:
        return {}, (
            f"none: no {REFERENCE_FILE}, and the model's first "
            f"{settings.monitoring_reference_days} days in production overlap the window"
        )
    return _scores(session, name, version, first, end), (
        f"production: the model's first {settings.monitoring_reference_days} days "
        f"({first.date().isoformat()} to {end.date().isoformat()})"
    )


def model_report(
    db: Database,
    settings: WorklistSettings,
    models: ModelsSettings,
    ref: str,
    *,
    now: datetime | None = None,
    days: int | None = None,
    bucket: Bucket = "day",
) -> ModelReport:
    """Return the monitoring report of one model over the window ending ``now``.

    Parameters
    ----------
    db : worklist.db.engine.Database
        The store.
    settings : worklist.settings.WorklistSettings
        The ``monitoring_*`` settings.
    models : models.settings.ModelsSettings
        Where the reference files are.
    ref : str
        ``NAME@VERSION``.
    now : datetime, optional
        End of the window (default: now, UTC).
    days : int, optional
        Window length (default: ``monitoring_window_days``).
    bucket : {"day", "week"}, optional
        Period of the positive rates.

    Returns
    -------
    ModelReport
        Drift per label, positive rates per site and period, agreement, alerts.

    Raises
    ------
    MonitoringRefError
        ``ref`` is not ``NAME@VERSION``.
    NoFindingsError
        The model made no finding in the window.
    worklist.reading.drift.MonitoringUnavailableError
        scipy is not installed.
    """
    name, version = split_ref(ref)
    until = now or utcnow()
    window = days or settings.monitoring_window_days
    since = until - timedelta(days=window)
    with db.read() as session:
        current = _scores(session, name, version, since, until)
        if not current:
            raise NoFindingsError(f"{ref} made no finding in the last {window} days")
        reference, source = _reference(session, settings, models, ref, since)
        rates, n_studies = _site_rates(session, name, version, since, until, bucket)
        agreement = _agreement(session, name, version, since, until)
    labels: list[LabelDrift] = []
    alerts: list[Alert] = []
    for label in sorted(current):
        judged, raised = drift.judge(ref, label, reference.get(label, []), current[label], settings)
        labels.append(judged)
        alerts.extend(raised)
    for alert in alerts:
        logger.debug("drift alert: %s", alert.message)
    return ModelReport(
        model=ref,
        since=since.isoformat(),
        until=until.isoformat(),
        window_days=window,
        findings=sum(len(v) for v in current.values()),
        studies=n_studies,
        reference_source=source,
        drift=labels,
        positive_rate=rates,
        agreement=agreement,
        alerts=alerts,
    )


def all_reports(
    db: Database,
    settings: WorklistSettings,
    models: ModelsSettings,
    *,
    now: datetime | None = None,
    days: int | None = None,
    bucket: Bucket = "day",
) -> list[ModelReport]:
    """Return :func:`model_report` of every model of :func:`monitored_models`, by name.

    Raises
    ------
    worklist.reading.drift.MonitoringUnavailableError
        scipy is not installed.
    """
    until = now or utcnow()
    reports = []
    for ref in monitored_models(db, settings, now=until, days=days):
        try:
            reports.append(
                model_report(db, settings, models, ref, now=until, days=days, bucket=bucket)
            )
        except NoFindingsError:  # its findings were deleted meanwhile
            continue
    return reports
