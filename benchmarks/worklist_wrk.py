"""The closed-loop driver of the worklist load benchmark: ``wrk`` with a small Lua script."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from benchmarks.proc_cpu import cpu_s, print_cpu

__all__ = ["run_wrk"]

WRK_LUA = r"""
local cookie = os.getenv("WORKLIST_LOAD_COOKIE")
local uids = {}
for line in io.lines(os.getenv("WORKLIST_LOAD_UIDS")) do uids[#uids + 1] = line end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
function init(args)
  math.randomseed(os.time() * 100 + (seed or 0))
end
function request()
  local path = "/api/v1/studies"
  if math.random() < 0.5 then path = "/studies/" .. uids[math.random(#uids)] end
  return wrk.format("GET", path, {["Cookie"] = cookie})
end
function done(summary, latency, requests)
  io.write(string.format("WRKSTATS %d %d %d %d %d %.3f %.3f %.3f %.3f %.3f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write, summary.errors.timeout, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
"""


def run_wrk(
    base: str,
    cookie: str,
    uids: list[str],
    clients: int,
    threads: int,
    seconds: float,
    pids: list[int],
    root: Path,
) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("--driver wrk needs wrk on the PATH (apt-get install -y wrk)")
    script = root / "worklist_load.lua"
    script.write_text(WRK_LUA)
    uid_file = root / "uids.txt"
    uid_file.write_text("\n".join(uids) + "\n")
    env = {**os.environ, "WORKLIST_LOAD_COOKIE": cookie, "WORKLIST_LOAD_UIDS": str(uid_file)}
    cmd = [
        wrk,
        f"-t{max(1, min(threads, clients))}",
        f"-c{clients}",
        f"-d{seconds:.0f}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        base,
    ]
    cpu0 = cpu_s(pids)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    cpu = cpu_s(pids) - cpu0
    found = re.search(r"^WRKSTATS (.*)$", done.stdout, re.MULTILINE)
    if found is None:
        print(done.stdout, done.stderr)
        raise SystemExit("wrk printed no statistics")
    n, status_err, sock_err, timeouts, duration_us, p50, p95, p99, mx, mean = (
        float(v) for v in found.group(1).split()
    )
    print(f"{'kind':<14}{'n':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    print(f"{'all (wrk)':<14}{n:>8.0f}{p50:>10.1f}{p95:>10.1f}{p99:>10.1f}{mx:>10.1f}")
    seconds_run = duration_us / 1e6
    errors = status_err + sock_err + timeouts
    print(
        f"throughput: {n / seconds_run:.0f} requests/s; errors: {errors:.0f} "
        f"(non-2xx {status_err:.0f}, socket {sock_err:.0f}, timeouts {timeouts:.0f})"
    )
    print(f"mean: {mean:.1f} ms")
    print_cpu(cpu, seconds_run, int(n))
