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
    return AppConfig(
        triage=built["triage"],  # type: ignore[arg-type]
        gateway=built["gateway"],  # type: ignore[arg-type]
        worklist=built["worklist"],  # type: ignore[arg-type]
        models=built["models"],  # type: ignore[arg-type]
    )
