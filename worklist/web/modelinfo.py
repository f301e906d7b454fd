"""What the admin pages show of the model registry, and status changes (enable/disable/shadow).

The registry is :class:`models.registry.ModelRegistry` (built by the models package); it is
imported when first needed so that the web app starts, and says so, where it is missing.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from models.errors import TriageError
from models.settings import ModelsSettings

__all__ = ["STATUSES", "ModelInfo", "ModelsUnavailableError", "list_models", "set_model_status"]

logger = logging.getLogger(__name__)

STATUSES = ("enabled", "disabled", "shadow")


class ModelsUnavailableError(TriageError):
    """The model registry cannot be read."""


@dataclass(frozen=True)
class ModelInfo:
    """One registered model as the admin pages show it."""

    name: str
    version: str
    status: str
    sha256: str
    creator: str
    intended_use: str
    regulatory_status: str
    labels: tuple[str, ...]


def _registry(settings: ModelsSettings) -> Any:
    try:
        module = importlib.import_module("models.registry")
    except ImportError as exc:
        raise ModelsUnavailableError(f"the model registry is not available: {exc}") from exc
    return module.ModelRegistry(settings)


def _text(value: Any) -> str:
    return str(getattr(value, "value", value)) if value is not None else ""


def _info(entry: Any) -> ModelInfo:
    card = getattr(entry, "card", entry)
    identity = getattr(card, "identity", None)
    outputs = getattr(card, "outputs", None)
    labels = tuple(str(label.name) for label in getattr(outputs, "labels", ()))
    return ModelInfo(
        name=str(getattr(entry, "name", None) or getattr(identity, "name", "")),
        version=str(getattr(entry, "version", None) or getattr(identity, "version", "")),
        status=_text(getattr(entry, "status", None) or getattr(card, "status", "")),
        sha256=str(getattr(entry, "sha256", "") or getattr(identity, "sha256", "") or ""),
        creator=str(getattr(identity, "creator", "")),
        intended_use=str(getattr(card, "intended_use", "")),
        regulatory_status=str(getattr(card, "regulatory_status", "")),
        labels=labels,
    )


def list_models(settings: ModelsSettings) -> list[ModelInfo]:
    """Return every registered model with its status.

    Raises
    ------
    ModelsUnavailableError
        The registry cannot be imported or read.
    """
    registry = _registry(settings)
    try:
        entries = list(registry.models())
    except TriageError as exc:
        raise ModelsUnavailableError(str(exc)) from exc
    return [_info(e) for e in entries]


def set_model_status(settings: ModelsSettings, name: str, status: str) -> None:
    """Enable, disable or shadow a model by name.

    Raises
    ------
    ModelsUnavailableError
        The registry is missing, the status is not one of :data:`STATUSES`.
    models.errors.ModelNotFound
        No model has this name.
    """
    if status not in STATUSES:
        raise ModelsUnavailableError(f"status is one of {', '.join(STATUSES)}, not {status!r}")
    registry = _registry(settings)
    card = importlib.import_module("models.card")
    registry.set_status(name, card.ModelStatus(status))
    logger.info("model %s set to %s", name, status)
