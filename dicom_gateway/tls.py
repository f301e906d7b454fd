"""DICOM TLS (PS3.15 Annex B.9, the BCP 195 profile) for the listener and the SCU.

* :func:`server_context`: the listener's :class:`ssl.SSLContext` (TLS 1.2 at least, ECDHE with
  AES-GCM or ChaCha20 only, the client's certificate verified against the CA bundle and, by
  default, required). pynetdicom receives it as ``ssl_context`` of its server; the listener wraps
  accepted sockets itself without the handshake (done on the association's own thread, under the
  watchdog's setup deadline), see :mod:`dicom_gateway.watchdog`.
* :class:`TlsClient` / :func:`client_context`: the SCU's side, given to pynetdicom as
  ``tls_args`` of ``AE.associate``.
* :func:`check_subject`: an ``EVT_REQUESTED`` handler that binds calling AE titles to the
  subjects (CN or subjectAltName) of the client certificates allowed to use them.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynetdicom import evt
from pynetdicom.events import Event

from dicom_gateway.refusals import RefusalLog
from dicom_gateway.settings import BCP195_CIPHERS, GatewaySettings
from dicom_gateway.watchdog import WatchedSSLSocket
from models.errors import Invalid

__all__ = [
    "BCP195_CIPHERS",
    "TlsClient",
    "TlsSettingsError",
    "certificate_names",
    "check_subject",
    "client_context",
    "listener_context",
    "server_context",
]

logger = logging.getLogger(__name__)


_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_REJECTED_PERMANENT, _SERVICE_USER, _CALLING_AET_NOT_RECOGNISED = 0x01, 0x01, 0x03


class TlsSettingsError(Invalid):
    """TLS is asked for but its certificate, key or CA bundle is missing or unusable."""


def _base_context(purpose: ssl.Purpose, min_version: str, ciphers: str) -> ssl.SSLContext:
    protocol = (
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else (ssl.PROTOCOL_TLS_CLIENT)
    )
    context = ssl.SSLContext(protocol)
    try:
        context.minimum_version = _VERSIONS[min_version]
    except KeyError as exc:
        raise TlsSettingsError(f"TLS minimum version {min_version!r}: use 1.2 or 1.3") from exc
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise TlsSettingsError(f"no usable TLS cipher suite in {ciphers!r}") from exc
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def _load(context: ssl.SSLContext, certificate: Path, key: Path | None, ca: Path | None) -> None:
    try:
        context.load_cert_chain(certificate, key)
        if ca is not None:
            context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSettingsError(f"cannot load the TLS certificate, key or CA bundle: {exc}") from exc


def server_context(
    certificate: Path,
    private_key: Path,
    ca_bundle: Path | None,
    *,
    require_client_certificate: bool = True,
    min_version: str = "1.2",
    ciphers: str = BCP195_CIPHERS,
) -> ssl.SSLContext:
    """Return the listener's TLS context.

    Parameters
    ----------
    certificate, private_key
        The listener's certificate (PEM, with its chain) and private key (PEM, unencrypted).
    ca_bundle
        The CAs whose client certificates are trusted (PEM). Required when client
        certificates are required.
    require_client_certificate
        Refuse a client without a valid certificate (``CERT_REQUIRED``); otherwise one is
        verified if sent (``CERT_OPTIONAL``).
    min_version
        ``"1.2"`` or ``"1.3"``.
    ciphers
        OpenSSL cipher string for TLS 1.2 (default :data:`BCP195_CIPHERS`).

    Returns
    -------
    ssl.SSLContext
        Its sockets are :class:`~dicom_gateway.watchdog.WatchedSSLSocket`.

    Raises
    ------
    TlsSettingsError
        A file is missing or unusable, or no CA bundle while client certificates are required.
    """
    if require_client_certificate and ca_bundle is None:
        raise TlsSettingsError("client certificates are required but no CA bundle is set")
    context = _base_context(ssl.Purpose.CLIENT_AUTH, min_version, ciphers)
    _load(context, certificate, private_key, ca_bundle)
    if ca_bundle is not None:
        context.verify_mode = (
            ssl.CERT_REQUIRED if require_client_certificate else (ssl.CERT_OPTIONAL)
        )
    context.sslsocket_class = WatchedSSLSocket
    return context


def listener_context(settings: GatewaySettings) -> ssl.SSLContext:
    """Return :func:`server_context` from the gateway's ``tls_*`` settings.

    Raises
    ------
    TlsSettingsError
        No certificate or key is set, or one is unusable.
    """
    if settings.tls_certificate is None or settings.tls_private_key is None:
        raise TlsSettingsError("tls_port is set but tls_certificate or tls_private_key is not")
    return server_context(
        settings.tls_certificate,
        settings.tls_private_key,
        settings.tls_ca_bundle,
        require_client_certificate=settings.tls_require_client_certificate,
        min_version=settings.tls_min_version,
        ciphers=settings.tls_ciphers,
    )


@dataclass(frozen=True)
class TlsClient:
    """How the SCU speaks TLS to one peer.

    Attributes
    ----------
    ca_bundle
        The CAs that may sign the peer's certificate (PEM); ``None``: the system's.
    certificate, private_key
        Our client certificate and its key (PEM), for peers that require one.
    check_hostname
        Verify that the peer's certificate names the host we connect to.
    server_name
        The name to verify (and send as SNI) instead of the host.
    """

    ca_bundle: Path | None = None
    certificate: Path | None = None
    private_key: Path | None = None
    check_hostname: bool = True
    server_name: str | None = None

    def tls_args(self, host: str) -> tuple[ssl.SSLContext, str]:
        """Return pynetdicom's ``tls_args`` for an association to ``host``."""
        return client_context(self), self.server_name or host


class _ClientSSLSocket(ssl.SSLSocket):
    """The SCU's TLS socket: closed also when shutting it down fails.

    pynetdicom, when a TLS connection fails (handshake refused), calls ``shutdown`` then
    ``close`` in one ``try`` and drops the socket: a failing ``shutdown`` would leak it.
    """

    def shutdown(self, how: int) -> None:
        """Shut down as :meth:`ssl.SSLSocket.shutdown` does; on failure, close and re-raise."""
        try:
            super().shutdown(how)
        except OSError:
            self.close()
            raise


def client_context(client: TlsClient) -> ssl.SSLContext:
    """Return the SCU's TLS context (TLS 1.2 at least, BCP 195 ciphers, the peer verified).

    Parameters
    ----------
    client
        CA bundle, client certificate and key, hostname checking.

    Returns
    -------
    ssl.SSLContext
        For ``tls_args`` of ``AE.associate``.
    """
    context = _base_context(ssl.Purpose.SERVER_AUTH, "1.2", BCP195_CIPHERS)
    context.check_hostname = client.check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        if client.ca_bundle is not None:
            context.load_verify_locations(cafile=client.ca_bundle)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if client.certificate is not None:
            context.load_cert_chain(client.certificate, client.private_key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSettingsError(f"cannot load the TLS client certificate or CA: {exc}") from exc
    context.sslsocket_class = _ClientSSLSocket
    return context


def certificate_names(peer: Mapping[str, Any] | None) -> set[str]:
    """Return the subject names of a certificate as :meth:`ssl.SSLSocket.getpeercert` gives it.

    Parameters
    ----------
    peer
        The verified peer certificate (``None`` when there is none).

    Returns
    -------
    set of str
        Its subject commonName values and subjectAltName DNS names and IP addresses.
    """
    if not peer:
        return set()
    names = {
        str(value) for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"
    }
    names |= {str(v) for k, v in peer.get("subjectAltName", ()) if k in ("DNS", "IP Address")}
    return names


def check_subject(
    event: Event,
    bindings: Mapping[str, Sequence[str]],
    tls: bool,
    refusals: RefusalLog | None = None,
) -> None:
    """Reject an association whose calling AE title is not bound to its client certificate.

    On the TLS listener, a calling AE title listed in ``bindings`` is accepted only from a
    client certificate naming (CN or subjectAltName) one of its subjects, and an AE title not
    listed is refused. On the plain listener, a listed AE title is refused (it may only come
    over TLS). Refused: A-ASSOCIATE-RJ rejected-permanent, calling AE title not recognised.

    Parameters
    ----------
    event
        pynetdicom's ``EVT_REQUESTED`` event.
    bindings
        Calling AE title -> certificate subjects allowed to use it; empty: no binding.
    tls
        Whether this is the TLS listener.
    refusals
        The listener's refusal log: no line while it suppresses this peer's refusals (the
        rejection handler counts this refusal).
    """
    if not bindings:
        return
    assoc = event.assoc
    primitive = assoc.requestor.primitive
    calling = str(primitive.calling_ae_title if primitive is not None else "").strip()
    allowed = bindings.get(calling)
    sock = getattr(assoc.dul.socket, "socket", None)
    if not tls:
        reason = "bound to a certificate subject, refused without TLS" if allowed else ""
        names: set[str] = set()
    else:
        names = certificate_names(sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None)
        if allowed is None:
            reason = "not bound to any certificate subject"
        else:
            reason = "" if names & set(allowed) else "certificate subject not allowed for it"
    if not reason:
        return
    quiet = refusals is not None and refusals.suppressing(str(assoc.requestor.address))
    log = logger.debug if quiet else logger.warning
    log(
        "association from %s (%s, certificate %s) rejected: calling AE title %s",
        calling,
        assoc.requestor.address,
        ", ".join(sorted(names)) or "none",
        reason,
    )
    # As pynetdicom rejects a calling AE title itself (ACSE negotiation as acceptor).
    assoc.acse.send_reject(_REJECTED_PERMANENT, _SERVICE_USER, _CALLING_AET_NOT_RECOGNISED)
    evt.trigger(assoc, evt.EVT_REJECTED, {})
    assoc.kill()
