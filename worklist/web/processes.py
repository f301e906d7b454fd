"""Serve the web app with several uvicorn worker processes (``triage web --workers N``).

One Python process serves one request at a time per core at best (the GIL); on a machine with
more cores, ``N`` processes share the listening socket. uvicorn's supervisor starts them from an
import string, so the settings travel to them as JSON in an environment variable and
:func:`app_from_env` builds each worker's app from it. The store is migrated once, here, before
the workers start (not by every worker at once).
"""

from __future__ import annotations

import json
import logging
import os

import uvicorn
from fastapi import FastAPI

from models.settings import ModelsSettings
from worklist.db.engine import Database
from worklist.settings import WorklistSettings
from worklist.web.app import create_app
from worklist.web.transport import server_options, url_scheme

__all__ = ["SETTINGS_ENV", "app_from_env", "serve_workers"]

logger = logging.getLogger(__name__)

SETTINGS_ENV = "TRIAGE_WEB_APP_SETTINGS"


def app_from_env() -> FastAPI:
    """Build a worker's app from the settings in ``TRIAGE_WEB_APP_SETTINGS`` (uvicorn factory).

    Returns
    -------
    FastAPI
        The app of :func:`worklist.web.app.create_app`.
    """
    data = json.loads(os.environ[SETTINGS_ENV])
    return create_app(
        WorklistSettings.model_validate(data["worklist"]),
        ModelsSettings.model_validate(data["models"]),
    )


def serve_workers(
    worklist: WorklistSettings,
    models: ModelsSettings,
    host: str,
    port: int,
    workers: int,
    *,
    log_level: str = "INFO",
) -> None:
    """Serve the app with ``workers`` uvicorn processes until SIGINT or SIGTERM (blocks).

    Parameters
    ----------
    worklist, models
        Settings of every worker's app.
    host, port
        Where to listen.
    workers
        How many processes (one per core is the usual choice).
    log_level
        Level of each worker's log handler (stderr, control characters escaped as in the
        command line's own process: :func:`worklist.logsafe.uvicorn_log_config`).
    """
    Database(worklist.effective_database_url).dispose()  # migrate once, before the workers
    # The key's password reaches the workers inside uvicorn's own configuration (TLS is
    # uvicorn's, not the app's), never in the environment.
    dumped = worklist.model_dump(mode="json", exclude={"web_tls_private_key_password"})
    os.environ[SETTINGS_ENV] = json.dumps(
        {"worklist": dumped, "models": models.model_dump(mode="json")}
    )
    logger.info(
        "web app on %s://%s:%d with %d worker processes",
        url_scheme(worklist),
        host,
        port,
        workers,
    )
    uvicorn.run(
        "worklist.web.processes:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **server_options(worklist, log_level=log_level),
    )
