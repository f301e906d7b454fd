"""CPU time of server processes (Linux ``/proc``), for the load benchmarks."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["cpu_s", "print_cpu", "process_tree"]


def print_cpu(cpu: float, seconds: float, requests: int) -> None:
    if requests:
        print(
            f"server CPU (all worker processes): {cpu:.1f} s in {seconds:.0f} s, "
            f"{cpu / requests * 1000:.2f} ms per request"
        )


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc``)."""
    found = [pid]
    for p in found:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of processes (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:13])
    return total / ticks
