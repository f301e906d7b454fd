"""What a worklist row shows: DICOM dates and times for people, findings folded by threshold.

Pure functions over strings and finding documents (:func:`worklist.web.serialize.finding_doc`),
shared by the server-rendered page and the JSON API that ``worklist.js`` renders on refresh.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

__all__ = ["dicom_date_text", "dicom_datetime_text", "dicom_time_text", "row_findings"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# DA is YYYYMMDD; ACR-NEMA (and some old modalities) wrote YYYY.MM.DD.
_DA = re.compile(r"(\d{4})\.?(\d{2})\.?(\d{2})")
# TM is HH[MM[SS[.F{1,6}]]]; ACR-NEMA wrote HH:MM:SS.
_TM = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.\d{0,6})?)?)?")


def dicom_date_text(value: str | None) -> str:
    """Return a DICOM DA value as ``2 Dec 2026``.

    Parameters
    ----------
    value
        ``YYYYMMDD`` (or the old ``YYYY.MM.DD``), possibly padded with spaces.

    Returns
    -------
    str
        The date for people; ``""`` for a blank value; the stripped value itself when it is not
        a valid date (an odd value is shown, never hidden or guessed at).
    """
    text = (value or "").strip()
    match = _DA.fullmatch(text)
    if match is None:
        return text
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return text
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def dicom_time_text(value: str | None) -> str:
    """Return a DICOM TM value as ``14:05`` (hours and minutes).

    Parameters
    ----------
    value
        ``HH``, ``HHMM``, ``HHMMSS`` or ``HHMMSS.FFFFFF`` (or the old ``HH:MM:SS``), possibly
        padded with spaces.

    Returns
    -------
    str
        ``HH:MM`` (``HH:00`` when only the hour is known); ``""`` for a blank value; the stripped
        value itself when it is not a valid time.
    """
    text = (value or "").strip()
    match = _TM.fullmatch(text)
    if match is None:
        return text
    hour, minute = int(match[1]), int(match[2] or 0)
    second = int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second is valid TM
        return text
    return f"{hour:02d}:{minute:02d}"


def dicom_datetime_text(study_date: str | None, study_time: str | None) -> str:
    """Return a study's date and time for people, e.g. ``2 Dec 2026 14:05``.

    Parameters
    ----------
    study_date
        The DA value (Study Date).
    study_time
        The TM value (Study Time).

    Returns
    -------
    str
        Date and time joined by a space; either alone when the other is blank; ``""`` when both
        are blank.
    """
    parts = (dicom_date_text(study_date), dicom_time_text(study_time))
    return " ".join(p for p in parts if p)


def row_findings(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """Split a study's findings into those shown on its row and those folded behind a count.

    Parameters
    ----------
    findings
        Finding documents (``label``, ``probability``, ``crossed``, ``model``), most probable
        first.

    Returns
    -------
    dict
        ``shown``: the findings above their threshold (``crossed``); ``folded``: the others;
        ``folded_text``: ``"+3 below threshold"`` (``""`` when none is folded); ``models``: each
        model once, as ``"name version"``, in order of first appearance.
    """
    shown = [f for f in findings if f.get("crossed")]
    folded = [f for f in findings if not f.get("crossed")]
    models: list[str] = []
    for f in findings:
        model = f.get("model") or {}
        name = " ".join(str(model.get(k) or "") for k in ("name", "version")).strip()
        if name and name not in models:
            models.append(name)
    return {
        "shown": shown,
        "folded": folded,
        "folded_text": f"+{len(folded)} below threshold" if folded else "",
        "models": models,
    }
