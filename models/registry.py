"""The model registry: every model under ``models_dir``, its status, and loading it safely.

Layout: ``models_dir/<name>/<version>/card.yaml`` beside the ONNX file the card names. Any
number of models and versions live side by side. A model is referred to as ``NAME@VERSION``,
or ``NAME`` for its newest version (by semantic version, PEP 440 ordering).

A model's status (enabled, disabled, shadow) is the card's ``status`` unless the state file
(``ModelsSettings.effective_state_file``, JSON) overrides it; :meth:`ModelRegistry.set_status`
writes that file. Loading refuses an ONNX file whose sha256 differs from the card's.
"""

from __future__ import annotations

import builtins
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from models.card import CARD_FILE, ModelCard, ModelStatus, load_card
from models.errors import CardError, ModelNotFoundError
from models.integrity import read_verified_onnx
from models.refs import ModelRef, version_key
from models.runtime import LoadedModel
from models.settings import ModelsSettings
from models.state import read_state, write_state

__all__ = ["CardProblem", "ModelRef", "ModelRegistry", "RegisteredModel", "version_key"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredModel:
    """A model found in ``models_dir``: its card, where it lives, and its effective status."""

    card: ModelCard
    directory: Path
    status: ModelStatus

    @property
    def name(self) -> str:
        """The model's name."""
        return self.card.identity.name

    @property
    def version(self) -> str:
        """The model's version."""
        return self.card.identity.version

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return self.card.ref

    @property
    def card_path(self) -> Path:
        """The ``card.yaml`` file."""
        return self.directory / CARD_FILE

    @property
    def onnx_path(self) -> Path:
        """The ONNX file."""
        return self.directory / self.card.identity.onnx_file


@dataclass(frozen=True)
class CardProblem:
    """A ``card.yaml`` that could not be registered, and why."""

    path: Path
    message: str


class ModelRegistry:
    """The models under ``settings.models_dir``.

    Parameters
    ----------
    settings
        Where models live, the state file, and how sessions run.

    Raises
    ------
    RegistryStateError
        If the state file exists but is not valid.
    """

    def __init__(self, settings: ModelsSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str, str], LoadedModel] = {}
        self._models: dict[tuple[str, str], RegisteredModel] = {}
        self.problems: builtins.list[CardProblem] = []
        self.refresh()

    @property
    def models_dir(self) -> Path:
        """The directory scanned for models."""
        return self.settings.models_dir

    @property
    def state_file(self) -> Path:
        """The JSON file of status overrides."""
        return self.settings.effective_state_file

    # -- scanning ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Scan ``models_dir`` again and re-read the state file."""
        overrides = read_state(self.state_file)
        models: dict[tuple[str, str], RegisteredModel] = {}
        problems: builtins.list[CardProblem] = []
        if not self.models_dir.is_dir():
            logger.warning("models directory %s does not exist; no models", self.models_dir)
        for card_path in sorted(self.models_dir.glob(f"*/*/{CARD_FILE}")):
            try:
                card = load_card(card_path)
            except CardError as exc:
                problems.append(CardProblem(card_path, str(exc)))
                logger.error("%s", exc)
                continue
            directory = card_path.parent
            expected = (directory.parent.name, directory.name)
            if (card.identity.name, card.identity.version) != expected:
                message = (
                    f"card {card_path}: identity: the card is {card.ref} but lives in "
                    f"{expected[0]}/{expected[1]}; move it to {card.identity.name}/"
                    f"{card.identity.version}"
                )
                problems.append(CardProblem(card_path, message))
                logger.error("%s", message)
                continue
            status = overrides.get(card.ref, card.status)
            models[expected] = RegisteredModel(card=card, directory=directory, status=status)
        with self._lock:
            self._models = models
            self.problems = problems
        logger.debug("registry %s: %d model(s)", self.models_dir, len(models))

    def models(self) -> builtins.list[RegisteredModel]:
        """Every registered model, by name and then by version (oldest first).

        Returns
        -------
        list of RegisteredModel
            All models, whatever their status.
        """
        with self._lock:
            found = builtins.list(self._models.values())
        return sorted(found, key=lambda m: (m.name, version_key(m.version)))

    def enabled(self) -> builtins.list[RegisteredModel]:
        """Return the models whose status is ``enabled``.

        Returns
        -------
        list of RegisteredModel
            Their findings count towards priority.
        """
        return [m for m in self.models() if m.status is ModelStatus.ENABLED]

    def active(self) -> builtins.list[RegisteredModel]:
        """Return the models that run: ``enabled`` and ``shadow`` ones.

        Returns
        -------
        list of RegisteredModel
            Shadow models run and record findings that do not change priorities.
        """
        return [m for m in self.models() if m.status is not ModelStatus.DISABLED]

    def get(self, name: str, version: str | None = None) -> RegisteredModel:
        """Find a model.

        Parameters
        ----------
        name
            The model's name, or a whole ``NAME@VERSION`` reference.
        version
            The version; ``None`` picks the newest.

        Returns
        -------
        RegisteredModel
            The model.

        Raises
        ------
        ModelNotFoundError
            If no such model (or version) is registered.
        ModelRefError
            If ``name`` holds an ``@`` but is not ``NAME@VERSION``.
        """
        if version is None and "@" in name:
            ref = ModelRef.parse(name)
            name, version = ref.name, ref.version
        candidates = [m for m in self.models() if m.name == name]
        if not candidates:
            known = sorted({m.name for m in self.models()})
            raise ModelNotFoundError(
                f"no model named {name!r} in {self.models_dir} (known: {known or 'none'})"
            )
        if version is None:
            return candidates[-1]
        for model in candidates:
            if model.version == version:
                return model
        versions = [m.version for m in candidates]
        raise ModelNotFoundError(f"model {name!r} has no version {version!r} (has {versions})")

    def resolve(self, ref: str | ModelRef) -> RegisteredModel:
        """Find a model by a ``NAME[@VERSION]`` reference.

        Parameters
        ----------
        ref
            The reference.

        Returns
        -------
        RegisteredModel
            The model.

        Raises
        ------
        ModelRefError
            If ``ref`` is not ``NAME`` or ``NAME@VERSION``.
        ModelNotFoundError
            If no such model (or version) is registered.
        """
        parsed = ModelRef.parse(ref) if isinstance(ref, str) else ref
        return self.get(parsed.name, parsed.version)

    # -- loading ----------------------------------------------------------------------------

    def verify(self, name: str, version: str | None = None) -> RegisteredModel:
        """Check a model's ONNX file against its card's sha256 without loading it.

        Parameters
        ----------
        name, version
            As for :meth:`get`.

        Returns
        -------
        RegisteredModel
            The verified model.

        Raises
        ------
        IntegrityError
            If the file is missing or its digest differs.
        """
        model = self.get(name, version)
        read_verified_onnx(model.card, model.directory)
        return model

    def load(self, name: str, version: str | None = None) -> LoadedModel:
        """Load a model into an ONNX Runtime session, once; later calls reuse it.

        Parameters
        ----------
        name, version
            As for :meth:`get`.

        Returns
        -------
        LoadedModel
            The model, ready to run.

        Raises
        ------
        ModelNotFoundError
            If no such model is registered.
        IntegrityError
            If the ONNX file's sha256 differs from the card's.
        CardError
            If the graph does not match the card's inputs and outputs.
        """
        model = self.get(name, version)
        key = (model.name, model.version, model.card.identity.sha256)
        with self._lock:
            cached = self._loaded.get(key)
            if cached is not None:
                return cached
            loaded = LoadedModel(model.card, model.directory, self.settings)
            self._loaded[key] = loaded
            return loaded

    def close(self) -> None:
        """Close every loaded model."""
        with self._lock:
            loaded, self._loaded = builtins.list(self._loaded.values()), {}
        for model in loaded:
            model.close()

    # -- status -----------------------------------------------------------------------------

    def set_status(
        self, name: str, version: str | None, status: ModelStatus | str
    ) -> RegisteredModel:
        """Override a model's status and persist it in the state file.

        Parameters
        ----------
        name
            The model's name (or ``NAME@VERSION``).
        version
            The version; ``None`` picks the newest.
        status
            ``enabled``, ``disabled`` or ``shadow``.

        Returns
        -------
        RegisteredModel
            The model with its new status.

        Raises
        ------
        ModelNotFoundError
            If no such model is registered.
        RegistryStateError
            If the state file cannot be written (its directory is not writable, say).
        """
        new_status = ModelStatus(status)
        model = self.get(name, version)
        overrides = read_state(self.state_file)
        overrides[model.ref] = new_status
        write_state(self.state_file, overrides)
        updated = RegisteredModel(card=model.card, directory=model.directory, status=new_status)
        with self._lock:
            self._models[(model.name, model.version)] = updated
        logger.info("model %s is now %s (state file %s)", model.ref, new_status, self.state_file)
        return updated

    def list(self) -> builtins.list[RegisteredModel]:
        """Every registered model (the same as :meth:`models`).

        Returns
        -------
        list of RegisteredModel
            All models, by name and version.
        """
        return self.models()
