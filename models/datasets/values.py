"""Patient and acquisition values as the datasets spell them, folded into DICOM's terms."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum

__all__ = ["MAX_AGE", "Sex", "parse_age", "parse_sex", "parse_view"]

logger = logging.getLogger(__name__)


class Sex(StrEnum):
    """Patient sex as DICOM's Patient's Sex (0010,0040) spells it."""

    FEMALE = "F"
    MALE = "M"
    OTHER = "O"


_SEXES: Mapping[str, Sex] = {
    "F": Sex.FEMALE,
    "FEMALE": Sex.FEMALE,
    "M": Sex.MALE,
    "MALE": Sex.MALE,
    "O": Sex.OTHER,
    "OTHER": Sex.OTHER,
}

_VIEWS: Mapping[str, str] = {
    "POSTEROANTERIOR": "PA",
    "ANTEROPOSTERIOR": "AP",
    "AP_HORIZONTAL": "AP",
    "L": "LATERAL",
    "LAT": "LATERAL",
}

MAX_AGE = 120.0
"""Ages above this are treated as unknown (NIH ChestX-ray14 has a few in the hundreds)."""


def parse_sex(value: str | None) -> Sex | None:
    """Return the sex of ``M``/``F``/``O``/``Male``/``Female``; ``None`` for anything else.

    Parameters
    ----------
    value
        The dataset's value.

    Returns
    -------
    Sex or None
        The sex, or ``None`` for unknown or empty.
    """
    if value is None:
        return None
    return _SEXES.get(value.strip().upper())


def parse_age(value: str | None) -> float | None:
    """Return an age in years from ``58``, ``58.0``, ``058Y``, ``006M``, ``010W`` or ``003D``.

    Parameters
    ----------
    value
        The dataset's value (a number of years, or a DICOM Age String).

    Returns
    -------
    float or None
        Years, or ``None`` for an empty, malformed or implausible (> 120 years) value.
    """
    text = (value or "").strip().upper()
    scale = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}.get(text[-1:])
    if scale is not None:
        text = text[:-1]
    try:
        years = float(text) * (1.0 if scale is None else scale)
    except ValueError:
        return None
    if not 0.0 <= years <= MAX_AGE:
        logger.debug("age %r is implausible; treated as unknown", value)
        return None
    return years


def parse_view(value: str | None) -> str | None:
    """Return a view position in DICOM's terms (``PA``, ``AP``, ``LATERAL``, ``LL``...).

    Parameters
    ----------
    value
        The dataset's value (``PA``, ``POSTEROANTERIOR``, ``L``, ``AP_horizontal``...).

    Returns
    -------
    str or None
        The upper-cased view, with the datasets' synonyms folded; ``None`` for empty.
    """
    text = (value or "").strip().upper()
    if not text:
        return None
    return _VIEWS.get(text, text)
