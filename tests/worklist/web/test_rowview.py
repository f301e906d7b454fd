"""A worklist row: DICOM dates and times for people, findings folded by threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders.rows import add_finding, set_study_datetime
from tests.builders.store import add_users, seed_study
from tests.builders.web import login, make_app
from worklist.db.engine import Database
from worklist.web.rowview import (
    dicom_date_text,
    dicom_datetime_text,
    dicom_time_text,
    row_findings,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("20261202", "2 Dec 2026"),
        ("19991231", "31 Dec 1999"),
        ("20240229", "29 Feb 2024"),
        ("2026.12.02", "2 Dec 2026"),  # ACR-NEMA
        (" 20260105 ", "5 Jan 2026"),
        ("", ""),
        ("   ", ""),
        (None, ""),
        ("20230229", "20230229"),  # no such day: shown as stored
        ("20261302", "20261302"),
        ("2026", "2026"),  # partial: shown as stored
        ("unknown", "unknown"),
    ],
)
def test_dicom_date_text(value: str | None, text: str) -> None:
    assert dicom_date_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("140502", "14:05"),
        ("140502.123456", "14:05"),
        ("1405", "14:05"),
        ("07", "07:00"),
        ("14:05:02", "14:05"),  # ACR-NEMA
        ("235960", "23:59"),  # leap second
        (" 0930 ", "09:30"),
        ("", ""),
        (None, ""),
        ("2505", "2505"),  # no such hour: shown as stored
        ("1460", "1460"),
        ("9", "9"),
        ("noon", "noon"),
    ],
)
def test_dicom_time_text(value: str | None, text: str) -> None:
    assert dicom_time_text(value) == text


@pytest.mark.parametrize(
    ("da", "tm", "text"),
    [
        ("20261202", "140502", "2 Dec 2026 14:05"),
        ("20261202", "", "2 Dec 2026"),
        ("", "140502", "14:05"),
        ("", "", ""),
        ("bad", "1405", "bad 14:05"),
    ],
)
def test_dicom_datetime_text(da: str, tm: str, text: str) -> None:
    assert dicom_datetime_text(da, tm) == text


def _finding(label: str, p: float, crossed: bool, model: str = "demo-cxr") -> dict[str, Any]:
    return {
        "label": label,
        "probability": p,
        "crossed": crossed,
        "model": {"name": model, "version": "1.0.0"},
    }


def test_row_shows_crossed_and_folds_the_rest() -> None:
    findings = [
        _finding("pneumothorax", 0.93, True),
        _finding("effusion", 0.61, True, model="other"),
        _finding("nodule", 0.30, False),
        _finding("cardiomegaly", 0.20, False),
        _finding("fracture", 0.05, False),
    ]
    row = row_findings(findings)
    assert [f["label"] for f in row["shown"]] == ["pneumothorax", "effusion"]
    assert [f["label"] for f in row["folded"]] == ["nodule", "cardiomegaly", "fracture"]
    assert row["folded_text"] == "+3 below threshold"
    assert row["models"] == ["demo-cxr 1.0.0", "other 1.0.0"]


def test_row_with_nothing_folded_or_nothing_shown() -> None:
    assert row_findings([_finding("pneumothorax", 0.9, True)])["folded_text"] == ""
    row = row_findings([_finding("nodule", 0.1, False)])
    assert (row["shown"], row["folded_text"], row["models"]) == (
        [],
        "+1 below threshold",
        ["demo-cxr 1.0.0"],
    )
    assert row_findings([]) == {"shown": [], "folded": [], "folded_text": "", "models": []}


def test_page_and_api_rows_fold_findings_and_format_dates(
    sqlite_db: Database, tmp_path: Path
) -> None:
    tokens = add_users(sqlite_db)
    uid = seed_study(sqlite_db, tmp_path / "archive", priority="P1", crossed=True)
    set_study_datetime(sqlite_db, uid, "20261202", "140502.25")
    for label, p in (("nodule", 0.31), ("effusion", 0.22), ("fracture", 0.04)):
        add_finding(sqlite_db, uid, label, p)
    with make_app(sqlite_db, tmp_path) as (app, _), TestClient(app) as client:
        item = client.get(
            "/api/v1/studies", headers={"Authorization": f"Bearer {tokens['radiologist']}"}
        ).json()["items"][0]
        assert item["study_datetime_text"] == "2 Dec 2026 14:05"
        assert item["folded_text"] == "+3 below threshold"
        assert item["finding_models"] == ["demo-cxr 1.0.0"]
        login(client, "radiologist")
        html = client.get("/").text
    row = html[html.index(f'data-uid="{uid}"') :]
    row = row[: row.index("</tr>")]
    assert "2 Dec 2026 14:05" in row
    shown, folded = row.split("<details", 1)
    assert "pneumothorax 0.93" in shown and "nodule" not in shown
    assert "+3 below threshold</summary>" in folded
    for text in ("nodule 0.31", "effusion 0.22", "fracture 0.04"):
        assert text in folded
    assert row.count("demo-cxr 1.0.0") == 1  # the model once per row
