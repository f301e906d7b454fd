"""The evaluation's result: typed objects, ``report.json`` (versioned schema) and ``report.html``.

``report.json`` follows the JSON Schema shipped beside this module (``report.schema.json``,
draft 2020-12); :data:`SCHEMA_VERSION` is its version (major: incompatible change, minor: new
optional content). Undefined estimates are ``null`` with a ``reason`` (never NaN, which JSON does
not have). The document is deterministic: the same inputs and seed give the same bytes; it holds
no time unless the caller passes one (:attr:`Provenance.created_at`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from models.evaluation.auroc import AurocResult
from models.evaluation.calibration import Calibration
from models.evaluation.estimates import Proportion
from models.evaluation.operating_points import Curve, OperatingPoint
from models.evaluation.subgroups import SubgroupResult

__all__ = [
    "SCHEMA_VERSION",
    "LabelResult",
    "Provenance",
    "Report",
    "Settings",
    "Throughput",
    "load_schema",
    "validate_document",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1.1"
SCHEMA_FILE = "report.schema.json"


@dataclass(frozen=True)
class Provenance:
    """What was evaluated, as the caller states it (all optional, all copied verbatim).

    Attributes
    ----------
    model, model_version, model_sha256 : str or None
        The model's identity (name, version, sha256 of its ONNX file).
    dataset, layout, split : str or None
        The dataset (e.g. its folder name), its layout (``nih``, ``chexpert``, ...), the split.
    created_at : str or None
        A time stamp, only when the caller passes one (the evaluation never reads the clock).
    left_out_absent, left_out_unreadable : int
        Images of the split left out before the evaluation: named by the labels but absent,
        or unreadable (schema 1.1).
    """

    model: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    dataset: str | None = None
    layout: str | None = None
    split: str | None = None
    created_at: str | None = None
    left_out_absent: int = 0
    left_out_unreadable: int = 0


@dataclass(frozen=True)
class Settings:
    """How the statistics were computed (written to the report so that it can be rerun)."""

    seed: int
    replicates: int
    confidence: float
    min_count: int
    ece_bins: int
    sensitivity_targets: tuple[float, ...]
    threshold_source: str
    max_curve_points: int
    age_bands: tuple[str, ...]


@dataclass(frozen=True)
class Throughput:
    """Speed of the run that produced the predictions, measured by the caller.

    Attributes
    ----------
    images_per_s : float
        Images per second of the benchmark's pipeline (decode, preprocess, inference).
    bare_images_per_s : float or None
        Images per second of a bare ONNX Runtime session on the same machine and tensors.
    provider : str or None
        The ONNX Runtime execution provider used.
    batch_size : int or None
        Images per inference call.
    images : int or None
        Images timed.
    share_of_bare : float or None
        ``images_per_s / bare_images_per_s`` (computed).
    """

    images_per_s: float
    bare_images_per_s: float | None = None
    provider: str | None = None
    batch_size: int | None = None
    images: int | None = None
    share_of_bare: float | None = field(init=False)

    def __post_init__(self) -> None:
        share = None
        if self.bare_images_per_s:
            share = float(self.images_per_s) / float(self.bare_images_per_s)
        object.__setattr__(self, "share_of_bare", share)


@dataclass(frozen=True)
class LabelResult:
    """Every statistic of one label.

    Attributes
    ----------
    name : str
        The label (the card's label name).
    n, n_positive, n_negative, n_patients : int
        Labelled images (images whose label is unknown or ignored are left out), by class,
        and their patients.
    prevalence : Proportion
        Positive fraction with its Wilson interval.
    auroc : AurocResult
        AUROC with the patient-clustered bootstrap and DeLong intervals.
    operating_points : tuple of OperatingPoint
        At the given threshold, then at the thresholds giving each target sensitivity.
    calibration : Calibration
        ECE, Brier score, reliability diagram.
    roc, pr : Curve
        ROC and precision-recall curves.
    subgroups : tuple of SubgroupResult
        The metrics by sex, age band, view position, site (as given).
    """

    name: str
    n: int
    n_positive: int
    n_negative: int
    n_patients: int
    prevalence: Proportion
    auroc: AurocResult
    operating_points: tuple[OperatingPoint, ...]
    calibration: Calibration
    roc: Curve
    pr: Curve
    subgroups: tuple[SubgroupResult, ...]


@dataclass(frozen=True)
class Report:
    """The evaluation of one model on one dataset: what ``report.json`` holds.

    Attributes
    ----------
    provenance : Provenance
        The model and dataset, as the caller stated them.
    settings : Settings
        The seed and the parameters of the methods.
    n_images, n_patients : int
        Images and patients evaluated.
    labels : tuple of LabelResult
        One per label, in the order given.
    throughput : Throughput or None
        Speed, when the caller measured it.
    schema_version : str
        Version of ``report.schema.json`` the document follows.
    """

    provenance: Provenance
    settings: Settings
    n_images: int
    n_patients: int
    labels: tuple[LabelResult, ...]
    throughput: Throughput | None = None
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Convert the report to plain JSON values (``schema_version`` first).

        Returns
        -------
        dict
            What :meth:`to_json` serialises.
        """
        body = asdict(self)
        return {"schema_version": body.pop("schema_version"), **body}

    def to_json(self) -> str:
        """Serialise the report as ``report.json``'s text: indented, deterministic, no NaN.

        Returns
        -------
        str
            The JSON document, ending in a newline.
        """
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``report.json`` (validated against the schema first) and ``report.html``.

        Parameters
        ----------
        directory : Path
            Created when missing.

        Returns
        -------
        tuple of Path
            The JSON and HTML files.
        """
        from models.evaluation.render import render_html  # matplotlib only when writing

        text = self.to_json()
        validate_document(json.loads(text))
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / "report.json"
        html_path = directory / "report.html"
        json_path.write_text(text, encoding="utf-8")
        html_path.write_text(render_html(self), encoding="utf-8")
        logger.info("wrote %s and %s", json_path, html_path)
        return json_path, html_path


def load_schema() -> dict[str, Any]:
    """Load the JSON Schema of ``report.json`` (the package data file ``report.schema.json``).

    Returns
    -------
    dict
        The schema.
    """
    text = resources.files("models.evaluation").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_document(document: Any) -> None:
    """Raise :class:`jsonschema.ValidationError` unless ``document`` follows the schema.

    Parameters
    ----------
    document : Any
        A parsed ``report.json``.
    """
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(document)
