"""``triage echo``, ``triage send`` and ``triage gateway``: DICOM for radiographers."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from triage.cli.app import app, config_from, stop_on_signals
from triage.cli.options import ConfigOption, DatabaseUrlOption, DataDirOption

if TYPE_CHECKING:
    from rich.console import Console

    from dicom_gateway.scu import SendResult
    from dicom_gateway.tls import TlsClient

# pydicom, pynetdicom, rich and the store are imported inside the commands that use them, so
# that ``triage --help`` and ``triage echo`` do not pay for the gateway's imports.

__all__ = ["echo_cmd", "gateway_cmd", "send_cmd"]

logger = logging.getLogger(__name__)

CallingOpt = Annotated[str, typer.Option("--calling-aet", help="Our AE title.")]
CalledOpt = Annotated[
    str | None, typer.Option("--called-aet", help="Peer AE title (default: gateway.ae_title).")
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Network timeouts in seconds.")]
TlsOpt = Annotated[bool, typer.Option("--tls", help="DICOM TLS (implied by --tls-*).")]
TlsCaOpt = Annotated[
    Path | None, typer.Option("--tls-ca", help="CA bundle (PEM) the peer's certificate is from.")
]
TlsCertOpt = Annotated[Path | None, typer.Option("--tls-cert", help="Our certificate (PEM).")]
TlsKeyOpt = Annotated[Path | None, typer.Option("--tls-key", help="Our private key (PEM).")]


def _tls(on: bool, ca: Path | None, cert: Path | None, key: Path | None) -> TlsClient | None:
    """Return the SCU's TLS options, or ``None`` for a plain association."""
    from dicom_gateway.tls import TlsClient

    if not (on or ca or cert or key):
        return None
    return TlsClient(ca_bundle=ca, certificate=cert, private_key=key)


@contextmanager
def _quiet_pynetdicom() -> Iterator[None]:
    """Keep pynetdicom's own connection errors off the console while we report them ourselves.

    They repeat, less plainly, what the command says (for example "connection refused");
    ``--log-level DEBUG`` shows them.
    """
    quiet = logging.getLogger("pynetdicom")
    level = quiet.level
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        quiet.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        quiet.setLevel(level)


@app.command("echo")
def echo_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The peer's host name or address.")],
    port: Annotated[int, typer.Argument(help="The peer's DICOM port.")],
    calling_aet: CallingOpt = "TRIAGE_SCU",
    called_aet: CalledOpt = None,
    timeout: TimeoutOpt = 10.0,
    tls: TlsOpt = False,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> int:
    """Send a C-ECHO (DICOM ping) and report whether the peer answered Success."""
    from dicom_gateway.scu import ScuError, echo
    from dicom_gateway.statuses import SUCCESS

    config = config_from(ctx)
    called = called_aet or config.gateway.ae_title
    try:
        with _quiet_pynetdicom():
            status = echo(
                host,
                port,
                calling_aet=calling_aet,
                called_aet=called,
                timeout_s=timeout,
                tls=_tls(tls, tls_ca, tls_cert, tls_key),
            )
    except ScuError as exc:
        typer.echo(f"C-ECHO to {called}@{host}:{port} failed: {exc}", err=True)
        return 1
    if status != SUCCESS:
        typer.echo(f"C-ECHO to {called}@{host}:{port}: status 0x{status:04X}", err=True)
        return 1
    typer.echo(f"C-ECHO to {called}@{host}:{port}: Success")
    return 0


SHOW_SKIPPED = 20
"""How many skipped files the summary names one by one."""


def _summary(console: Console, results: list[SendResult]) -> None:
    from rich.table import Table

    counts = Counter("0x0000 Success" if r.ok else r.label for r in results)
    table = Table(title="C-STORE summary")
    table.add_column("status")
    table.add_column("files", justify="right")
    for label, n in sorted(counts.items()):
        table.add_row(label, str(n))
    console.print(table)
    skipped = [r for r in results if r.skipped]
    for r in skipped[:SHOW_SKIPPED]:
        reason = r.message.split(": ", 1)[-1]
        console.print(f"[dim]skipped[/dim] {r.path} ({reason})", soft_wrap=True)
    if len(skipped) > SHOW_SKIPPED:
        console.print(f"[dim]skipped[/dim] ... and {len(skipped) - SHOW_SKIPPED} more")
    for r in results:
        if not r.ok and not r.skipped:
            detail = r.message if r.status is not None else r.message.split(": ", 1)[-1]
            console.print(f"[red]FAILED[/red] {r.path}: {r.label} ({detail})", soft_wrap=True)


@app.command("send")
def send_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="DICOM files and folders (recursive).")],
    host: Annotated[str, typer.Option("--host", help="The peer's host.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option("--port", help="Default: gateway.port.")] = None,
    calling_aet: CallingOpt = "TRIAGE_SCU",
    called_aet: CalledOpt = None,
    timeout: TimeoutOpt = 30.0,
    tls: TlsOpt = False,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> int:
    """C-STORE files and folders to a DICOM peer; exit 1 if any file was not stored.

    Files found in folders that are not DICOM (a labels.csv, a README) and hidden files are
    skipped and counted, not failures; a file named on the command line must be DICOM. Exit 1
    also when nothing was sent.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from dicom_gateway.scu import SKIPPED_HIDDEN, SendResult, collect_files, send_files

    config = config_from(ctx)
    called = called_aet or config.gateway.ae_title
    target_port = port if port is not None else config.gateway.port
    collected = collect_files(paths)
    console = Console(stderr=True)
    if not (collected.files or collected.hidden or collected.missing):
        console.print("[red]nothing sent[/red]: no files in " + ", ".join(map(str, paths)))
        return 1
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed, {task.fields[skipped]} skipped"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("send", total=len(collected.files), failed=0, skipped=0)
        failed = skipped = 0

        def on_result(result: SendResult) -> None:
            nonlocal failed, skipped
            skipped += result.skipped
            failed += not (result.ok or result.skipped)
            progress.update(task, advance=1, failed=failed, skipped=skipped)

        with _quiet_pynetdicom():
            results = send_files(
                collected.files,
                host,
                target_port,
                calling_aet=calling_aet,
                called_aet=called,
                timeout_s=timeout,
                on_result=on_result,
                found=collected.found,
                tls=_tls(tls, tls_ca, tls_cert, tls_key),
            )
    results += [
        SendResult(p, None, f"{SKIPPED_HIDDEN}: a name in its path starts with '.'", skipped=True)
        for p in collected.hidden
    ]
    results += [
        SendResult(p, None, "unreadable: no such file or folder") for p in collected.missing
    ]
    _summary(console, results)
    stored = sum(r.ok for r in results)
    n_skipped = sum(r.skipped for r in results)
    attempted = len(results) - n_skipped
    line = f"{stored} of {attempted} file(s) stored at {called}@{host}:{target_port}"
    typer.echo(line + (f"; {n_skipped} skipped (not DICOM or hidden)" if n_skipped else ""))
    if attempted == 0:
        console.print(
            f"[red]nothing sent[/red]: no DICOM file to send, all {n_skipped} file(s) found"
            " were skipped (not DICOM or hidden)"
        )
        return 1
    return 0 if stored == attempted else 1


@app.command("gateway")
def gateway_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="DICOM port.")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    processes: Annotated[
        int | None, typer.Option("--processes", help="Listener processes; 0 = one per core.")
    ] = None,
    ae_title: Annotated[str | None, typer.Option("--ae-title", help="Our AE title.")] = None,
    config_file: ConfigOption = None,
) -> int:
    """Run the DICOM listener and the study assembler until SIGTERM or Ctrl-C."""
    from dicom_gateway.service import run_gateway

    config = config_from(
        ctx,
        gateway={"host": host, "port": port, "processes": processes, "ae_title": ae_title},
    )
    stop = stop_on_signals()
    run_gateway(config.gateway, config.worklist, stop)
    return 0
