"""JSON API of production monitoring (ML engineers and admins): drift, positive rates, agreement.

The numbers are those of :mod:`worklist.reading.monitoring`; the monitoring page shows the same.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from worklist.reading.monitoring import Bucket, all_reports, model_report
from worklist.web.deps import AuditDep, DbDep, ModelAdminApi, ModelsSettingsDep, WorklistSettingsDep
from worklist.web.errors import API_ERRORS

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"], responses=API_ERRORS)

Days = Annotated[int | None, Query(ge=1, le=365, description="Window; default: the setting.")]


@router.get("/models")
def monitored(
    principal: ModelAdminApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    models: ModelsSettingsDep,
    audit: AuditDep,
    days: Days = None,
) -> dict[str, Any]:
    """Every model with findings in the window: counts, reference and drift alerts."""
    reports = all_reports(db, settings, models, days=days)
    audit.record(
        "monitoring.view",
        actor=principal.user.username,
        source=principal.source,
        details={"models": [r.model for r in reports], "days": days, "via": "api"},
    )
    return {
        "window_days": days or settings.monitoring_window_days,
        "models": [
            {
                "model": r.model,
                "findings": r.findings,
                "studies": r.studies,
                "reference_source": r.reference_source,
                "alerts": [asdict(a) for a in r.alerts],
            }
            for r in reports
        ],
    }


@router.get("/models/{model}")
def report(
    model: str,
    principal: ModelAdminApi,
    db: DbDep,
    settings: WorklistSettingsDep,
    models: ModelsSettingsDep,
    audit: AuditDep,
    days: Days = None,
    bucket: Bucket = "day",
) -> dict[str, Any]:
    """One model (``NAME@VERSION``): drift per label, positive rate per site, agreement, alerts.

    404 if the model made no finding in the window; 503 without scipy.
    """
    result = model_report(db, settings, models, model, days=days, bucket=bucket)
    audit.record(
        "monitoring.view",
        actor=principal.user.username,
        source=principal.source,
        details={"models": [model], "days": days, "via": "api"},
    )
    return asdict(result)
