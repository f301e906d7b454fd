"""HTTPS for the web app: uvicorn's server options, and what a response over TLS must carry.

The app is served over TLS in one of two ways: by uvicorn itself (``web_tls_certificate``, with
the options of :func:`tls_options`), or behind a reverse proxy that terminates TLS and says so
with ``X-Forwarded-Proto: https`` (trusted only from ``web_forwarded_allow_ips``,
:func:`proxy_options`). Either way uvicorn gives the request the scheme ``https``, and
:class:`TransportSecurity` then marks every cookie ``Secure`` and adds
``Strict-Transport-Security``. Over plain HTTP it adds neither: browsers ignore HSTS received
over HTTP, and a ``Secure`` session cookie would never come back, so logging in on a plain-HTTP
localhost would fail.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worklist.logsafe import uvicorn_log_config
from worklist.settings import WorklistSettings

__all__ = [
    "BCP195_CIPHERS",
    "TransportSecurity",
    "hsts_value",
    "proxy_options",
    "server_options",
    "tls_options",
    "url_scheme",
]

logger = logging.getLogger(__name__)

BCP195_CIPHERS = (
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!eNULL:!MD5:!SHA1:!RC4:!3DES:!DES:!EXPORT:!PSK"
)
"""TLS 1.2 cipher suites of the BCP 195 profile (RFC 9325), as the DICOM listener's.

uvicorn's own default (``"TLSv1"``) would replace Python's secure default list with every TLS 1.0
suite; TLS 1.3's suites all qualify and are left to OpenSSL. Python's server contexts refuse
versions below TLS 1.2.
"""


def proxy_options(worklist: WorklistSettings) -> dict[str, Any]:
    """Return uvicorn's options for forwarded headers: trusted only from configured proxies.

    uvicorn itself trusts ``X-Forwarded-For`` from 127.0.0.1 (or ``$FORWARDED_ALLOW_IPS``) by
    default, which lets any local client choose the address the login limit and the audit log
    see. Here proxy headers are off unless ``web_forwarded_allow_ips`` names the proxies.

    Parameters
    ----------
    worklist
        Settings holding ``web_forwarded_allow_ips``.

    Returns
    -------
    dict
        ``proxy_headers`` and ``forwarded_allow_ips`` for :class:`uvicorn.Config`.
    """
    trusted = worklist.web_forwarded_allow_ips
    if not trusted:
        # An explicit (unused) value, so that $FORWARDED_ALLOW_IPS cannot turn trust back on.
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(trusted)}


def tls_options(worklist: WorklistSettings) -> dict[str, Any]:
    """Return uvicorn's TLS options from the ``web_tls_*`` settings (none: plain HTTP).

    Parameters
    ----------
    worklist
        Settings holding ``web_tls_certificate`` and the rest.

    Returns
    -------
    dict
        ``ssl_certfile``, ``ssl_keyfile``, ``ssl_keyfile_password``, ``ssl_ca_certs``,
        ``ssl_cert_reqs`` and ``ssl_ciphers`` for :class:`uvicorn.Config`; empty without a
        certificate.
    """
    if worklist.web_tls_certificate is None:
        return {}
    password = worklist.web_tls_private_key_password
    options: dict[str, Any] = {
        "ssl_certfile": str(worklist.web_tls_certificate),
        "ssl_keyfile": str(worklist.web_tls_private_key) if worklist.web_tls_private_key else None,
        "ssl_keyfile_password": password.get_secret_value() if password else None,
        "ssl_ciphers": BCP195_CIPHERS,
        "ssl_cert_reqs": ssl.CERT_NONE,
    }
    if worklist.web_tls_ca_bundle is not None:
        options["ssl_ca_certs"] = str(worklist.web_tls_ca_bundle)
        # With a CA bundle and no requirement, a client certificate is checked when offered.
        options["ssl_cert_reqs"] = (
            ssl.CERT_REQUIRED if worklist.web_tls_require_client_certificate else ssl.CERT_OPTIONAL
        )
    return options


def server_options(worklist: WorklistSettings, *, log_level: str | None = None) -> dict[str, Any]:
    """Return every option the web app gives :class:`uvicorn.Config` besides the app and address.

    Parameters
    ----------
    worklist
        The web app's settings (forwarded headers, TLS).
    log_level
        For worker processes: the level of the protected root handler each one gets (see
        :func:`worklist.logsafe.uvicorn_log_config`); ``None`` in the command line's process.

    Returns
    -------
    dict
        Keyword arguments for :class:`uvicorn.Config` or :func:`uvicorn.run`.
    """
    return {
        "log_level": "warning",
        "log_config": uvicorn_log_config(log_level),
        "access_log": False,
        **proxy_options(worklist),
        **tls_options(worklist),
    }


def url_scheme(worklist: WorklistSettings) -> str:
    """Return ``"https"`` when the app serves TLS itself, else ``"http"`` (for log lines)."""
    return "https" if worklist.web_tls_certificate is not None else "http"


def hsts_value(worklist: WorklistSettings) -> str:
    """Return the ``Strict-Transport-Security`` value the settings ask for.

    Parameters
    ----------
    worklist
        Settings holding ``web_hsts_max_age_s``, ``web_hsts_include_subdomains`` and
        ``web_hsts_preload``.

    Returns
    -------
    str
        E.g. ``"max-age=31536000"``.
    """
    value = f"max-age={worklist.web_hsts_max_age_s}"
    if worklist.web_hsts_include_subdomains:
        value += "; includeSubDomains"
    if worklist.web_hsts_preload:
        value += "; preload"
    return value


def _secure_cookie(value: bytes) -> bytes:
    """Return a ``Set-Cookie`` value with the ``Secure`` attribute (added when missing)."""
    attributes = value.split(b";")[1:]
    if any(a.strip().lower() == b"secure" for a in attributes):
        return value
    return value + b"; Secure"


class TransportSecurity:
    """On requests that came over HTTPS: ``Secure`` on every cookie, and HSTS.

    A plain ASGI middleware put outside the session middleware (so that it sees the session's
    ``Set-Cookie``). The scheme is the one uvicorn gives the request: ``https`` when it serves
    TLS, or when a trusted proxy sent ``X-Forwarded-Proto: https``.
    """

    def __init__(self, app: ASGIApp, hsts: str) -> None:
        self.app = app
        self.hsts = hsts.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass plain-HTTP requests on untouched; mark the responses of HTTPS ones."""
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, _secure_cookie(v) if k.lower() == b"set-cookie" else v)
                    for k, v in message.get("headers", ())
                ]
                if not any(k.lower() == b"strict-transport-security" for k, _ in headers):
                    headers.append((b"strict-transport-security", self.hsts))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)
