"""The monitoring page (ML engineers and admins): drift, positive rates and agreement, charted."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from models.errors import TriageError
from worklist.reading.monitoring import Bucket, ModelReport, all_reports
from worklist.web import charts
from worklist.web.deps import (
    AuditDep,
    DbDep,
    ModelAdminPage,
    ModelsSettingsDep,
    WorklistSettingsDep,
)
from worklist.web.templating import render

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["pages"], include_in_schema=False)


def _charts(report: ModelReport) -> dict[str, object]:
    return {
        "histograms": {
            d.label: charts.histogram_chart(d.label, d.reference_histogram, d.current_histogram)
            for d in report.drift
        },
        "rates": charts.rate_chart(report.positive_rate),
        "agreement": charts.agreement_chart(
            report.agreement.rate, report.agreement.low, report.agreement.high
        ),
    }


@router.get("/admin/monitoring")
def monitoring_page(
    request: Request,
    principal: ModelAdminPage,
    db: DbDep,
    settings: WorklistSettingsDep,
    models: ModelsSettingsDep,
    audit: AuditDep,
    model: str = "",
    days: Annotated[int | None, Query(ge=1, le=365)] = None,
    bucket: Bucket = "day",
) -> Response:
    """Show every monitored model's alerts and one model's charts.

    The model shown is the one asked for, else the first with an alert, else the first.
    """
    error = ""
    reports: list[ModelReport] = []
    try:
        reports = all_reports(db, settings, models, days=days, bucket=bucket)
    except TriageError as exc:
        error = str(exc)
    chosen = next((r for r in reports if r.model == model), None)
    if chosen is None and model and not error:
        error = f"{model} made no finding in the window"
    if chosen is None:
        chosen = next((r for r in reports if r.alerts), reports[0] if reports else None)
    audit.record(
        "monitoring.view",
        actor=principal.user.username,
        source=principal.source,
        details={"models": [r.model for r in reports], "days": days, "via": "page"},
    )
    return render(
        request,
        "monitoring.html",
        principal,
        {
            "reports": reports,
            "chosen": chosen,
            "charts": _charts(chosen) if chosen else None,
            "days": days or settings.monitoring_window_days,
            "bucket": bucket,
            "settings": settings,
            "error": error,
        },
    )
