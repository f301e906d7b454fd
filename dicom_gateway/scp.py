"""The listener: a pynetdicom AE (C-ECHO, C-STORE, Study Root C-FIND/C-MOVE/C-GET) and its server.

:class:`ListenerServer` sets ``TCP_NODELAY`` on every accepted socket and, when several
listener processes share one port, binds with ``SO_REUSEPORT`` so the kernel spreads incoming
associations across them.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import pydicom.config
from pynetdicom import AE, evt
from pynetdicom.events import EventHandlerType
from pynetdicom.transport import ThreadedAssociationServer

from dicom_gateway.conformance import (
    QR_SOP_CLASSES,
    QR_TRANSFER_SYNTAXES,
    TRANSFER_SYNTAXES,
    storage_sop_classes,
    verification_sop_class,
)
from dicom_gateway.handlers import (
    HandlerContext,
    handle_aborted,
    handle_conn_close,
    handle_rejected,
    handle_released,
    handle_store,
)
from dicom_gateway.lenient import (
    CommandFragments,
    handle_dimse_recv,
    handle_pdu_recv,
    install_lenient_uid_validation,
)
from dicom_gateway.memory import resident_bytes
from dicom_gateway.qr import QRContext, handle_find, handle_get, handle_move
from dicom_gateway.settings import GatewaySettings, connection_limits
from dicom_gateway.tls import check_subject, listener_context
from dicom_gateway.watchdog import Watchdog

__all__ = ["ListenerServer", "ReusePortListenerServer", "build_ae", "start_listener"]

logger = logging.getLogger(__name__)


class ListenerServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with ``TCP_NODELAY`` on every accepted socket.

    With a :attr:`watchdog` (set by :func:`start_listener`), every accepted socket is watched for
    its deadlines and the per-peer limit (:mod:`dicom_gateway.watchdog`). With a
    :attr:`memory_share` (a listener process's share of ``max_memory_bytes``), connections are
    closed at accept while the process's resident memory is above it.
    """

    reuse_port = False
    watchdog: Watchdog | None = None
    memory_share = 0

    def server_bind(self) -> None:
        """Bind, with ``SO_REUSEPORT`` first when :attr:`reuse_port` is set."""
        if self.reuse_port and self.socket is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        """Accept a connection, switch Nagle's algorithm off on it, watch it.

        With an ``ssl_context`` (the TLS listener), the socket is wrapped here without the
        handshake, which pynetdicom's own ``get_request`` would do on this accepting thread
        (one silent peer would block every other): it happens at the association's first
        read, within the watchdog's setup deadline.
        """
        assert self.socket is not None
        client, address = self.socket.accept()
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:  # e.g. a non-TCP socket
            logger.debug("TCP_NODELAY not set on %s: %s", address, exc)
        if self.watchdog is not None:
            return self.watchdog.wrap(client, address, self.ssl_context), address
        if self.ssl_context is not None:
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit a connection unless its peer has too many open, or memory is above its share."""
        if self.watchdog is None:
            return True
        host = str(client_address[0])
        resident = resident_bytes() if self.memory_share else 0
        if resident > self.memory_share:
            self.watchdog.refuse(
                host,
                "connection from %s refused: the listener process holds %d bytes, more than "
                "its share of max_memory_bytes (%d)",
                host,
                resident,
                self.memory_share,
            )
            return False
        # Threads of associations whose sockets are closed may still be ending: count them too.
        busy = sum(1 for a in self.active_associations if a.requestor.address == host)
        return self.watchdog.admit(request, client_address, busy=busy)

    def server_close(self) -> None:
        """Stop the watchdog, then close the listening socket."""
        if self.watchdog is not None:
            self.watchdog.stop()
        super().server_close()


class ReusePortListenerServer(ListenerServer):
    """:class:`ListenerServer` bound with ``SO_REUSEPORT`` (one of several processes)."""

    reuse_port = True


def build_ae(settings: GatewaySettings) -> AE:
    """Return the AE: storage, Verification and Query/Retrieve, timeouts and limits from settings.

    The storage SOP classes accept the SCP role too when a C-GET requestor proposes it (SCP/SCU
    role selection), so C-GET sub-operations run on the requestor's association.

    Parameters
    ----------
    settings
        The gateway's settings.

    Returns
    -------
    pynetdicom.AE
        Not yet listening.
    """
    # The listener reads untrusted data leniently: invalid values are recorded, not warned.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    install_lenient_uid_validation()  # bad command UIDs: refused by the handler, not aborted
    ae = AE(ae_title=settings.ae_title)
    # An acceptor waits this long for the A-ASSOCIATE-RQ, even after its socket is closed.
    ae.acse_timeout = min(settings.acse_timeout_s, settings.association_setup_timeout_s)
    ae.dimse_timeout = settings.dimse_timeout_s
    ae.network_timeout = settings.network_timeout_s
    ae.maximum_associations = settings.max_associations
    ae.maximum_pdu_size = settings.max_pdu_length  # announced; longer PDUs: connection closed
    ae.require_called_aet = False
    ae.require_calling_aet = list(settings.allowed_calling_aets)
    ae.add_supported_context(verification_sop_class())
    for sop_class in storage_sop_classes():
        ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES), scu_role=True, scp_role=True)
    for sop_class in QR_SOP_CLASSES:
        ae.add_supported_context(sop_class, list(QR_TRANSFER_SYNTAXES))
    return ae


def _handlers(
    ctx: HandlerContext, qr: QRContext, settings: GatewaySettings, tls: bool
) -> list[EventHandlerType]:
    return [
        (evt.EVT_REQUESTED, check_subject, [settings.tls_aet_subjects, tls, ctx.refusals]),
        (evt.EVT_C_STORE, handle_store, [ctx]),
        (evt.EVT_C_FIND, handle_find, [qr]),
        (evt.EVT_C_MOVE, handle_move, [qr]),
        (evt.EVT_C_GET, handle_get, [qr]),
        (evt.EVT_RELEASED, handle_released, [ctx]),
        (evt.EVT_ABORTED, handle_aborted, [ctx]),
        (evt.EVT_CONN_CLOSE, handle_conn_close, [ctx]),
        (evt.EVT_REJECTED, handle_rejected, [ctx]),
        (evt.EVT_DIMSE_RECV, handle_dimse_recv, [ctx]),
        (evt.EVT_PDU_RECV, handle_pdu_recv, [ctx, CommandFragments()]),
    ]


def start_listener(
    settings: GatewaySettings,
    ctx: HandlerContext,
    *,
    port: int,
    reuse_port: bool = False,
    tls: bool = False,
) -> ThreadedAssociationServer:
    """Start a non-blocking listener on ``settings.host:port``.

    Parameters
    ----------
    settings
        The gateway's settings.
    ctx
        The handlers' dependencies.
    port
        The port (``0``: any free one; read it from ``server.server_address``).
    reuse_port
        Bind with ``SO_REUSEPORT`` (several processes on one port).
    tls
        The TLS listener: its context from the ``tls_*`` settings
        (:func:`dicom_gateway.tls.listener_context`).

    Returns
    -------
    ListenerServer
        Running in a daemon thread; stop it with ``server.shutdown()``.
    """
    ssl_context = listener_context(settings) if tls else None
    ae = build_ae(settings)
    server_class = ReusePortListenerServer if reuse_port else ListenerServer
    qr = QRContext(db=ctx.db, archive=ctx.ingestor.archive, settings=settings)
    server = ae.make_server(
        (settings.host, port),
        evt_handlers=_handlers(ctx, qr, settings, tls),
        ssl_context=ssl_context,
        server_class=server_class,
    )
    if isinstance(server, ListenerServer):
        server.watchdog = Watchdog(connection_limits(settings), refusals=ctx.refusals)
        server.watchdog.start()
    name = "DicomTlsListener" if tls else "DicomListener"
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    ae._servers.append(server)
    return server
