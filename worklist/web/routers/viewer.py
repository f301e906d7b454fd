"""The OHIF viewer at ``/viewer``: its prebuilt files, its configuration, or how to add it.

``scripts/install-viewer.sh`` puts the dist of npm ``@ohif/app`` (pinned, integrity-checked)
into ``worklist/web/viewer_dist/`` (or ``web_viewer_dir``). This router serves those files to
the roles that may read DICOMweb, falls back to ``index.html`` for the viewer's own routes
(``/viewer/viewer?StudyInstanceUIDs=...``), and answers ``app-config.js`` itself: one DICOMweb
data source at this server's ``/dicom-web`` on the same origin, so the browser's session cookie
authenticates every request the viewer makes. Without the dist, every ``/viewer`` path answers a
page that says how to add it (503); the rest of the app does not depend on it.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, Response

from worklist.settings import WorklistSettings
from worklist.web.deps import Principal, ReaderPage, WorklistSettingsDep
from worklist.web.templating import render

__all__ = ["DEFAULT_VIEWER_DIR", "INSTALL_COMMAND", "app_config", "router", "viewer_dir"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/viewer", tags=["viewer"], include_in_schema=False)

DEFAULT_VIEWER_DIR = Path(__file__).resolve().parent.parent / "viewer_dist"
INSTALL_COMMAND = "scripts/install-viewer.sh"
STAMP = ".installed"
INDEX = "index.html"
# The hashed chunks never change under their name; the rest (index.html) may with a new pin.
IMMUTABLE = ("bundle.", ".wasm")

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")


def viewer_dir(settings: WorklistSettings) -> Path | None:
    """Return the installed viewer's directory, or None when it is not installed.

    Parameters
    ----------
    settings
        ``web_viewer_dir`` (default: ``worklist/web/viewer_dist``).

    Returns
    -------
    pathlib.Path or None
        The directory holding ``index.html`` and the install stamp.
    """
    root = settings.web_viewer_dir or DEFAULT_VIEWER_DIR
    if (root / STAMP).is_file() and (root / INDEX).is_file():
        return root.resolve()
    return None


def app_config(dicomweb_root: str) -> dict[str, Any]:
    """Return OHIF v3's ``window.config``: one DICOMweb data source at ``dicomweb_root``.

    Parameters
    ----------
    dicomweb_root
        The absolute URL of this server's ``/dicom-web``.

    Returns
    -------
    dict
        The configuration, as JSON-serialisable data.
    """
    return {
        "routerBasename": "/viewer",
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": False,
        "showLoadingIndicator": True,
        "investigationalUseDialog": {"option": "never"},
        "strictZSpacingForVolumeViewport": True,
        "defaultDataSourceName": "triage",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "triage",
                "configuration": {
                    "friendlyName": "Triage worklist DICOMweb",
                    "name": "triage",
                    "qidoRoot": dicomweb_root,
                    "wadoRoot": dicomweb_root,
                    "wadoUriRoot": dicomweb_root,
                    "qidoSupportsIncludeField": True,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "supportsReject": False,
                    "dicomUploadEnabled": False,
                    "staticWado": False,
                    "singlepart": False,
                    "bulkDataURI": {"enabled": True},
                    "omitQuotationForMultipartRequest": True,
                },
            }
        ],
    }


def _not_installed(request: Request, principal: Principal) -> Response:
    return render(
        request,
        "viewer_missing.html",
        principal,
        {"command": INSTALL_COMMAND},
        status_code=503,
    )


@router.get("")
@router.get("/{path:path}")
def viewer(
    request: Request, principal: ReaderPage, settings: WorklistSettingsDep, path: str = ""
) -> Response:
    """Serve the viewer's files, its configuration, or (not installed) how to add it."""
    root = viewer_dir(settings)
    if root is None:
        return _not_installed(request, principal)
    if path == "app-config.js":
        dicomweb_root = str(request.base_url).rstrip("/") + "/dicom-web"
        body = "window.config = " + json.dumps(app_config(dicomweb_root), indent=1) + ";\n"
        return Response(body, media_type="text/javascript", headers={"Cache-Control": "no-store"})
    target = (root / path).resolve()
    if path and target.is_relative_to(root) and target.is_file() and target.name != STAMP:
        immutable = any(part in target.name for part in IMMUTABLE)
        cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
        return FileResponse(target, headers={"Cache-Control": cache})
    if "." in path.rsplit("/", 1)[-1]:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file in the viewer")
    # The viewer's own routes (/viewer/viewer?StudyInstanceUIDs=...): its single page.
    return FileResponse(root / INDEX, headers={"Cache-Control": "no-cache"})
