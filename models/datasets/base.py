"""What every dataset reader shares: the record, the options, the reader and its checks.

Readers are pure: they read a copy of a public dataset in its published layout and yield one
:class:`Record` per image. They import nothing heavy at module level (``pydicom`` is imported by
:mod:`models.datasets.dicom_header` when a DICOM header is read), so a command line can list
:data:`models.datasets.READERS` cheaply.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from models.datasets.dicom_header import DicomHeader, read_header
from models.datasets.labelmap import LabelMap, Uncertainty, load_label_map
from models.datasets.values import Sex
from models.errors import DatasetError

__all__ = [
    "ALL",
    "OFFICIAL",
    "DatasetReader",
    "ImageCheck",
    "LeftOut",
    "Missing",
    "ReadOptions",
    "Record",
    "Sex",
    "first_file",
]

logger = logging.getLogger(__name__)

ALL = "all"
"""``split=ALL``: every image of the copy, whatever its official split."""

OFFICIAL = "official"
"""``split=OFFICIAL``: the dataset's official evaluation split (its test or validation set)."""

Missing = Literal["error", "skip"]
"""What a reader does when an image named by the labels is not on disk."""


@dataclass(frozen=True)
class Record:
    """One image of a public dataset, with its labels mapped to a model card's label names.

    Attributes
    ----------
    dataset
        The layout name (a key of :data:`models.datasets.READERS`).
    image_id
        The dataset's own identifier of the image (file name, dicom_id, patientId...).
    image
        Path of the image file (PNG, JPEG or DICOM).
    patient
        The patient key, for patient-clustered statistics and patient-wise splits. Where a
        dataset has no patient identifier (VinDr-CXR), the image is its own patient.
    study
        The study key where the dataset has one.
    labels
        ``{card label: 1, 0 or None}`` for every card label the dataset's label map covers;
        ``None`` means unknown (unlabelled, or uncertain under ``Uncertainty.IGNORE``). A card
        label the dataset does not annotate is absent, never 0.
    findings
        The dataset's own findings as coded in its files: 1 positive, 0 negative, -1 uncertain;
        a finding not mentioned is absent. Empty when the image has no labels at all.
    sex, age, view, site
        Patient sex, age in years, view position (``PA``, ``AP``, ``LATERAL``...) and acquiring
        site where the dataset has them, else ``None``.
    split
        The official split the image belongs to (``train``, ``test``...), ``None`` where the
        dataset has none or the copy lacks the split files.
    """

    dataset: str
    image_id: str
    image: Path
    patient: str
    study: str | None
    labels: Mapping[str, int | None] = field(hash=False)
    findings: Mapping[str, int] = field(hash=False)
    sex: Sex | None = None
    age: float | None = None
    view: str | None = None
    site: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "findings", MappingProxyType(dict(self.findings)))


@dataclass(frozen=True)
class ReadOptions:
    """The options a reader module receives (validated by :meth:`DatasetReader.read`).

    Attributes
    ----------
    split
        ``"all"``, or the name of one official split (``"official"`` already resolved).
    uncertainty
        What an uncertain finding (code -1) becomes in :attr:`Record.labels`.
    label_map
        Dataset finding names to card label names.
    missing
        ``"error"``: an image named by the labels but absent, or a DICOM image whose header
        cannot be read, raises :class:`DatasetError`; ``"skip"``: it is left out, counted in a
        warning and appended to ``left_out``.
    left_out
        Where the images left out are listed (``None``: counted only).
    """

    split: str
    uncertainty: Uncertainty
    label_map: LabelMap
    missing: Missing = "error"
    left_out: list[LeftOut] | None = field(default=None, compare=False)

    def wants(self, split: str | None) -> bool:
        """Return whether an image of official split ``split`` is asked for."""
        return self.split == ALL or split == self.split


ReadFunction = Callable[[Path, ReadOptions], Iterator[Record]]


@dataclass(frozen=True)
class DatasetReader:
    """A reader of one public dataset's published layout.

    Attributes
    ----------
    name
        The layout name (``nih``, ``chexpert``...).
    title
        The dataset's name as its authors publish it.
    function
        The module's reading function.
    splits
        Names of the official splits, in the dataset's own words; empty where it has none.
    evaluation_split
        The split ``split="official"`` selects; ``None`` where the dataset has none.
    uncertain
        Whether the labels carry uncertainty (code -1) that :class:`Uncertainty` resolves.
    vocabulary
        The dataset's finding names, against which a label map is checked; ``None`` for an open
        vocabulary (PadChest).
    """

    name: str
    title: str
    function: ReadFunction
    splits: tuple[str, ...] = ()
    evaluation_split: str | None = None
    uncertain: bool = False
    vocabulary: tuple[str, ...] | None = None

    def label_map(self, path: Path | str | None = None) -> LabelMap:
        """Load this dataset's label map (the packaged one, or a YAML file of the same form).

        Parameters
        ----------
        path
            A YAML file with a section named :attr:`name`; ``None`` for the packaged map.

        Returns
        -------
        LabelMap
            The map, checked against :attr:`vocabulary`.
        """
        return load_label_map(self.name, path, vocabulary=self.vocabulary)

    def read(
        self,
        root: Path | str,
        *,
        split: str = ALL,
        uncertainty: Uncertainty | str = Uncertainty.IGNORE,
        label_map: LabelMap | None = None,
        missing: Missing = "error",
        left_out: list[LeftOut] | None = None,
    ) -> Iterator[Record]:
        """Read a copy of the dataset, one :class:`Record` per image, in the files' order.

        The files are opened, their columns checked and the first record read before this
        returns; a later missing image or unreadable DICOM header raises while iterating.

        Parameters
        ----------
        root
            The dataset's folder as released (the one holding its labels files).
        split
            ``"all"``, ``"official"`` (the evaluation split) or one of :attr:`splits`.
        uncertainty
            ``ignore`` (uncertain labels become ``None``), ``negative`` or ``positive``; has no
            effect on datasets without uncertainty.
        label_map
            Finding names to card label names; ``None`` for the packaged map.
        missing
            ``"error"`` or ``"skip"`` for images named by the labels but absent, and for DICOM
            images whose header cannot be read.
        left_out
            With ``missing="skip"``, a list the images left out are appended to (a
            :class:`LeftOut` each, as the records are iterated).

        Returns
        -------
        Iterator[Record]
            The records.

        Raises
        ------
        DatasetError
            For a missing folder, file or column, a malformed value, or an unknown split.
        """
        folder = Path(root)
        if not folder.is_dir():
            raise DatasetError(f"{self.title}: dataset folder {folder} does not exist")
        options = ReadOptions(
            split=self._split(split),
            uncertainty=_uncertainty(uncertainty),
            label_map=label_map if label_map is not None else self.label_map(),
            missing=_missing(missing),
            left_out=left_out,
        )
        records = self.function(folder, options)
        first = next(records, None)  # opens the files and checks their columns now
        return iter(()) if first is None else itertools.chain((first,), records)

    def _split(self, split: str) -> str:
        if split == ALL:
            return ALL
        if split == OFFICIAL:
            if self.evaluation_split is None:
                raise DatasetError(f"{self.title} has no official split; use split='all'")
            return self.evaluation_split
        if split not in self.splits:
            known = ", ".join((ALL, OFFICIAL, *self.splits))
            raise DatasetError(f"{self.title}: split must be one of {known}, not {split!r}")
        return split


def _uncertainty(value: Uncertainty | str) -> Uncertainty:
    try:
        return Uncertainty(value)
    except ValueError:
        known = ", ".join(member.value for member in Uncertainty)
        raise DatasetError(f"uncertainty must be one of {known}, not {value!r}") from None


def _missing(value: str) -> Missing:
    if value == "error":
        return "error"
    if value == "skip":
        return "skip"
    raise DatasetError(f"missing must be 'error' or 'skip', not {value!r}")


def first_file(root: Path, names: Sequence[str], title: str) -> Path:
    """Return the first of ``names`` that exists under ``root``.

    Parameters
    ----------
    root
        The dataset folder.
    names
        Relative paths, preferred first (e.g. ``x.csv.gz`` then ``x.csv``).
    title
        The dataset's name, for the error message.

    Returns
    -------
    pathlib.Path
        The file.

    Raises
    ------
    DatasetError
        When none exists; the message names every candidate.
    """
    for name in names:
        path = root / name
        if path.is_file():
            return path
    wanted = " or ".join(names)
    raise DatasetError(f"{title}: file {wanted} not found in {root}")


_SKIP_HINT = (
    "to leave such images out: missing='skip', or triage models benchmark --skip-bad-images"
)


@dataclass(frozen=True)
class LeftOut:
    """An image a reader or a benchmark left out, and why.

    Attributes
    ----------
    image
        The image's path.
    reason
        ``absent`` (named by the labels, not on disk) or ``unreadable``.
    detail
        The error, in words.
    """

    image: Path
    reason: Literal["absent", "unreadable"]
    detail: str


class ImageCheck:
    """Checks that images exist and reads DICOM headers, raising or skipping as asked.

    Parameters
    ----------
    title
        The dataset's title (for messages).
    source
        The labels file that names the images.
    options
        The reader's options: ``missing`` and ``left_out``.
    """

    def __init__(self, title: str, source: Path, options: ReadOptions) -> None:
        self.title, self.source, self.missing = title, source, options.missing
        self.sink = options.left_out
        self.skipped = 0

    def _skip(self, image: Path, reason: Literal["absent", "unreadable"], detail: str) -> None:
        self.skipped += 1
        if self.sink is not None:
            self.sink.append(LeftOut(image, reason, detail))

    def __call__(self, image: Path) -> bool:
        """Return whether ``image`` exists; raise for a missing one unless skipping."""
        if image.is_file():
            return True
        if self.missing == "error":
            raise DatasetError(
                f"{self.title}: image {image} named in {self.source} does not exist ({_SKIP_HINT})"
            )
        self._skip(image, "absent", f"named in {self.source.name}, not found")
        return False

    def header(self, image: Path) -> DicomHeader | None:
        """Return a DICOM image's header; ``None`` (skipped) when unreadable and skipping."""
        try:
            return read_header(image)
        except DatasetError as exc:
            if self.missing == "error":
                raise DatasetError(f"{exc} ({_SKIP_HINT})") from exc
            self._skip(image, "unreadable", str(exc))
            return None

    def report(self) -> None:
        """Log how many images were left out."""
        if self.skipped:
            logger.warning(
                "%s: %d images named in %s are absent or unreadable and were skipped",
                self.title,
                self.skipped,
                self.source,
            )
