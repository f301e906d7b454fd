"""The listener's resident memory stays under ``max_memory_bytes`` whatever a peer sends (issue 13).

``triage gateway`` (two listener processes) and ``triage serve`` (``processes = 1``: one listener
process beside the serve process, which runs the web app) run as subprocesses with the default
cap (1 GiB). While each receives, one after another, a deflate bomb inflating to 4 GiB, one
inflating to 1 GiB, a C-STORE announcing a 1 GiB Pixel Data of which about 300 MB are sent, and
a sequence nested 10,000 deep, the resident memory of the command's process plus its listener
processes (their pids from its start-up log line) is sampled from ``/proc`` every 50 ms: it must
stay under the cap at every sample, each C-STORE must be refused with a named status whose
reason is logged, and DCMTK's ``echoscu`` must succeed afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from dicom_gateway.statuses import CANNOT_UNDERSTAND, OUT_OF_RESOURCES
from tests.builders import REPO, pdus
from tests.builders.dicom import make_dataset
from tests.builders.hostile import dataset_part, deflate_bomb, nested_instance
from tests.builders.peers import echoscu, free_port, wait_for, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.dcmtk]

CAP = 1024**3
"""The default ``max_memory_bytes``."""

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _listener_pids(log: Path) -> list[int]:
    """Return the listener processes' pids, from the gateway's start-up log line."""
    found = re.search(r"listener process\(es\) ([\d, ]+)\)", log.read_text())
    assert found, log.read_text()
    return [int(pid) for pid in found.group(1).split(",")]


def _resident(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class Sampler:
    """Sum the resident memory of ``pids`` every 50 ms."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="RssSampler", daemon=True)

    def total(self) -> int:
        """Resident bytes of the watched processes now."""
        return sum(_resident(pid) for pid in self.pids)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.total())
            self.samples += 1

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def _running(args: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[int]:
    """Run ``python -m triage ARGS`` in its own process group until the block ends; yield pid."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "triage", *args],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, timeout=120)
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _bomb(port: int, inflated: int) -> int | None:
    ds, data = deflate_bomb(inflated)
    answer = pdus.store_exchange(
        port,
        ds.SOPClassUID,
        ds.SOPInstanceUID.encode(),
        dataset_part(data),
        timeout=60,
        transfer_syntax=DeflatedExplicitVRLittleEndian,
    )
    assert answer[0] == pdus.P_DATA_TF, answer
    return answer[1]


def _half_sent_pixel_data(port: int, sent: int = 300 * 1000 * 1000) -> int | None:
    """Announce a 1 GiB Pixel Data, send ``sent`` bytes of it as the whole dataset's end."""
    ds = make_dataset(study_uid=generate_uid(), size=8)
    del ds.PixelData
    announced = struct.pack("<HHI", 0x7FE0, 0x0010, 1024**3)
    chunk = bytes(512 * 1024)
    with pdus.connect(port, timeout=60) as sock:
        sock.sendall(pdus.associate_rq(contexts=[(1, ds.SOPClassUID, [pdus.IMPLICIT_LE])]))
        assert pdus.read_pdu(sock)[0] == pdus.A_ASSOCIATE_AC
        command = pdus.c_store_rq(ds.SOPClassUID, ds.SOPInstanceUID.encode())
        sock.sendall(pdus.p_data_tf(1, command, command=True))
        sock.sendall(pdus.p_data_tf(1, pdus.implicit_le(ds) + announced, command=False, last=False))
        for done in range(0, sent, len(chunk)):
            last = done + len(chunk) >= sent
            sock.sendall(pdus.p_data_tf(1, chunk, command=False, last=last))
        pdu_type, body = pdus.read_pdu(sock)
        assert pdu_type == pdus.P_DATA_TF, pdu_type
        sock.sendall(pdus.release_rq())
        pdus.read_pdu(sock)
        return pdus.command_status(body)


def _nested(port: int) -> int | None:
    ds, data = nested_instance(10_000, defined_lengths=False)
    answer = pdus.store_exchange(
        port,
        ds.SOPClassUID,
        ds.SOPInstanceUID.encode(),
        dataset_part(data),
        transfer_syntax=pdus.EXPLICIT_LE,
    )
    assert answer[0] == pdus.P_DATA_TF, answer
    return answer[1]


COMMANDS = {
    "gateway": (["gateway", "--processes", "2"], {}),
    # The serve process (web app, assembler) and its listener process; its worker, another
    # process, is not measured.
    "serve": (["serve"], {"TRIAGE_GATEWAY_PROCESSES": "1"}),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_hostile_instances_keep_the_listener_under_its_memory_cap(
    tmp_path: Path, command: str
) -> None:
    args, env = COMMANDS[command]
    port, log = free_port(), tmp_path / f"{command}.log"
    where = ["--host", "127.0.0.1", "--data-dir", str(tmp_path / "var")]
    if command == "serve":
        where += ["--dicom-port", str(port), "--http-port", str(free_port())]
    else:
        where += ["--port", str(port)]
    with _running([*args, *where], env, log, port) as pid:
        assert wait_for(lambda: "listener process(es)" in log.read_text(), 60), log.read_text()
        pids = [pid, *_listener_pids(log)]
        assert len(pids) == (3 if command == "gateway" else 2), pids
        with Sampler(pids) as sampler:
            at_start = sampler.total()
            statuses = {
                "4 GiB deflate bomb": _bomb(port, 4 * 1024**3),
                "1 GiB deflate bomb": _bomb(port, 1024**3),
                "1 GiB Pixel Data announced, 300 MB sent": _half_sent_pixel_data(port),
                "10,000-deep nesting": _nested(port),
            }
            echo = echoscu(port)
            # Every refusal's reason reaches the log (listener processes log through the parent).
            reasons = ("inflates to more than", "(max_memory_bytes)", "nested deeper than")
            logged = wait_for(lambda: all(r in log.read_text() for r in reasons), 20)
    mib = 1024 * 1024
    print(f"{command}: at start {at_start / mib:.0f} MiB, peak {sampler.peak / mib:.0f} MiB")
    assert sampler.samples > 20, sampler.samples
    assert sampler.peak < CAP, (
        f"{command}: resident memory peaked at {sampler.peak / mib:.0f} MiB "
        f"(at start {at_start / mib:.0f} MiB; cap {CAP / mib:.0f} MiB)"
    )
    assert echo.returncode == 0, echo.stdout + echo.stderr
    assert statuses == {
        "4 GiB deflate bomb": OUT_OF_RESOURCES,
        "1 GiB deflate bomb": OUT_OF_RESOURCES,
        "1 GiB Pixel Data announced, 300 MB sent": OUT_OF_RESOURCES,
        "10,000-deep nesting": CANNOT_UNDERSTAND,
    }, statuses
    assert logged, log.read_text()
    refusals = [line for line in log.read_text().splitlines() if "refused C-STORE" in line]
    assert len(refusals) == 4, refusals
