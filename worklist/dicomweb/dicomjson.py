"""DICOM JSON (PS3.18 F.2) elements built from stored values, and attribute names to tags."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

from worklist.dicomweb.errors import WrongQueryError

__all__ = ["DicomJson", "element", "parse_tag", "tag_key"]

logger = logging.getLogger(__name__)

DicomJson = dict[str, Any]
"""One dataset in the DICOM JSON model: ``{"0020000D": {"vr": "UI", "Value": [...]}}``."""

_INT_VRS = frozenset({"IS", "US", "UL", "SS", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"DS", "FL", "FD"})


def tag_key(tag: int) -> str:
    """Return a tag as DICOM JSON writes it (eight upper-case hex digits)."""
    return f"{tag:08X}"


def parse_tag(name: str) -> int:
    """Return the tag of a keyword (``StudyDate``) or of eight hex digits (``00080020``).

    Raises
    ------
    WrongQueryError
        If ``name`` is neither a known keyword nor a tag.
    """
    tag = tag_for_keyword(name)
    if tag is not None:
        return int(tag)
    if len(name) == 8:
        try:
            return int(name, 16)
        except ValueError:
            pass
    raise WrongQueryError(f"{name!r} is neither a DICOM keyword nor a tag")


def _number(vr: str, text: str) -> int | float | str:
    try:
        return int(text) if vr in _INT_VRS else float(text)
    except ValueError:
        logger.info("tolerated: %s value %r is not a number; sent as text", vr, text)
        return text


@cache
def _vr(tag: int) -> str:
    return dictionary_VR(tag).split(" ")[0]


def element(tag: int, value: str | int | Iterable[str] | None) -> dict[str, Any]:
    """Return one DICOM JSON element of ``tag`` (its VR from the data dictionary).

    Parameters
    ----------
    tag
        The attribute.
    value
        A stored value: text (several values separated by backslashes), a number, a list of
        texts, or ``None``/``""`` for an empty (Type 2) element.

    Returns
    -------
    dict
        ``{"vr": VR}`` or ``{"vr": VR, "Value": [...]}``.
    """
    vr = _vr(tag)
    if value is None or value == "":
        return {"vr": vr}
    if isinstance(value, int):
        return {"vr": vr, "Value": [value]}
    texts = value.split("\\") if isinstance(value, str) else list(value)
    texts = [t for t in texts if t != ""]
    if not texts:
        return {"vr": vr}
    if vr == "PN":
        return {"vr": vr, "Value": [{"Alphabetic": t} for t in texts]}
    if vr in _INT_VRS or vr in _FLOAT_VRS:
        return {"vr": vr, "Value": [_number(vr, t.strip()) for t in texts]}
    return {"vr": vr, "Value": texts}
