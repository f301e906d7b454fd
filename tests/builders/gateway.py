"""Gateways started in-process on a free port, with settings overrides, for the gateway tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dicom_gateway.memory import resident_bytes
from dicom_gateway.service import Gateway
from dicom_gateway.settings import GatewaySettings
from worklist.db.engine import Database
from worklist.settings import WorklistSettings

DEFAULT_CAP = GatewaySettings().max_memory_bytes
"""The default ``max_memory_bytes`` (1 GiB)."""

GatewayFactory = Callable[..., tuple[Gateway, Database, WorklistSettings]]
"""``start(*, name="gw", worklist=None, **gateway)``: a started gateway, its store, settings."""


@contextmanager
def gateways(root: Path) -> Iterator[GatewayFactory]:
    """Yield a factory of started gateways (port 0, in-process) and stop them afterwards.

    With ``processes`` 1 (the default) the gateway's listener runs in this process
    (``in_process=True``, receiving to memory); with ``processes`` above 1, or
    ``in_process=False``, in listener processes as in production. Each gateway keeps its data
    in ``root/NAME``; its other keyword arguments override the
    :class:`~dicom_gateway.settings.GatewaySettings` (short idle times, a fast assembler), and
    ``worklist`` the :class:`~worklist.settings.WorklistSettings`.

    Parameters
    ----------
    root : pathlib.Path
        Where the gateways' data folders go.

    Yields
    ------
    GatewayFactory
        The factory.
    """
    started: list[tuple[Gateway, Database]] = []

    def start(
        *,
        name: str = "gw",
        worklist: dict[str, Any] | None = None,
        in_process: bool | None = None,
        **gateway: Any,
    ) -> tuple[Gateway, Database, WorklistSettings]:
        defaults: dict[str, Any] = {
            "port": 0,
            "processes": 1,
            "idle_s": {"DX": 0.0, "CR": 0.0, "CT": 0.3, "MR": 0.3},
            "default_idle_s": 0.3,
            "assembler_interval_s": 0.05,
        }
        defaults.update(gateway)
        wl = WorklistSettings(data_dir=root / name, min_free_bytes=0, **(worklist or {}))
        if in_process is None:
            in_process = defaults["processes"] == 1
        if not in_process and "max_memory_bytes" not in gateway:
            # The cap counts the calling process: here pytest, which the suite grows to several
            # hundred MiB. Give the listener processes the default cap on top of it.
            defaults["max_memory_bytes"] = DEFAULT_CAP + resident_bytes()
        gw = Gateway(GatewaySettings(**defaults), wl, in_process=in_process)
        gw.start()
        db = Database(wl.effective_database_url)
        started.append((gw, db))
        return gw, db, wl

    try:
        yield start
    finally:
        for gw, db in started:
            db.dispose()
            gw.stop()
