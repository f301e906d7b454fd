"""Load the effective configuration: CLI flags > ``TRIAGE_*`` variables > TOML file > defaults.

The TOML file has one table per package (``[triage]``, ``[gateway]``, ``[worklist]``,
``[models]``). Its path is given by ``--config`` or ``TRIAGE_CONFIG``; ``./triage.toml`` is read
when it exists.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource

from dicom_gateway.settings import GatewaySettings
from models.errors import Invalid
from models.settings import ModelsSettings
from triage.settings import AppConfig, TriageSettings
from worklist.settings import WorklistSettings

__all__ = ["ConfigError", "load_config"]

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=BaseSettings)

_SECTIONS: dict[str, type[BaseSettings]] = {
    "triage": TriageSettings,
    "gateway": GatewaySettings,
    "worklist": WorklistSettings,
    "models": ModelsSettings,
}


class ConfigError(Invalid):
    """The configuration file or variables are invalid."""


def _read_toml(path: Path | None) -> tuple[Path | None, dict[str, Any]]:
    if path is None:
        env = os.environ.get("TRIAGE_CONFIG")
        if env:
            path = Path(env)
        elif Path("triage.toml").is_file():
            path = Path("triage.toml")
        else:
            return None, {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(
            f"configuration file {path}: unknown table(s) {unknown}; known: {sorted(_SECTIONS)}"
        )
    return path, data


def _build(cls: type[S], section: Mapping[str, Any], overrides: Mapping[str, Any]) -> S:
    """Build ``cls`` with the precedence overrides > environment > TOML section > defaults."""
    toml_values = dict(section)

    class _Composed(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls_,  # noqa: N804
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, InitSettingsSource(settings_cls, toml_values))

    composed = _Composed(**{k: v for k, v in overrides.items() if v is not None})
    # Re-validate as the public class so callers see exactly ``cls``; explicit values win.
    return cls.model_validate(composed.model_dump())


def load_config(
    path: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> AppConfig:
    """Load the effective configuration.

    Parameters
    ----------
    path
        TOML file; ``None`` uses ``TRIAGE_CONFIG`` or ``./triage.toml`` when present.
    overrides
        Values given on the command line, per section (``{"gateway": {"port": 104}}``);
        ``None`` values are ignored.

    Returns
    -------
    AppConfig
        Every package's settings.

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, has unknown tables, or a value is invalid.
    """
    source, data = _read_toml(path)
    overrides = overrides or {}
    built: dict[str, BaseSettings] = {}
    for name, cls in _SECTIONS.items():
        try:
            built[name] = _build(cls, data.get(name, {}), overrides.get(name, {}))
        except ValidationError as exc:
            where = f" (file {source})" if source else ""
            raise ConfigError(f"invalid [{name}] settings{where}:\n{exc}") from exc
    if source:
        logger.info("configuration read from %s", source)
    worklist: WorklistSettings = built["worklist"]  # type: ignore[assignment]
    models: ModelsSettings = built["models"]  # type: ignore[assignment]
    return AppConfig(
        triage=built["triage"],  # type: ignore[arg-type]
        gateway=built["gateway"],  # type: ignore[arg-type]
        worklist=worklist,
        models=_with_state_in_data_dir(models, worklist),
    )


MODEL_STATE_FILE = "model-state.json"
"""Name of the model status file in the data directory (when ``models.state_file`` is unset)."""


def _with_state_in_data_dir(models: ModelsSettings, worklist: WorklistSettings) -> ModelsSettings:
    """Keep the model status file with the deployment's data, not in the models folder.

    The models folder is often the installed package (``models/bundled``), shared by every
    deployment started from it and possibly read-only; statuses set by ``triage models enable``
    are runtime state of one deployment. An explicit ``models.state_file`` still wins. A status
    file left in the models folder by an earlier version is no longer read: say so, once per
    start, rather than ignore it silently.
    """
    if models.state_file is not None:
        return models
    state_file = worklist.data_dir / MODEL_STATE_FILE
    legacy = models.models_dir / "state.json"
    if legacy.is_file() and not state_file.exists():
        logger.warning(
            "model statuses in %s are no longer read: statuses live in %s (move the file there, "
            "or set models.state_file)",
            legacy,
            state_file,
        )
    return models.model_copy(update={"state_file": state_file})
