"""The Jinja2 templates of the pages and what every page is given."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from worklist.web.deps import Principal, csrf_token
from worklist.web.serialize import DISCLAIMER

__all__ = ["STATIC_DIR", "render", "templates"]

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    """Render a page with the user, the CSRF token and the AI disclaimer in its context."""
    ctx: dict[str, Any] = {
        "user": principal.user if principal else None,
        "csrf_token": csrf_token(request),
        "disclaimer": DISCLAIMER,
    }
    ctx.update(context or {})
    response: Response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response
