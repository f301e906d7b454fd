"""Rule files (routing, policy): read YAML and validate it, with errors naming file and field."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from models.errors import TriageError

__all__ = ["read_rule_file", "validate_rules"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def validate_rules(
    adapter: TypeAdapter[T], data: Any, source: str, what: str, error: type[TriageError]
) -> T:
    """Validate parsed YAML with ``adapter``.

    Parameters
    ----------
    adapter
        The pydantic adapter of the rules' type.
    data
        The parsed YAML.
    source
        The file (or another name), named in error messages.
    what
        ``"routing"`` or ``"policy"``, the start of each message.
    error
        The error class to raise.

    Returns
    -------
    T
        The validated rules.

    Raises
    ------
    TriageError
        An ``error`` whose message has one line per problem: ``what source: field: reason``.
    """
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(file)"
            reason = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{what} {source}: {where}: {reason}")
        raise error("\n".join(lines)) from exc


def read_rule_file(path: Path, what: str, error: type[TriageError]) -> Any:
    """Read a YAML rule file.

    Parameters
    ----------
    path
        The file.
    what
        ``"routing"`` or ``"policy"``, the start of each message.
    error
        The error class to raise.

    Returns
    -------
    Any
        The parsed YAML.

    Raises
    ------
    TriageError
        An ``error`` if the file cannot be read or is not YAML.
    """
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: not valid YAML: {exc}") from exc
