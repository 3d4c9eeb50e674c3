"""The benchmarks' measuring: time a page as a signed-in client would see it, and read a
percentile off the samples (nearest rank)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client


def timed(client: Client, url: str, repeat: int, headers: dict[str, str]) -> list[float]:
    """`repeat` GETs of `url`, each in milliseconds; any answer but 200 ends the benchmark."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        out.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}")
    return out


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
