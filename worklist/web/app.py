"""The web app: :func:`create_app` builds it, :func:`run_web` serves it with uvicorn."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from anyio import to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.settings import ModelsSettings
from worklist.db.engine import Database
from worklist.settings import WorklistSettings
from worklist.web.auditsink import AuditSink
from worklist.web.authcache import AuthCache
from worklist.web.errors import register_error_handlers
from worklist.web.listcache import ListCache
from worklist.web.routers import (
    api_admin,
    api_monitoring,
    api_site,
    api_studies,
    dicomweb,
    dicomweb_pixels,
    dicomweb_stow,
    fhir,
    pages_admin,
    pages_auth,
    pages_monitoring,
    pages_studies,
    viewer,
)
from worklist.web.security import LoginLimiter, QueryLimits, session_secret
from worklist.web.templating import STATIC_DIR
from worklist.web.transport import (
    TransportSecurity,
    hsts_value,
    server_options,
    url_scheme,
)

__all__ = ["SESSION_COOKIE", "PrefixCORS", "create_app", "run_web"]

logger = logging.getLogger(__name__)

SESSION_COOKIE = "triage_session"
SESSION_MAX_AGE_S = 8 * 3600


SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """Add the security headers to every HTTP response that lacks them.

    ``X-Content-Type-Options``, ``X-Frame-Options`` and ``Referrer-Policy``; a plain ASGI
    middleware, cheaper per request than ``@app.middleware("http")``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class PrefixCORS:
    """CORS (Starlette's middleware) for the paths under one prefix only (``/dicom-web``)."""

    def __init__(self, app: ASGIApp, prefix: str, origins: list[str]) -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type", "X-CSRF-Token"],
            expose_headers=["Content-Location", "Warning"],
            allow_credentials="*" not in origins,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send requests under the prefix through CORS, the others straight on."""
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(
    worklist: WorklistSettings, models: ModelsSettings, *, db: Database | None = None
) -> FastAPI:
    """Build the web app: pages, the ``/api/v1`` JSON API, static files.

    Parameters
    ----------
    worklist
        The store, the archive and the ``web_*`` settings.
    models
        Where the model registry is (for the admin's model pages).
    db
        An open store to use; default: open ``worklist.effective_database_url`` (migrating it).

    Returns
    -------
    FastAPI
        The app; its state holds the settings, the store, the login limiter and the audit sink.
    """
    store = db if db is not None else Database(worklist.effective_database_url)
    sink = AuditSink(store)

    threads = worker_threads(store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool (40 threads by default). Under the GIL more
        # threads than pooled connections buy nothing: each extra one opens and closes a
        # connection per request (SQLite: four PRAGMAs). Size the pool to the connections.
        to_thread.current_default_thread_limiter().total_tokens = threads
        gc.freeze()  # the app's long-lived objects: out of every later full collection
        yield
        sink.close()

    app = FastAPI(
        title="ICS triage worklist",
        version="1",
        description="The shared reporting worklist. AI findings are decision support, "
        "not a diagnosis.",
        lifespan=lifespan,
    )
    # PIL refuses (DecompressionBombError) any PNG/JPEG it opens with more pixels than this.
    Image.MAX_IMAGE_PIXELS = worklist.web_max_image_pixels
    app.state.worklist_settings = worklist
    app.state.models_settings = models
    app.state.db = store
    app.state.audit = sink
    app.state.list_cache = ListCache(worklist.web_list_cache_s)
    app.state.auth_cache = AuthCache()
    app.state.limiter = LoginLimiter(worklist.web_login_max_failures, worklist.web_login_window_s)

    app.add_middleware(
        QueryLimits,
        max_params=worklist.web_max_query_params,
        max_repeats=worklist.web_max_param_repeats,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(worklist),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=worklist.web_cookie_secure,
    )
    # Outside the session middleware, to mark its cookie Secure on HTTPS requests.
    app.add_middleware(TransportSecurity, hsts=hsts_value(worklist))

    if worklist.web_cors_origins:
        app.add_middleware(PrefixCORS, prefix="/dicom-web", origins=worklist.web_cors_origins)

    register_error_handlers(app, store)

    for module in (
        api_studies,
        api_admin,
        api_monitoring,
        pages_auth,
        pages_studies,
        pages_admin,
        pages_monitoring,
    ):
        app.include_router(module.router)
    for module in (dicomweb, dicomweb_pixels, dicomweb_stow):
        app.include_router(module.router)
    app.include_router(api_site.router)
    app.include_router(api_site.health_router)
    app.include_router(fhir.router)
    app.include_router(viewer.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def worker_threads(db: Database) -> int:
    """Return how many threads serve the sync routes.

    The store's pooled connections, less one for the audit sink (at least 2, at most 40).
    """
    size = getattr(db.engine.pool, "size", None)
    pooled = size() if callable(size) else 0
    return max(2, min(40, int(pooled) - 1)) if pooled else 40


def run_web(
    worklist: WorklistSettings,
    models: ModelsSettings,
    host: str,
    port: int,
    stop: threading.Event,
    *,
    ready: threading.Event | None = None,
) -> None:
    """Serve the app with uvicorn until ``stop`` is set (safe to call in a thread).

    Parameters
    ----------
    worklist, models
        Settings passed to :func:`create_app`.
    host, port
        Where to listen (``127.0.0.1`` by default in the CLI).
    stop
        Set it to shut the server down gracefully.
    ready
        Set once the server listens.
    """
    app = create_app(worklist, models)
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", **server_options(worklist))
    server = uvicorn.Server(config)

    def watch() -> None:
        while not stop.wait(0.2):
            if ready is not None and server.started and not ready.is_set():
                ready.set()
        server.should_exit = True

    watcher = threading.Thread(target=watch, name="web-stop-watcher", daemon=True)
    watcher.start()
    logger.info("web app on %s://%s:%d", url_scheme(worklist), host, port)
    try:
        server.run()
    finally:
        stop.set()
        watcher.join(timeout=2)
        app.state.db.dispose()
