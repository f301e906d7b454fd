"""The project's one root error, the classes that say what went wrong, and :mod:`models`' errors.

:class:`TriageError` lives in :mod:`models` because that package is the bottom of the import
order, so every other package can subclass it without an upward import.

What went wrong is said by one of five *meaning* classes, each a :class:`TriageError`:

* :class:`NotFound`: the thing asked for does not exist (no such study, user, model);
* :class:`Conflict`: it exists, but its state does not allow the request (already claimed);
* :class:`Forbidden`: this user may not do this to it;
* :class:`Invalid`: the request or the data is malformed (a bad name, UID, card, rule file);
* :class:`Unavailable`: a resource the request needs cannot be used now (registry, disk, peer,
  a model that failed).

Every concrete error subclasses at most one of them, beside its package's base class (for
example ``class ModelNotFoundError(ModelError, NotFound)``), so callers choose behaviour by class,
never by message text; the web app maps the meaning to an HTTP status in one place
(:mod:`worklist.web.errors`). Where one family covers several meanings, each raise site raises a
subclass with its own meaning, and the family's base class stays without one. An error with no
meaning is still a :class:`TriageError` (the web app answers it with 400).

Naming: the meaning classes are named for the meaning alone, as HTTP names it (``NotFound``,
``Conflict``), because they are mixed into concrete errors rather than raised by themselves;
concrete errors end in ``Error`` (ruff's N818), except two older names other packages use.
"""

from __future__ import annotations

__all__ = [
    "MEANINGS",
    "BatchShapeError",
    "BenchmarkError",
    "CardError",
    "Conflict",
    "DatasetError",
    "ExportError",
    "Forbidden",
    "InferenceError",
    "InferenceTimeout",
    "IntegrityError",
    "Invalid",
    "InvalidOutput",
    "ModelError",
    "ModelNotFoundError",
    "ModelRefError",
    "ModelVersionExistsError",
    "NotFound",
    "PreprocessError",
    "RegistryStateError",
    "TriageError",
    "Unavailable",
    "meaning_of",
]


class TriageError(Exception):
    """Base class of every error raised by the project's domain code."""


# -- what went wrong ----------------------------------------------------------------------------


class NotFound(TriageError):  # noqa: N818  (a meaning, mixed into concrete ...Error classes)
    """The thing asked for does not exist."""


class Conflict(TriageError):  # noqa: N818  (a meaning, mixed into concrete ...Error classes)
    """The thing exists, but its current state does not allow what was asked."""


class Forbidden(TriageError):  # noqa: N818  (a meaning, mixed into concrete ...Error classes)
    """The user may not do this (though the request is well formed and the thing exists)."""


class Invalid(TriageError):  # noqa: N818  (a meaning, mixed into concrete ...Error classes)
    """The request or the data it carries is malformed or breaks a rule of its schema."""


class Unavailable(TriageError):  # noqa: N818  (a meaning, mixed into concrete ...Error classes)
    """A resource the request needs (a registry, the disk, a peer, a model) cannot be used now."""


MEANINGS: tuple[type[TriageError], ...] = (NotFound, Conflict, Forbidden, Invalid, Unavailable)
"""The meaning classes, in the order of this module's table."""


def meaning_of(exc: BaseException) -> type[TriageError] | None:
    """Return the meaning class an error carries, or ``None`` when it carries none.

    Parameters
    ----------
    exc
        Any exception.

    Returns
    -------
    type of TriageError or None
        The first of :data:`MEANINGS` in the error's method resolution order (its most specific
        meaning; a well-formed error carries at most one).
    """
    for klass in type(exc).__mro__:
        if klass in MEANINGS:
            return klass
    return None


# -- the models package -------------------------------------------------------------------------


class ModelError(TriageError):
    """Base class of the errors of the :mod:`models` package (it carries no meaning itself)."""


class CardError(ModelError, Invalid):
    """A model card is missing, not YAML, or does not follow the card schema.

    The message names the card file and the offending field.
    """


class DatasetError(ModelError, Invalid):
    """A copy of a public dataset does not follow its published layout, or an option does not fit.

    A file, a column or a value is missing or malformed, or a label map or a split does not fit
    the dataset. The message names the file (and the column or line) that is missing or wrong.
    """


class IntegrityError(ModelError, Invalid):
    """A model's ONNX file is missing or its sha256 differs from the card's."""


class ModelNotFoundError(ModelError, NotFound):
    """No registered model has the requested name (and version)."""


class ModelRefError(ModelError, Invalid):
    """A model reference is not ``NAME`` or ``NAME@VERSION``."""


class RegistryStateError(ModelError, Unavailable):
    """The registry's state file cannot be read or written."""


class PreprocessError(ModelError, Invalid):
    """A DICOM dataset cannot be turned into the model's input tensor."""


class BatchShapeError(ModelError, Invalid):
    """A batch of input tensors does not fit the model's input shape."""


class InferenceError(ModelError, Unavailable):
    """ONNX Runtime cannot load or run a model, or the model was closed."""


class InferenceTimeout(ModelError, Unavailable):  # noqa: N818  (the name other packages use)
    """An inference call ran past its time limit and was terminated."""


class InvalidOutput(ModelError, Unavailable):  # noqa: N818  (the name other packages use)
    """A model produced outputs of the wrong shape, or values that are NaN or infinite.

    Its meaning is :class:`Unavailable`: the input was fine, the AI is what failed, and the study
    goes on "AI not available".
    """


class ExportError(ModelError, Invalid):
    """A network could not be exported to ONNX, or the export failed its parity check."""


class BenchmarkError(ModelError, Invalid):
    """A benchmark cannot run: an image cannot be read, no label fits, or an option is wrong."""


class ModelVersionExistsError(ModelError, Conflict):
    """A model version to be written (e.g. a calibrated card) is already in the models folder."""
