"""What the admin pages show of the model registry, and status changes (enable/disable/shadow)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from models.card import ModelStatus
from models.errors import Invalid, TriageError, Unavailable
from models.registry import ModelRegistry, RegisteredModel
from models.settings import ModelsSettings

__all__ = [
    "STATUSES",
    "ModelInfo",
    "ModelStatusError",
    "ModelsUnavailableError",
    "list_models",
    "set_model_status",
]

logger = logging.getLogger(__name__)

STATUSES = tuple(s.value for s in ModelStatus)


class ModelsUnavailableError(Unavailable):
    """The model registry cannot be read."""


class ModelStatusError(Invalid):
    """The status asked for is not one of :data:`STATUSES`."""


@dataclass(frozen=True)
class ModelInfo:
    """One registered model as the admin pages show it."""

    ref: str
    name: str
    version: str
    status: str
    sha256: str
    creator: str
    intended_use: str
    regulatory_status: str
    labels: tuple[str, ...]


def _info(model: RegisteredModel) -> ModelInfo:
    card = model.card
    return ModelInfo(
        ref=model.ref,
        name=model.name,
        version=model.version,
        status=str(model.status),
        sha256=card.identity.sha256,
        creator=card.identity.creator,
        intended_use=card.intended_use,
        regulatory_status=card.regulatory_status,
        labels=tuple(label.name for label in card.outputs.labels),
    )


def list_models(settings: ModelsSettings) -> list[ModelInfo]:
    """Return every registered model (each version) with its effective status.

    Raises
    ------
    ModelsUnavailableError
        The registry cannot be read.
    """
    try:
        registry = ModelRegistry(settings)
        return [_info(m) for m in registry.models()]
    except (TriageError, OSError) as exc:
        raise ModelsUnavailableError(f"the model registry cannot be read: {exc}") from exc


def set_model_status(settings: ModelsSettings, ref: str, status: str) -> ModelInfo:
    """Enable, disable or shadow a model (``NAME`` for the newest version, or ``NAME@VERSION``).

    Raises
    ------
    ModelStatusError
        The status is not one of :data:`STATUSES`.
    ModelsUnavailableError
        The registry cannot be read.
    models.errors.ModelRefError
        ``ref`` is not ``NAME`` or ``NAME@VERSION``.
    models.errors.ModelNotFoundError
        No model has this name (and version).
    models.errors.RegistryStateError
        The state file cannot be written.
    """
    if status not in STATUSES:
        raise ModelStatusError(f"status is one of {', '.join(STATUSES)}, not {status!r}")
    try:
        registry = ModelRegistry(settings)
    except OSError as exc:
        raise ModelsUnavailableError(f"the model registry cannot be read: {exc}") from exc
    model = registry.set_status(ref, None, ModelStatus(status))
    logger.info("model %s set to %s", model.ref, status)
    return _info(model)
