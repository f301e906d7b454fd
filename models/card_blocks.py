"""The blocks a model card is made of: identity, applicability, input, preprocessing, outputs.

:mod:`models.card` assembles them into :class:`~models.card.ModelCard`; import them from there.
"""

from __future__ import annotations

import enum
import logging
import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Activation",
    "AppliesTo",
    "Category",
    "Concept",
    "DicomUid",
    "Evaluation",
    "Frozen",
    "Identity",
    "InputSpec",
    "Interpolation",
    "Label",
    "ModelStatus",
    "Normalisation",
    "NormalisationKind",
    "OutputSpec",
    "Outputs",
    "Preprocessing",
    "Resize",
    "Sha256",
    "Task",
    "ThresholdSource",
    "Window",
]

logger = logging.getLogger(__name__)

_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

Category = Literal["P1", "P2", "P3"]
"""The class a crossed label raises a study to: P1 urgent, P2 soon, P3 routine."""


def _check_uid(value: str) -> str:
    if len(value) > 64 or not _UID_RE.match(value):
        raise ValueError(
            "not a valid DICOM UID (digits and dots, no leading zeros, at most 64 characters)"
        )
    return value


def _check_sha256(value: str) -> str:
    value = value.lower()
    if not _SHA256_RE.match(value):
        raise ValueError("not a sha256 digest (64 hexadecimal digits)")
    return value


DicomUid = Annotated[str, AfterValidator(_check_uid)]
Sha256 = Annotated[str, AfterValidator(_check_sha256)]


class Task(enum.StrEnum):
    """What a model does. Only classification is supported today."""

    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"


class Activation(enum.StrEnum):
    """The function applied to a raw model output."""

    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"
    NONE = "none"


class Interpolation(enum.StrEnum):
    """How an image is resized to the model's input size."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    AREA = "area"


class NormalisationKind(enum.StrEnum):
    """How intensities are normalised after windowing."""

    MINMAX = "minmax"
    ZSCORE = "zscore"


class ModelStatus(enum.StrEnum):
    """Whether a model runs, and whether its findings count.

    ``shadow`` models run and record their findings, but the findings do not change priorities.
    """

    ENABLED = "enabled"
    DISABLED = "disabled"
    SHADOW = "shadow"


class Frozen(BaseModel):
    """Base of the card's blocks: immutable, and unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Identity(Frozen):
    """Algorithm identification (IHE AIR, DICOM TID 4019) plus the ONNX file's digest."""

    creator: str = Field(min_length=1)
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
    uid: DicomUid
    onnx_file: str = Field(min_length=1)
    sha256: Sha256

    @field_validator("onnx_file")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if Path(value).name != value or value in {".", ".."}:
            raise ValueError("must be a file name inside the model's directory, not a path")
        return value


class AppliesTo(Frozen):
    """Which images a model applies to. An empty list means any value."""

    modalities: tuple[str, ...] = Field(min_length=1)
    body_parts: tuple[str, ...] = ()
    view_positions: tuple[str, ...] = ()
    sop_classes: tuple[DicomUid, ...] = ()

    def matches(
        self,
        modality: str | None,
        body_part: str | None = None,
        view_position: str | None = None,
        sop_class_uid: str | None = None,
    ) -> bool:
        """Say whether an image with these attributes is one the model applies to.

        Parameters
        ----------
        modality, body_part, view_position, sop_class_uid
            The image's Modality, BodyPartExamined, ViewPosition and SOPClassUID; ``None``
            when absent. Comparison ignores case and surrounding blanks.

        Returns
        -------
        bool
            ``True`` when every non-empty criterion of the card contains the image's value.
        """

        def ok(allowed: tuple[str, ...], value: str | None) -> bool:
            if not allowed:
                return True
            if value is None:
                return False
            return value.strip().upper() in {a.strip().upper() for a in allowed}

        return (
            ok(self.modalities, modality)
            and ok(self.body_parts, body_part)
            and ok(self.view_positions, view_position)
            and ok(self.sop_classes, sop_class_uid)
        )


class InputSpec(Frozen):
    """The model's one input tensor."""

    name: str = Field(min_length=1)
    shape: tuple[int, int, int, int]
    layout: Literal["NCHW"] = "NCHW"
    dtype: Literal["float32"] = "float32"

    @field_validator("shape")
    @classmethod
    def _dims(cls, value: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        n, c, h, w = value
        if n == 0 or n < -1:
            raise ValueError("batch dimension must be positive or -1 (dynamic)")
        if c not in (1, 3):
            raise ValueError("channel dimension must be 1 (grey) or 3 (grey replicated)")
        if h <= 0 or w <= 0:
            raise ValueError("height and width must be positive")
        return value

    @property
    def channels(self) -> int:
        """Number of input channels."""
        return self.shape[1]

    @property
    def size(self) -> tuple[int, int]:
        """Input height and width."""
        return self.shape[2], self.shape[3]

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model requires, or ``None`` when the batch axis is dynamic."""
        return None if self.shape[0] == -1 else self.shape[0]


class Window(Frozen):
    """A forced VOI window (DICOM linear function) in modality-LUT output units."""

    center: float
    width: float = Field(gt=0)


class Resize(Frozen):
    """Resize to the input's height and width."""

    size: tuple[int, int]
    interpolation: Interpolation = Interpolation.BILINEAR

    @field_validator("size")
    @classmethod
    def _positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) <= 0:
            raise ValueError("height and width must be positive")
        return value


class Normalisation(Frozen):
    """Intensity normalisation of the [0, 1]-scaled image.

    ``minmax`` keeps the image in [0, 1]. ``zscore`` subtracts ``mean`` and divides by ``std``
    (in [0, 1] units); without them each image is standardised by its own mean and deviation.
    """

    kind: NormalisationKind = NormalisationKind.MINMAX
    mean: float | None = None
    std: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = self.mean is not None or self.std is not None
        if self.kind is NormalisationKind.MINMAX and given:
            raise ValueError("mean and std apply only to kind: zscore")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")
        return self


class Preprocessing(Frozen):
    """How DICOM pixels become the input tensor (see :mod:`models.preprocess`)."""

    modality_lut: bool = True
    voi_lut: bool = True
    window: Window | None = None
    invert_monochrome1: bool = True
    resize: Resize
    normalisation: Normalisation = Normalisation()


class OutputSpec(Frozen):
    """One output tensor of the ONNX graph and the activation applied to it."""

    name: str = Field(min_length=1)
    activation: Activation = Activation.SIGMOID


class Concept(Frozen):
    """A coded concept (e.g. SNOMED CT, scheme designator ``SCT``)."""

    scheme: str = Field(min_length=1)
    code: str = Field(min_length=1)
    meaning: str = Field(min_length=1)


class ThresholdSource(Frozen):
    """Where a label's threshold came from, when it was chosen on data.

    Written by ``triage models calibrate``: the dataset, split and images it was chosen on,
    when, and for what target.
    """

    method: str = Field(min_length=1)
    """How it was chosen, e.g. ``target_sensitivity``."""
    target_sensitivity: float | None = Field(default=None, gt=0.0, le=1.0)
    sensitivity: float | None = Field(default=None, ge=0.0, le=1.0)
    """The sensitivity the threshold gave on that data."""
    specificity: float | None = Field(default=None, ge=0.0, le=1.0)
    dataset: str = Field(min_length=1)
    layout: str = Field(min_length=1)
    split: str = Field(min_length=1)
    n: int = Field(ge=0)
    """Labelled images the threshold was chosen on."""
    n_positive: int = Field(ge=0)
    date: str = Field(min_length=1)
    """ISO 8601 date (UTC) of the calibration."""
    from_version: str | None = None
    """The model version whose card was copied."""
    n_left_out: int = Field(default=0, ge=0)
    """Images of the split left out as absent or unreadable (``--skip-bad-images``)."""


class Label(Frozen):
    """One finding the model scores."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    index: int = Field(ge=0)
    concept: Concept
    threshold: float = Field(ge=0.0, le=1.0)
    category: Category
    threshold_source: ThresholdSource | None = None
    """Where :attr:`threshold` came from when it was chosen on data; optional."""


class Outputs(Frozen):
    """The model's outputs: probabilities ``[N, L]`` and optional heatmaps ``[N, L, h, w]``."""

    probabilities: OutputSpec
    heatmap: OutputSpec | None = None
    labels: tuple[Label, ...]

    @field_validator("labels")
    @classmethod
    def _indices(cls, labels: tuple[Label, ...]) -> tuple[Label, ...]:
        if not labels:
            raise ValueError("at least one label is needed")
        indices = sorted(label.index for label in labels)
        if indices != list(range(len(labels))):
            raise ValueError(
                f"label indices must be unique and cover 0..{len(labels) - 1}; got {indices}"
            )
        names = [label.name for label in labels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"label names must be unique; repeated: {duplicates}")
        return tuple(sorted(labels, key=lambda label: label.index))

    @model_validator(mode="after")
    def _distinct_names(self) -> Self:
        if self.heatmap is not None and self.heatmap.name == self.probabilities.name:
            raise ValueError("heatmap and probabilities must be different outputs")
        return self


class Evaluation(BaseModel):
    """What is known of the model's performance; free-form beyond the named fields."""

    model_config = ConfigDict(frozen=True, extra="allow")

    auroc: dict[str, float] = Field(default_factory=dict)
    dataset: str | None = None
    parity_max_abs_diff: float | None = Field(default=None, ge=0)
