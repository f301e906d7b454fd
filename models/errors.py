"""The project's one root error and the errors of the :mod:`models` package.

:class:`TriageError` lives in :mod:`models` because that package is the bottom of the import
order, so every other package can subclass it without an upward import.
"""

from __future__ import annotations

__all__ = [
    "CardError",
    "DatasetError",
    "ExportError",
    "InferenceTimeout",
    "IntegrityError",
    "InvalidOutput",
    "ModelError",
    "ModelNotFoundError",
    "PreprocessError",
    "RegistryStateError",
    "TriageError",
]


class TriageError(Exception):
    """Base class of every error raised by the project's domain code."""


class ModelError(TriageError):
    """Base class of the errors of the :mod:`models` package."""


class CardError(ModelError):
    """A model card is missing, not YAML, or does not follow the card schema.

    The message names the card file and the offending field.
    """


class DatasetError(ModelError):
    """A copy of a public dataset does not follow its published layout, or an option does not fit.

    A file, a column or a value is missing or malformed, or a label map or a split does not fit
    the dataset. The message names the file (and the column or line) that is missing or wrong.
    """


class IntegrityError(ModelError):
    """A model's ONNX file is missing or its sha256 differs from the card's."""


class ModelNotFoundError(ModelError):
    """No registered model has the requested name (and version)."""


class RegistryStateError(ModelError):
    """The registry's state file cannot be read or written."""


class PreprocessError(ModelError):
    """A DICOM dataset cannot be turned into the model's input tensor."""


class InferenceTimeout(ModelError):  # noqa: N818  (the name other packages use)
    """An inference call ran past its time limit and was terminated."""


class InvalidOutput(ModelError):  # noqa: N818  (the name other packages use)
    """A model produced outputs of the wrong shape, or values that are NaN or infinite."""


class ExportError(ModelError):
    """A network could not be exported to ONNX, or the export failed its parity check."""
