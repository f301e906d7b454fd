"""``triage echo``, ``triage send`` and ``triage gateway``: DICOM for radiographers."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dicom_gateway.scu import ScuError, SendResult, collect_files, echo, send_files
from dicom_gateway.service import run_gateway
from dicom_gateway.statuses import SUCCESS
from triage.cli.app import app, config_from, stop_on_signals

__all__ = ["echo_cmd", "gateway_cmd", "send_cmd"]

logger = logging.getLogger(__name__)

CallingOpt = Annotated[str, typer.Option("--calling-aet", help="Our AE title.")]
CalledOpt = Annotated[
    str | None, typer.Option("--called-aet", help="Peer AE title (default: gateway.ae_title).")
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Network timeouts in seconds.")]


@app.command("echo")
def echo_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The peer's host name or address.")],
    port: Annotated[int, typer.Argument(help="The peer's DICOM port.")],
    calling_aet: CallingOpt = "TRIAGE_SCU",
    called_aet: CalledOpt = None,
    timeout: TimeoutOpt = 10.0,
) -> int:
    """Send a C-ECHO (DICOM ping) and report whether the peer answered Success."""
    config = config_from(ctx)
    called = called_aet or config.gateway.ae_title
    try:
        status = echo(host, port, calling_aet=calling_aet, called_aet=called, timeout_s=timeout)
    except ScuError as exc:
        typer.echo(f"C-ECHO to {called}@{host}:{port} failed: {exc}", err=True)
        return 1
    if status != SUCCESS:
        typer.echo(f"C-ECHO to {called}@{host}:{port}: status 0x{status:04X}", err=True)
        return 1
    typer.echo(f"C-ECHO to {called}@{host}:{port}: Success")
    return 0


def _summary(console: Console, results: list[SendResult]) -> None:
    counts = Counter(r.label if not r.ok else "0x0000 Success" for r in results)
    table = Table(title="C-STORE summary")
    table.add_column("status")
    table.add_column("files", justify="right")
    for label, n in sorted(counts.items()):
        table.add_row(label, str(n))
    console.print(table)
    for r in results:
        if not r.ok:
            console.print(f"[red]FAILED[/red] {r.path}: {r.label} ({r.message})")


@app.command("send")
def send_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="DICOM files and folders (recursive).")],
    host: Annotated[str, typer.Option("--host", help="The peer's host.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option("--port", help="Default: gateway.port.")] = None,
    calling_aet: CallingOpt = "TRIAGE_SCU",
    called_aet: CalledOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> int:
    """C-STORE files and folders to a DICOM peer; exit 1 if any file was not stored."""
    config = config_from(ctx)
    called = called_aet or config.gateway.ae_title
    target_port = port if port is not None else config.gateway.port
    missing = [p for p in paths if not p.exists()]
    files = collect_files([p for p in paths if p.exists()])
    console = Console(stderr=True)
    if not files and not missing:
        console.print("no files to send")
        return 1
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("send", total=len(files), failed=0)
        failed = 0

        def on_result(result: SendResult) -> None:
            nonlocal failed
            failed += 0 if result.ok else 1
            progress.update(task, advance=1, failed=failed)

        results = send_files(
            files,
            host,
            target_port,
            calling_aet=calling_aet,
            called_aet=called,
            timeout_s=timeout,
            on_result=on_result,
        )
    results += [SendResult(p, None, "unreadable: no such file or folder") for p in missing]
    _summary(console, results)
    stored = sum(r.ok for r in results)
    typer.echo(f"{stored} of {len(results)} file(s) stored at {called}@{host}:{target_port}")
    return 0 if stored == len(results) else 1


@app.command("gateway")
def gateway_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="DICOM port.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Store and archive root.")
    ] = None,
    processes: Annotated[
        int | None, typer.Option("--processes", help="Listener processes; 0 = one per core.")
    ] = None,
    ae_title: Annotated[str | None, typer.Option("--ae-title", help="Our AE title.")] = None,
) -> int:
    """Run the DICOM listener and the study assembler until SIGTERM or Ctrl-C."""
    config = config_from(
        ctx,
        gateway={"host": host, "port": port, "processes": processes, "ae_title": ae_title},
        worklist={"data_dir": data_dir},
    )
    stop = stop_on_signals()
    run_gateway(config.gateway, config.worklist, stop)
    return 0
