"""Label maps: which of a dataset's findings stand for which of a model card's labels.

A map is data: ``labels.yaml`` beside this module has one section per dataset layout, each
``{card label: [dataset finding names]}``. A card label with several names is positive when any
of them is; a card label missing from a section is one the dataset does not annotate, and
records leave it out rather than calling it negative. Another card (other label names) brings
its own YAML file of the same form.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from models.errors import DatasetError

__all__ = ["LABEL_MAPS", "LabelMap", "Uncertainty", "load_label_map"]

logger = logging.getLogger(__name__)

LABEL_MAPS = "labels.yaml"
"""The packaged label maps (package data of :mod:`models.datasets`)."""


class Uncertainty(StrEnum):
    """What an uncertain finding (code -1: CheXpert's labeller, split votes) becomes."""

    IGNORE = "ignore"
    """Unknown (``None``): left out of that label's statistics."""
    NEGATIVE = "negative"
    """Negative (0), CheXpert's U-Zeros."""
    POSITIVE = "positive"
    """Positive (1), CheXpert's U-Ones."""


_UNCERTAIN_AS: Mapping[Uncertainty, int | None] = {
    Uncertainty.IGNORE: None,
    Uncertainty.NEGATIVE: 0,
    Uncertainty.POSITIVE: 1,
}


@dataclass(frozen=True)
class LabelMap:
    """Dataset finding names for each card label of one dataset.

    Attributes
    ----------
    dataset
        The layout name.
    sources
        ``{card label: (dataset finding names, ...)}``, in the card's order.
    origin
        Where the map was read from (for messages).
    """

    dataset: str
    sources: Mapping[str, tuple[str, ...]]
    origin: str = "<dict>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def targets(self) -> tuple[str, ...]:
        """The card labels this dataset annotates."""
        return tuple(self.sources)

    def apply(
        self, findings: Mapping[str, int] | None, uncertainty: Uncertainty
    ) -> dict[str, int | None]:
        """Return the card labels of one image from its dataset findings.

        Parameters
        ----------
        findings
            ``{finding: 1, 0 or -1}``; a finding not mentioned is absent (negative). ``None``
            for an image without labels: every card label is then unknown.
        uncertainty
            What -1 becomes.

        Returns
        -------
        dict
            ``{card label: 1, 0 or None}``: 1 when any source finding is positive (after the
            uncertainty policy), else ``None`` when any is unknown, else 0.
        """
        if findings is None:
            return dict.fromkeys(self.sources)
        out: dict[str, int | None] = {}
        for target, names in self.sources.items():
            values = [_resolve(findings.get(name), uncertainty) for name in names]
            out[target] = 1 if 1 in values else (None if None in values else 0)
        return out


def _resolve(code: int | None, uncertainty: Uncertainty) -> int | None:
    if code == 1:
        return 1
    if code == -1:
        return _UNCERTAIN_AS[uncertainty]
    return 0


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DatasetError(f"{where}: expected a finding name or a list of them, not {value!r}")
    return tuple(value)


def load_label_map(
    dataset: str,
    path: Path | str | None = None,
    *,
    vocabulary: Collection[str] | None = None,
) -> LabelMap:
    """Load the label map of one dataset from the packaged ``labels.yaml`` or a YAML file.

    Parameters
    ----------
    dataset
        The layout name: the section to read.
    path
        A YAML file ``{dataset: {card label: [finding names]}}``; ``None`` for the packaged one.
    vocabulary
        The dataset's finding names; a name outside it is refused (it would never match).

    Returns
    -------
    LabelMap
        The map.

    Raises
    ------
    DatasetError
        For a missing or malformed file, a missing section or an unknown finding name; the
        message names the file, the dataset and the card label.
    """
    if path is None:
        origin = f"models.datasets/{LABEL_MAPS}"
        text = resources.files("models.datasets").joinpath(LABEL_MAPS).read_text("utf-8")
    else:
        origin = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise DatasetError(f"label map {origin} cannot be read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DatasetError(f"label map {origin} is not YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(dataset), dict):
        raise DatasetError(f"label map {origin}: no section {dataset!r} of card labels")
    sources: dict[str, tuple[str, ...]] = {}
    for target, value in data[dataset].items():
        where = f"label map {origin}: {dataset}.{target}"
        names = _names(value, where)
        unknown = sorted(set(names) - set(vocabulary)) if vocabulary is not None else []
        if unknown:
            raise DatasetError(f"{where}: {unknown} are not findings of {dataset}")
        sources[str(target)] = names
    return LabelMap(dataset, sources, origin)
