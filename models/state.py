"""The registry's state file: status overrides (enabled/disabled/shadow) per model.

JSON, ``{"schema_version": 1, "models": {"NAME@VERSION": "enabled"}}``, written atomically
(temporary file, fsync, rename) so that a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from models.card import ModelStatus
from models.errors import RegistryStateError

__all__ = ["read_state", "write_state"]

logger = logging.getLogger(__name__)

_STATE_SCHEMA = 1


def read_state(path: Path) -> dict[str, ModelStatus]:
    """Read the status overrides; a missing file means none.

    Parameters
    ----------
    path
        The state file.

    Returns
    -------
    dict
        ``NAME@VERSION`` to status.

    Raises
    ------
    RegistryStateError
        If the file cannot be read or is not a valid state file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}  # no overrides yet
    except OSError as exc:
        raise RegistryStateError(
            f"cannot read the model state file {path}: {exc.strerror or exc}"
        ) from exc
    try:
        data: Any = json.loads(text)
        statuses = data["models"]
        return {str(ref): ModelStatus(value) for ref, value in statuses.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RegistryStateError(
            f"model state file {path} is not valid (expected "
            f'{{"schema_version": 1, "models": {{"NAME@VERSION": "enabled"}}}}): {exc}'
        ) from exc


def write_state(path: Path, overrides: dict[str, ModelStatus]) -> None:
    """Write the status overrides atomically.

    Parameters
    ----------
    path
        The state file (its directory is created if needed).
    overrides
        ``NAME@VERSION`` to status.

    Raises
    ------
    RegistryStateError
        If the file cannot be written; the message says how to choose another path.
    """
    data = {
        "schema_version": _STATE_SCHEMA,
        "models": {ref: str(status) for ref, status in sorted(overrides.items())},
    }
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        tmp = None
    except OSError as exc:
        raise RegistryStateError(
            f"cannot write the model state file {path}: {exc.strerror or exc}. "
            f"Is {path.parent} writable? Set models.state_file "
            "(TRIAGE_MODELS_STATE_FILE) to a writable path."
        ) from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
