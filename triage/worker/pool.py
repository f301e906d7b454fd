"""The models a worker runs: loaded once, statuses re-read now and then.

The worker needs only what :class:`RunnableModel` names, which is what
``models.runtime.LoadedModel`` provides; tests may pass small fakes with the same shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pydicom import Dataset

from models.card import ModelCard, ModelStatus

__all__ = ["ActiveModel", "ModelPool", "RunnableModel", "registry_source"]

logger = logging.getLogger(__name__)


class RunnableModel(Protocol):
    """A loaded model: ``preprocess -> predict -> postprocess``."""

    @property
    def card(self) -> ModelCard:
        """The model's card."""
        ...

    def preprocess(self, ds: Dataset) -> np.ndarray[Any, Any]:
        """Turn one DICOM dataset into a ``(C, H, W)`` float32 array."""
        ...

    def predict(self, batch: np.ndarray[Any, Any]) -> Any:
        """Run a ``(N, C, H, W)`` batch; return a prediction with ``probabilities``/``heatmaps``."""
        ...

    def postprocess(self, prediction: Any) -> Sequence[Any]:
        """Return one result per image, each with its label results."""
        ...


@dataclass(frozen=True)
class ActiveModel:
    """A model the worker runs, with its status (``enabled`` or ``shadow``)."""

    model: RunnableModel
    status: ModelStatus

    @property
    def card(self) -> ModelCard:
        """The model's card."""
        return self.model.card

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return self.model.card.ref

    @property
    def shadow(self) -> bool:
        """Whether findings are recorded but never change a priority."""
        return self.status is ModelStatus.SHADOW


@dataclass(frozen=True)
class Entry:
    """What a source lists: a card and its current status."""

    card: ModelCard
    status: ModelStatus


Source = Callable[[], Iterable[Entry]]
Loader = Callable[[ModelCard], RunnableModel]


class ModelPool:
    """The worker's models, loaded once; statuses refreshed every ``refresh_s`` seconds.

    Parameters
    ----------
    source
        Lists the registered models and their statuses.
    loader
        Loads one model (checks its sha256, opens the session).
    refresh_s
        How often :meth:`refresh` re-reads the statuses.
    """

    def __init__(self, source: Source, loader: Loader, *, refresh_s: float = 10.0) -> None:
        self._source = source
        self._loader = loader
        self._refresh_s = refresh_s
        self._loaded: dict[str, RunnableModel] = {}
        self._active: dict[str, ActiveModel] = {}
        self._broken: dict[str, tuple[Entry, str]] = {}
        self._checked = -float("inf")
        self.refresh(force=True)

    @classmethod
    def of(cls, models: Sequence[tuple[RunnableModel, ModelStatus]]) -> ModelPool:
        """Build a pool of already-loaded models with fixed statuses (tests, embedding)."""
        by_ref = {m.card.ref: m for m, _ in models}
        entries = [Entry(m.card, status) for m, status in models]
        return cls(lambda: entries, lambda card: by_ref[card.ref], refresh_s=float("inf"))

    def refresh(self, *, force: bool = False) -> None:
        """Re-read statuses (at most every ``refresh_s``); load newly active models once."""
        now = time.monotonic()
        if not force and now - self._checked < self._refresh_s:
            return
        self._checked = now
        try:
            entries = list(self._source())
        except Exception as exc:  # a broken state file must not stop the worker
            logger.error("cannot list models, keeping the current set: %s", exc)
            return
        active: dict[str, ActiveModel] = {}
        broken: dict[str, tuple[Entry, str]] = {}
        for entry in entries:
            ref = entry.card.ref
            if entry.status is ModelStatus.DISABLED:
                continue
            model = self._loaded.get(ref)
            if model is None:
                try:
                    model = self._loader(entry.card)
                except Exception as exc:
                    reason = f"model {ref} could not be loaded: {exc}"
                    if ref not in self._broken:
                        logger.error("%s", reason)
                    broken[ref] = (entry, reason)
                    continue
                self._loaded[ref] = model
                logger.info("model %s loaded (%s)", ref, entry.status)
            active[ref] = ActiveModel(model, entry.status)
        changed = {r: a.status for r, a in active.items()} != {
            r: a.status for r, a in self._active.items()
        }
        if changed:
            logger.info("active models: %s", {r: str(a.status) for r, a in active.items()})
        self._active, self._broken = active, broken

    def close(self) -> None:
        """Release every loaded model (those that have a ``close`` method)."""
        for ref, model in self._loaded.items():
            closer = getattr(model, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception as exc:
                    logger.warning("model %s did not close cleanly: %s", ref, exc)
        self._loaded, self._active = {}, {}

    @property
    def active(self) -> list[ActiveModel]:
        """Models that run (enabled and shadow)."""
        return list(self._active.values())

    @property
    def broken(self) -> dict[str, tuple[ModelCard, ModelStatus, str]]:
        """Models that should run but could not be loaded: ref -> (card, status, reason)."""
        return {r: (e.card, e.status, why) for r, (e, why) in self._broken.items()}


def registry_source(registry: Any) -> tuple[Source, Loader]:
    """Adapt a ``models.registry.ModelRegistry`` to a pool's source and loader.

    Parameters
    ----------
    registry
        The registry (``refresh()`` re-reads statuses; ``models()`` lists entries with
        ``.card`` and ``.status``; ``load(name, version)`` returns a loaded model).

    Returns
    -------
    tuple
        The source and the loader.
    """

    def source() -> list[Entry]:
        registry.refresh()  # re-scan the models directory and re-read the state file
        return [Entry(e.card, ModelStatus(str(e.status))) for e in registry.models()]

    def loader(card: ModelCard) -> RunnableModel:
        model: RunnableModel = registry.load(card.identity.name, card.identity.version)
        return model

    return source, loader
