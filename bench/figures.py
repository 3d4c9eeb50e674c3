"""The benchmarks' measuring: time a page as a signed-in client would see it, read a percentile
off the samples (nearest rank), and name the machine the figures come from."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client


def timed(
    client: Client,
    url: str,
    repeat: int,
    headers: dict[str, str],
    cpu: list[float] | None = None,
) -> list[float]:
    """`repeat` GETs of `url`, each in milliseconds; any answer but 200 ends the benchmark.
    With `cpu`, each GET's CPU time in this process (Python and the driver; not the database's
    own) is appended to it, in milliseconds: steadier than wall time on a busy machine."""
    out = []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url, headers=headers)
        out.append((time.perf_counter() - started) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - cpu_started) * 1000)
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}")
    return out


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def machine() -> str:
    """The cores, their model and the load average: the same code gave figures twice as good on
    one 2-vCPU machine as on another, so every figure is printed beside this line."""
    model = "model unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"machine: {os.cpu_count()} cores ({model}), load average {load}"
